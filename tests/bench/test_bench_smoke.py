"""The benchmark harness runs end to end (``bench.run --smoke``). Nothing here is about speed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "ours-memory": {"metadata", "register", "flow", "refresh", "resource"},
    "starlette": {"metadata", "resource"},
}


def test_smoke_run_produces_the_report_and_every_test_completes_without_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--servers", ",".join(EXPECTED),
         "--out", str(tmp_path), "--name", "smoke", "--no-install"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]

    document = json.loads((tmp_path / "smoke.json").read_text())
    assert (tmp_path / "smoke.md").read_text().startswith("# oauth_server benchmark")
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "smoke.png").stat().st_size > 0

    (round_results,) = document["rounds"]
    for server, tests in EXPECTED.items():
        results = round_results[server]["tests"]
        assert set(results) == tests, (server, sorted(results))
        for test, result in results.items():
            assert result["ops"] > 0, (server, test, result)
            assert result["errors"] == 0, (server, test, result["error_samples"])

"""``GC_TUNING``: the example's server process freezes start-up's objects and collects garbage less
often (``example.tuning``); ``off`` leaves CPython's defaults. Checked in a child process, where
``main()`` runs up to ``uvicorn.run`` (replaced by a probe), so this test process's collector is untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from example.settings import ExampleSettings
from example.tuning import THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import gc, json, uvicorn\n"
    "uvicorn.run = lambda *a, **k: print(json.dumps([gc.get_threshold(), gc.get_freeze_count()]))\n"
    "from example.server import main\n"
    "main()\n"
)


def test_gc_tuning_setting() -> None:
    assert ExampleSettings.from_env({}).gc_tuning is True
    assert ExampleSettings.from_env({"GC_TUNING": "off"}).gc_tuning is False


@pytest.mark.parametrize("tuning", ["on", "off"])
def test_the_server_process_runs_with_the_collector_the_setting_asks_for(tmp_path: Path, tuning: str) -> None:
    env = {**os.environ, "GC_TUNING": tuning, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    thresholds, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    if tuning == "on":
        assert tuple(thresholds) == THRESHOLDS
        assert frozen > 10_000, "start-up's objects (imports, the app) are frozen"
    else:
        assert tuple(thresholds) == (700, 10, 10)  # CPython's defaults
        assert frozen == 0

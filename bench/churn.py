"""Churn: the memory model's RSS over a long run in which everything expires within seconds.

``ours-memory`` starts with ``--short-lifetimes`` (access 2 s, refresh 6 s idle / 12 s absolute,
code and pending request 5 s); the driver runs ``--minutes`` (default 10) cycles of 30 s of whole
authorization flows then 30 s of rotating refreshes (plus a few seconds of the driver's set-up). The server's
RSS is sampled every ``--every`` seconds from ``/proc``. Flat means: the last minute's median RSS
within 10 % of the second minute's (the first minute is warm-up: the allocator and caches
settle). Every cycle carries the same mix, so the two windows compare like with like (a run of
5 minutes of flows then 5 of refreshes compared two different workloads' live sets).

Writes ``bench/results/churn.md`` and ``churn.json``. Usage: ``python -m bench.churn [--minutes 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import DRIVER_CORE, SERVER_CORE, can_pin
from bench.servers import BENCH, ROOT, Running, Server, pin


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class ShortLived(Server):
    def command(self, port: int, workdir: Path) -> tuple[list[str], Path, dict[str, str]]:
        argv, cwd, env = super().command(port, workdir)
        return [*argv, "--short-lifetimes"], cwd, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    pinned = can_pin()
    cycles = max(2, round(args.minutes))
    total = cycles * 60.0
    per_test = 30.0
    server = ShortLived("ours-memory", "ours", "consent-page", "ours-memory with short lifetimes")
    samples: list[tuple[float, int]] = []
    totals = {"flow": 0.0, "refresh": 0.0}
    errors = {"flow": 0, "refresh": 0}
    with tempfile.TemporaryDirectory(prefix="bench-churn-") as tmp:
        running = Running(server, Path(tmp), SERVER_CORE if pinned else None)
        try:
            running.wait_ready()
            out = Path(tmp) / "driver.json"
            start = time.monotonic()
            for _ in range(cycles):  # one minute each: 30 s of flows, then 30 s of refreshes
                driver = subprocess.Popen(
                    [*pin(DRIVER_CORE if pinned else None), sys.executable, "-m", "bench.driver",
                     running.resource_url, "--adapter", "consent-page", "--tests", "flow,refresh",
                     "--connections", str(args.connections), "--warmup", "0", "--duration", str(per_test),
                     "--server-pid", str(running.process.pid), "--json", str(out)],
                    cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True)
                while driver.poll() is None:
                    samples.append((time.monotonic() - start, rss_kib(running.process.pid)))
                    print(f"[churn] {samples[-1][0]:6.0f} s  RSS {samples[-1][1] / 1024:7.1f} MiB", file=sys.stderr)
                    time.sleep(args.every)
                if driver.returncode != 0:
                    raise RuntimeError(driver.stderr.read() if driver.stderr else "driver failed")
                result = json.loads(out.read_text())
                for test in totals:
                    totals[test] += result["tests"][test]["ops_per_s"] * per_test
                    errors[test] += result["tests"][test].get("errors", 0)
            total = time.monotonic() - start
        finally:
            running.stop()

    def window(first: float, last: float) -> float:
        values = [kib for t, kib in samples if first <= t < last] or [samples[-1][1]]
        return statistics.median(values) / 1024

    second_minute, last_minute = window(60, 120), window(total - 60, total + 60)
    growth = last_minute / second_minute
    ops = {test: totals[test] / (cycles * per_test) for test in totals}
    # A grant ends 12 s after it began: its next refresh is refused (invalid_grant) and the
    # driver starts a new flow, so refresh "errors" are expected here, not failures.
    lines = [
        "# Memory churn (ours-memory, short lifetimes)", "",
        f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} · {total / 60:.1f} min · {args.connections} connections · "
        f"`python -m bench.churn` · every cycle 30 s of flows ({ops['flow']:,.0f}/s) then 30 s of "
        f"refreshes ({ops['refresh']:,.0f}/s): about {totals['flow'] + totals['refresh']:,.0f} grants and "
        "rotations, every record expiring within seconds", "",
        f"Errors: {errors['flow']} in flows; {errors['refresh']} refused refreshes of grants past their "
        "12 s absolute lifetime (each followed by a new flow).", "",
        f"RSS median, minute 2: **{second_minute:.1f} MiB**; last minute: **{last_minute:.1f} MiB**; "
        f"ratio **{growth:.3f}** (target: within 1.10).", "",
        "| seconds | RSS MiB |", "|---:|---:|",
        *[f"| {t:.0f} | {kib / 1024:.1f} |" for t, kib in samples[:: max(1, len(samples) // 30)]],
    ]
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "churn.md").write_text("\n".join(lines) + "\n")
    document = {"samples": samples, "ops": ops, "errors": errors, "growth": growth}
    (results / "churn.json").write_text(json.dumps(document, indent=1))
    print("\n".join(lines[:4]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

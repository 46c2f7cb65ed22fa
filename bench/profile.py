"""Profile our server under load with py-spy, and say what is hot.

For each test (default: flow, refresh, resource), one of our servers is started pinned to core
1, the driver loads it from core 0, and ``py-spy record`` samples it during the measured window.
The collapsed stacks are summarised three ways: self time by package (where the CPU goes:
our code, FastAPI, Starlette, pydantic, the event loop...), the hottest functions by self time,
and our own functions by inclusive time. py-spy pauses the process to sample, so throughput
while profiling is lower than in ``bench.run``; read shares, not rates.

Usage: python -m bench.profile [--server ours-memory] [--tests flow,refresh,resource] [--duration 10]
Needs py-spy (pip install py-spy) and permission to ptrace the server (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.driver import TEST_TITLES
from bench.servers import ALL, BENCH, ROOT, Running, check, pin

IDLE = ("Server.main_loop", "sleep (asyncio")
LOOP_FRAMES = ("Runner.run (asyncio/runners.py", "run_until_complete", "run_forever", "_run_once")


def package_of(frame: str) -> str:
    """``func (path/to/file.py:12)`` → a readable bucket for the file."""
    location = frame.rsplit("(", 1)[-1].rstrip(")")
    path = location.rsplit(":", 1)[0]
    if any(marker in frame for marker in LOOP_FRAMES):
        return "event loop + socket I/O (uvloop/httptools, C)"
    if path.startswith("<frozen") or path.startswith("<"):
        return "python (frozen/builtin)"
    parts = path.split("/")
    head = parts[0]
    if head in ("site-packages", "lib", "usr"):
        head = parts[-2] if len(parts) > 1 else head
    if head.endswith(".py"):
        return f"stdlib:{head[:-3]}"
    return head


def function_of(frame: str) -> str:
    """Drop the line number: ``func (path:12)`` → ``func (path)``."""
    name, _, location = frame.rpartition(" (")
    return f"{name} ({location.rsplit(':', 1)[0]})"


def summarise(folded: Path, top: int = 20) -> dict[str, object]:
    self_pkg: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    ours_incl: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        if any(marker in frames[-1] for marker in IDLE):
            idle += count
            continue
        leaf = frames[-1]
        self_pkg[package_of(leaf)] += count
        self_fn[function_of(leaf)] += count
        seen = set()
        for frame in frames:
            fn = function_of(frame)
            if "(oauth_server/" in fn and fn not in seen:
                seen.add(fn)
                ours_incl[fn] += count
    busy = max(1, total - idle)

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / busy, 1)) for k, v in counter.most_common(top)]

    return {"samples": total, "idle_samples": idle, "self_by_package": share(self_pkg),
            "self_by_function": share(self_fn), "ours_inclusive": share(ours_incl)}


def profile_test(server_name: str, test: str, args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    server = check(next(s for s in ALL if s.name == server_name))
    if not server.available:
        raise SystemExit(f"{server_name} unavailable: {server.reason}")
    folded = workdir / f"profile-{server_name}-{test}.folded"
    with server.prepared() as tmp:
        running = Running(server, tmp, 1 if not args.no_pin else None)
        try:
            running.wait_ready()
            driver = subprocess.Popen(
                [*pin(0 if not args.no_pin else None), sys.executable, "-m", "bench.driver", running.resource_url,
                 "--adapter", server.adapter, "--tests", test, "--connections", str(args.connections),
                 "--warmup", str(args.warmup), "--duration", str(args.duration),
                 "--server-pid", str(running.process.pid), "--json", str(tmp / "driver.json")],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
            time.sleep(args.warmup + 1.0)  # setup (registrations, first flows) and warm-up
            subprocess.run([args.py_spy, "record", "--pid", str(running.process.pid), "--rate", str(args.rate),
                            "--duration", str(int(args.duration - 1.5)), "--format", "raw", "-o", str(folded),
                            *(["--gil"] if args.gil else [])],
                           check=True, capture_output=True)
            driver.wait(args.duration + 120)
            result = json.loads((tmp / "driver.json").read_text())["tests"][test]
        finally:
            running.stop()
    summary = summarise(folded)
    summary["ops_per_s_while_profiling"] = result["ops_per_s"]
    summary["errors"] = result["errors"]
    return summary


def markdown(server: str, results: dict[str, dict[str, object]]) -> str:
    lines = [f"# Profile of {server} under load (py-spy)", "",
             "Shares of busy samples (idle event-loop waits excluded). `self` = the sampled frame itself;",
             "`inclusive` = anywhere on the stack. Produced by `python -m bench.profile`.", ""]
    for test, r in results.items():
        lines += [f"## {TEST_TITLES[test]}", "",
                  f"{r['samples']} samples, {r['idle_samples']} idle; {r['ops_per_s_while_profiling']:.0f} ops/s "
                  f"while profiled, {r['errors']} errors.", ""]
        for key, title in (("self_by_package", "Self time by package"),
                           ("self_by_function", "Hottest functions (self)"),
                           ("ours_inclusive", "Our functions (inclusive)")):
            lines += [f"**{title}**", "", "| % | where |", "|---:|---|"]
            lines += [f"| {pct} | `{name}` |" for name, pct in r[key]]  # type: ignore[attr-defined]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="ours-memory", choices=[s.name for s in ALL if s.kind == "ours"])
    parser.add_argument("--tests", default="flow,refresh,resource")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--gil", action="store_true",
                        help="sample only the thread holding the GIL: Python CPU share, without the time "
                             "driver threads (aiosqlite's) spend waiting in C on the disk or a lock")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    args.py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(args.py_spy).exists():
        raise SystemExit("py-spy is needed: pip install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {test: profile_test(args.server, test, args, args.out) for test in args.tests.split(",") if test}
    path = args.out / f"profile-{args.server}.md"
    path.write_text(markdown(args.server, results))
    print(f"[bench] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The report: Markdown tables, a JSON of every raw figure, and a bar chart (matplotlib)."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.driver import TEST_TITLES, TESTS

UNITS = {"metadata": "req/s", "register": "clients/s", "flow": "flows/s", "refresh": "grants/s", "resource": "req/s"}
COLORS = {"ours-memory": "#1f77b4", "ours-sqlite": "#4a9bd6", "ours-postgres": "#9cc8ea",
          "example-sqlite": "#2a7ab0",
          "mcp-oauth-server": "#d62728", "reference-e2e": "#e377c2", "mcp-sdk": "#ff7f0e", "starlette": "#7f7f7f",
          "fastapi": "#bcbd22"}


def aggregate(rounds: list[dict[str, dict[str, Any]]], servers: list[str], tests: list[str]) -> dict[str, Any]:
    """Medians over rounds of each (server, test); errors summed; the spread over rounds kept.

    ``ops_per_cpu_s`` divides throughput by the server's own CPU time: on a machine shared with
    other work, a server that got less than its whole core shows it in ``server_cpu_pct``, and this
    figure stays comparable where raw throughput does not.
    """
    summary: dict[str, Any] = {}
    for name in servers:
        per_test: dict[str, Any] = {}
        for test in tests:
            runs = [r[name]["tests"][test] for r in rounds if test in r.get(name, {}).get("tests", {})]
            if not runs:
                continue
            for run in runs:
                cpu = run.get("server_cpu_pct")
                run["ops_per_cpu_s"] = run["ops_per_s"] * 100 / cpu if cpu else None
            ops = [r["ops_per_s"] for r in runs]

            def med(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
                values = [r[key] for r in runs if r.get(key) is not None and r[key] == r[key]]
                return statistics.median(values) if values else None

            per_test[test] = {
                "ops_per_s": statistics.median(ops), "ops_min": min(ops), "ops_max": max(ops), "rounds": len(runs),
                "ops_per_cpu_s": med("ops_per_cpu_s"),
                "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"), "requests_per_op": med("requests_per_op"),
                "errors": sum(r.get("errors", 0) for r in runs),
                "error_samples": [s for r in runs for s in r.get("error_samples", [])][:5],
                "driver_cpu_pct": max((r.get("driver_cpu_pct") or 0.0) for r in runs),
                "server_cpu_pct": med("server_cpu_pct"),
            }
        summary[name] = per_test
    return summary


def write(document: dict[str, Any], out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.json", out / f"{name}.md"]
    paths[0].write_text(json.dumps(_clean(document), indent=2, allow_nan=False) + "\n")
    paths[1].write_text(markdown(document))
    png = out / f"{name}.png"
    try:
        chart(document, png)
        paths.append(png)
    except ImportError:
        print("[bench] matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
    return paths


def _clean(value: Any) -> Any:
    """Strict JSON: NaN (no latency without completed requests) becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _ops(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b or math.isnan(a) or math.isnan(b):
        return "n/a"
    return f"{a / b:.2f}×"


def _names(document: dict[str, Any], kinds: tuple[str, ...]) -> list[str]:
    return [n for n, s in document["servers"].items()
            if s["available"] and s["kind"] in kinds and n in document["summary"]]


def markdown(document: dict[str, Any]) -> str:
    meta, config, summary = document["meta"], document["config"], document["summary"]
    servers = _names(document, ("ours", "baseline", "peer", "ceiling"))
    ours = _names(document, ("ours",))
    baselines = _names(document, ("baseline",))
    peers = _names(document, ("peer", "ceiling"))
    tests = [t for t in TESTS if t in config["tests"]]
    lines: list[str] = []
    add = lines.append
    smoke = " (smoke run: proves the harness works, measures nothing)" if meta["smoke"] else ""
    add(f"# oauth_server benchmark{smoke}")
    add("")
    pinning = (f"server pinned to core {meta['server_core']}, driver to core {meta['driver_core']}"
               if meta["pinned"] else "no core pinning")
    add(f"{meta['started']} · {config['rounds']} round(s), servers interleaved · {config['warmup']:g} s warm-up + "
        f"{config['duration']:g} s measured per test · {config['connections']} keep-alive connections · {pinning} · "
        f"{meta['wall_s']:g} s in all")
    add("")
    add(f"Machine: {meta['machine']}. Python apps on uvicorn ({meta['uvicorn']}), one process, access log off.")
    add("Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
    add("")
    add("Throughput is the median over rounds (min–max across rounds in the detail tables); latency is the")
    add("median over rounds of each round's p50/p99. **A ÷ B** divides A's figure by B's from this same run:")
    add("for throughput above 1 means A is faster, for latency below 1 means A is faster. *Per CPU-s* is")
    add("throughput divided by the server process's own CPU time: it stays comparable when other work on the")
    add("machine took part of the server's core (see the saturation table). See bench/README.md.")
    add("")
    for key, title in (("ops_per_s", "Throughput (median over rounds)"),
                       ("ops_per_cpu_s", "Operations per server CPU-second (median over rounds)")):
        add(f"## {title}")
        add("")
        add("| server | " + " | ".join(f"{TEST_TITLES[t]} ({UNITS[t]})" for t in tests) + " |")
        add("|---|" + "---:|" * len(tests))
        for name in servers:
            add(f"| {name} | " + " | ".join(_ops(summary[name][t].get(key)) if t in summary[name]
                                             else "n/a" for t in tests) + " |")
        add("")
    if ours and peers:
        for key, title in (("ops_per_s", "throughput"), ("ops_per_cpu_s", "per server CPU-second")):
            add(f"## Ours ÷ peers ({title})")
            add("")
            add("| ratio | " + " | ".join(TEST_TITLES[t].split(". ", 1)[0] + ". " + t for t in tests) + " |")
            add("|---|" + "---:|" * len(tests))
            for a in ours:
                for b in peers:
                    cells = [_ratio(summary[a].get(t, {}).get(key), summary[b].get(t, {}).get(key)) for t in tests]
                    add(f"| {a} ÷ {b} | " + " | ".join(cells) + " |")
            add("")
    if baselines:
        add("## Now ÷ baseline (the same server at an earlier commit, same run)")
        add("")
        add("| ratio | " + " | ".join(TEST_TITLES[t].split(". ", 1)[0] + ". " + t for t in tests) + " |")
        add("|---|" + "---:|" * len(tests))
        for then in baselines:
            now = then.split("@", 1)[0]
            if now not in summary:
                continue
            for key, what in (("ops_per_s", "throughput"), ("ops_per_cpu_s", "per CPU-s")):
                cells = [_ratio(summary[now].get(t, {}).get(key), summary[then].get(t, {}).get(key)) for t in tests]
                add(f"| {now} ÷ {then} ({what}) | " + " | ".join(cells) + " |")
        add("")
    for test in tests:
        rows = [n for n in servers if test in summary[n]]
        if not rows:
            continue
        add(f"## {TEST_TITLES[test]}")
        add("")
        others = [p for p in peers if test in summary[p]]
        header = (f"| server | {UNITS[test]} | min–max | per CPU-s | p50 ms | p99 ms | errors | "
                  + " | ".join(f"÷ {p}: {UNITS[test].split('/')[0]}/s · p50 · p99" for p in others) + " |")
        add(header)
        add("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(others))
        for name in rows:
            r = summary[name][test]
            cells = []
            for p in others:
                q = summary[p][test]
                cells.append("—" if p == name else
                             f"{_ratio(r['ops_per_s'], q['ops_per_s'])} · {_ratio(r['p50_ms'], q['p50_ms'])} · "
                             f"{_ratio(r['p99_ms'], q['p99_ms'])}")
            add(f"| {name} | {_ops(r['ops_per_s'])} | {_ops(r['ops_min'])}–{_ops(r['ops_max'])} | "
                f"{_ops(r.get('ops_per_cpu_s'))} | {_ms(r['p50_ms'])} | "
                f"{_ms(r['p99_ms'])} | {r['errors']} | " + " | ".join(cells) + " |")
        if test == "flow":
            per_flow = ", ".join(f"{n} {summary[n]['flow']['requests_per_op']:.0f}" for n in rows
                                 if summary[n]["flow"].get("requests_per_op"))
            add("")
            add(f"HTTP requests per completed flow: {per_flow}. The MCP SDK peer has no consent page: its "
                "authorize() answers with the code at once, so its flow is /authorize + /token only.")
        add("")
    add("## Saturation (median server CPU %, max driver CPU %, over rounds)")
    add("")
    add("The server's core should be near 100 % and the driver's well below it; a driver near 100 % means the")
    add("figure is the driver's limit, not the server's. ours-postgres's database runs outside the pinned core.")
    add("")
    add("| server | " + " | ".join(f"{t}: server · driver" for t in tests) + " |")
    add("|---|" + "---:|" * len(tests))
    for name in servers:
        cells = []
        for t in tests:
            r = summary[name].get(t)
            if r is None:
                cells.append("n/a")
                continue
            server_cpu = "–" if r.get("server_cpu_pct") is None else f"{r['server_cpu_pct']:.0f} %"
            cells.append(f"{server_cpu} · {r['driver_cpu_pct']:.0f} %")
        add(f"| {name} | " + " | ".join(cells) + " |")
    add("")
    skipped = {n: s["reason"] for n, s in document["servers"].items() if not s["available"]}
    failures = {n: v["failed"] for r in document["rounds"] for n, v in r.items() if "failed" in v}
    errors = {(n, t): r["error_samples"] for n in servers for t, r in summary[n].items() if r["errors"]}
    if skipped or failures or errors:
        add("## Not measured, failures and errors")
        add("")
        for n, reason in skipped.items():
            add(f"- {n}: skipped, {reason}")
        for n, reason in failures.items():
            add(f"- {n}: failed in a round: {reason.splitlines()[0][:300]}")
        for (n, t), samples in errors.items():
            add(f"- {n} / {t}: {summary[n][t]['errors']} errors, e.g. `{(samples or ['?'])[0][:200]}`")
        add("")
    add("## Servers")
    add("")
    for n, s in document["servers"].items():
        add(f"- **{n}** ({s['kind']}, flow adapter `{s['adapter']}`): {s['description']}")
    add("")
    return "\n".join(lines)


def chart(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, config = document["summary"], document["config"]
    servers = _names(document, ("ours", "peer", "ceiling"))
    tests = [t for t in TESTS if t in config["tests"]]
    fig, axes = plt.subplots(1, len(tests), figsize=(3.6 * len(tests), 4.6), squeeze=False)
    for ax, test in zip(axes[0], tests, strict=True):
        names = [n for n in servers if test in summary[n]]
        values = [summary[n][test]["ops_per_s"] for n in names]
        low = [v - summary[n][test]["ops_min"] for n, v in zip(names, values, strict=True)]
        high = [summary[n][test]["ops_max"] - v for n, v in zip(names, values, strict=True)]
        bars = ax.bar(range(len(names)), values, color=[COLORS.get(n, "#999999") for n in names],
                      yerr=[low, high], capsize=3, error_kw={"elinewidth": 0.8})
        for bar, value, up in zip(bars, values, high, strict=True):
            ax.annotate(_ops(value), (bar.get_x() + bar.get_width() / 2, bar.get_height() + up),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_title(TEST_TITLES[test], fontsize=9)
        ax.set_ylabel(UNITS[test], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.15)
        ax.spines[["top", "right"]].set_visible(False)
        if not values or math.isnan(max(values)):
            ax.set_visible(False)
    meta = document["meta"]
    fig.suptitle(f"Throughput, median of {config['rounds']} round(s), {config['connections']} connections, "
                 f"{config['duration']:g} s per test ({meta['started'][:10]}; error bars: min–max over rounds)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Re-render the Markdown and the chart from a results JSON (no new measurements)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("json", type=Path, help="e.g. bench/results/latest.json")
    args = parser.parse_args(argv)
    document = json.loads(args.json.read_text())
    names = [n for n, s in document["servers"].items() if s["available"]]
    document["summary"] = aggregate(document["rounds"], names, document["config"]["tests"])
    for path in write(document, args.json.parent, args.json.stem):
        print(f"[bench] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

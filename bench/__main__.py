"""`python -m bench [--only 1,3] [--quick]`: run the benchmarks, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.common import isolate_env, machine

RESULTS = Path(__file__).resolve().parent / "results.json"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default="1,2,3,4,5", help="Benchmarks to run, e.g. 1,3.")
    parser.add_argument("--quick", action="store_true", help="Fewer decisions (a smoke run; figures are noisier).")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Where to write the JSON results.")
    args = parser.parse_args()
    isolate_env()

    from bench import suite

    only = {int(x) for x in args.only.split(",") if x.strip()}
    plan = {
        1: ("critical_path", lambda tmp: suite.critical_path(tmp, runs=1 if args.quick else 5)),
        2: ("concurrency", lambda tmp: suite.concurrency(tmp, n=50)),
        3: ("overhead", lambda tmp: suite.overhead(tmp, n=20 if args.quick else 200)),
        4: ("checkpoint_growth", lambda tmp: suite.checkpoint_growth(tmp)),
        5: ("rerun_cost", lambda tmp: suite.rerun_cost(tmp)),
    }
    label = machine()
    print(f"LeadBoost RADAR benchmarks on this machine: {label['cores']} cores, Python {label['python']}, "
          f"{label['platform']}", flush=True)
    results: dict = {"machine": label, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "quick": args.quick, "benchmarks": {}}
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="radar-bench-"))
    began = time.perf_counter()
    try:
        for number in sorted(only):
            name, run = plan[number]
            start = time.perf_counter()
            print(f"  running {number} {name} ...", file=sys.stderr, flush=True)
            figures = run(tmp)
            figures["seconds"] = round(time.perf_counter() - start, 1)
            rows += figures.pop("rows")
            results["benchmarks"][name] = figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - began, 1)
    print(table(rows))
    print(details(results["benchmarks"]))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['seconds']:.0f} s in all; results written to {args.out}")


def table(rows: list[tuple]) -> str:
    head = ("benchmark", "figure", "value", "target", "ok")
    cells = [head] + [(b, f, v, t, "" if ok is None else ("yes" if ok else "NO")) for b, f, v, t, ok in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n" + "\n".join(lines)


def details(found: dict) -> str:
    out = []
    if "critical_path" in found:
        cp = found["critical_path"]
        steps = ", ".join(f"{s['nodes']} {s['ms']:.0f}ms" + (f" ({s['llm_calls']} calls, {s['critical_calls']} deep)"
                                                               if s["llm_calls"] else "") for s in cp["supersteps"])
        out.append(f"\n1. supersteps of the median decision: {steps}")
        out.append("   time beyond the LLM latency, by superstep: "
                   + ", ".join(f"{nodes} {ms:.0f}ms" for nodes, ms in cp["overhead_ms_by_step"]))
    if "concurrency" in found:
        floor = found["concurrency"]["stack_floor"]
        out.append(f"2. the stand-in graph (bench/floor.py) alone: {floor['single_s'] * 1000:.0f} ms; "
                   f"RADAR alone: {found['concurrency']['single_s'] * 1000:.0f} ms")
    if "overhead" in found:
        out.append(f"3. p90 ms per decision: {found['overhead']['p90_ms']}")
    if "checkpoint_growth" in found:
        growth = found["checkpoint_growth"]
        out.append(f"4. bytes per extra round: {growth['bytes_per_extra_round']}; by rounds: "
                   + "; ".join(f"{r}: {v['checkpoints']} checkpoints, {v['bytes']:,} B, final state "
                               f"{v['final_state_bytes']:,} B" for r, v in growth["by_rounds"].items()))
        top = list(growth["by_channel_at_2_rounds"].items())[:6]
        out.append("   largest channels at 2 rounds (bytes of their stored values, in N copies, + bytes in writes): "
                   + "; ".join(f"{k} {v['checkpoint_bytes']:,} in {v['in_checkpoints']} + {v['write_bytes']:,}"
                               for k, v in top))
    if "rerun_cost" in found:
        usage = found["rerun_cost"]["second_run_usage"]
        out.append(f"5. usage the 2nd (cached) run reports: {usage['calls']} calls, {usage['tokens']} tokens, "
                   f"{usage['cost_usd']} USD; the same brief again in the 1st run's home (budget left and "
                   f"lessons changed, so the prompts differ): {found['rerun_cost']['same_home_third_run_requests']}"
                   " requests")
    return "\n".join(out)


if __name__ == "__main__":
    main()

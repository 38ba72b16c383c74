"""The five benchmarks. Each returns {"rows": table rows, ...figures} for `bench/__main__.py`.

A row is (benchmark, figure, value, target, ok); `ok` is None for a figure with no target.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench.common import (
    LATENCY,
    ROOT,
    RemoteServer,
    TimedServer,
    brief,
    config,
    context,
    prepare_home,
    sample_sources,
    supersteps,
)

Row = tuple[str, str, str, str, bool | None]


# -- 1. critical path -------------------------------------------------------------------


def critical_path(tmp: Path, runs: int = 5) -> dict[str, Any]:
    """One 2-round decision at a time on the CLI's path (sync `invoke`, SQLite checkpoints),
    150 ms per LLM call: wall time over the critical path's LLM latency. Median of `runs`."""
    from graph.builder import build_graph
    from graph.checkpoints import sqlite_checkpointer

    home = prepare_home(tmp / "critical")
    measured = []
    with RemoteServer(latency=LATENCY) as srv, sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, sources=sample_sources)
        ctx = context(home)
        graph.invoke(brief(2), config("warm-up"), context=ctx)  # imports, clients, first-call costs
        for i in range(runs):
            thread, first = f"critical-{i}", srv.total
            start = time.perf_counter()
            out = graph.invoke(brief(2), config(thread), context=ctx)
            wall = time.perf_counter() - start
            assert out["status"] == "executed", out.get("reason")
            arrivals = srv.arrivals[first:]
            steps = supersteps(graph, thread, arrivals, LATENCY)
            measured.append({"wall_s": round(wall, 4), "llm_calls": len(arrivals),
                             "critical_calls": sum(s["critical_calls"] for s in steps),
                             "sequential_calls": sum(s["sequential_calls"] for s in steps), "supersteps": steps})
    run = sorted(measured, key=lambda m: m["wall_s"])[len(measured) // 2]
    ideal = run["critical_calls"] * LATENCY
    ratio = run["wall_s"] / ideal
    overhead = [s for s in run["supersteps"] if s["ms"] - s["critical_calls"] * LATENCY * 1000 > 0.5]
    return {
        "latency_ms": LATENCY * 1000, "wall_s": run["wall_s"], "walls_s": [m["wall_s"] for m in measured], "runs": measured,
        "llm_calls_per_decision": run["llm_calls"], "critical_path_calls": run["critical_calls"],
        "ratio": round(ratio, 3), "target": 1.15, "supersteps": run["supersteps"],
        "overhead_ms_by_step": [[s["nodes"], round(s["ms"] - s["critical_calls"] * LATENCY * 1000, 1)]
                                for s in overhead],
        "rows": [
            ("1 critical path", f"wall / ({run['critical_calls']} critical calls x {LATENCY * 1000:.0f} ms)",
             f"{ratio:.2f} ({run['wall_s'] * 1000:.0f} ms)", "<= 1.15", ratio <= 1.15),
            ("", "LLM calls per decision: total / critical path",
             f"{run['llm_calls']} / {run['critical_calls']}", "", None),
            ("", "runs where side-by-side calls were serialised",
             f"{sum(m['sequential_calls'] > m['critical_calls'] for m in measured)} of {len(measured)}", "0",
             not any(m['sequential_calls'] > m['critical_calls'] for m in measured)),
        ],
    }


# -- 2. concurrency ---------------------------------------------------------------------


def concurrency(tmp: Path, n: int = 50) -> dict[str, Any]:
    """`n` decisions at once on one event loop (ainvoke, async SQLite checkpointer) against one
    decision alone, both at 150 ms per LLM call. A 5 ms ticker measures how long the loop stalls."""
    from bench.floor import floor

    home = prepare_home(tmp / "concurrency")
    with RemoteServer(latency=LATENCY) as srv:
        result = asyncio.run(_concurrency(home, n))
        result["llm_requests"] = srv.total
        result["stack_floor"] = stack = asyncio.run(floor(tmp / "floor.sqlite", srv.base_url, n))
    ratio = result["wall_s"] / result["single_s"]
    result |= {"decisions": n, "ratio": round(ratio, 3), "target": 2.0}
    result["rows"] = [
        ("2 concurrency", f"wall({n} at once) / wall(1)",
         f"{ratio:.2f} ({result['wall_s']:.2f} s / {result['single_s']:.2f} s)", "<= 2.0", ratio <= 2.0),
        ("", "event loop stall, max (1 / at once)",
         f"{result['loop_stall_single_ms']:.0f} / {result['loop_stall_ms']:.0f} ms", "", None),
        ("", "process CPU per decision: alone / at once (x n)",
         f"{result['cpu_ms_single']:.0f} / {result['cpu_ms_per_decision']:.0f} ms "
         f"({n * result['cpu_ms_per_decision'] / 1000:.1f} s)", "", None),
        ("", "stack floor: the same shape and calls, no RADAR code",
         f"{stack['ratio']:.2f} ({stack['wall_s']:.2f} s / {stack['single_s']:.2f} s; "
         f"CPU {stack['cpu_ms_per_decision']:.0f} ms per decision)", "", None),
    ]
    return result


async def _concurrency(home: Path, n: int) -> dict[str, Any]:
    from graph.builder import build_graph
    from graph.checkpoints import async_sqlite_checkpointer

    async with async_sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, sources=sample_sources)
        ctx = context(home)
        await graph.ainvoke(brief(2), config("warm-up"), context=ctx)
        singles, single_stalls, single_cpu = [], [], []
        for i in range(3):
            async with _StallProbe() as probe:
                start, cpu = time.perf_counter(), time.process_time()
                out = await graph.ainvoke(brief(2), config(f"single-{i}"), context=ctx)
                singles.append(time.perf_counter() - start)
                single_cpu.append(time.process_time() - cpu)
            single_stalls.append(probe.worst)
            assert out["status"] == "executed", out.get("reason")
        async with _StallProbe() as probe:
            start, cpu = time.perf_counter(), time.process_time()
            outs = await asyncio.gather(*(graph.ainvoke(brief(2), config(f"many-{i}"), context=ctx)
                                          for i in range(n)))
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    statuses = {o["status"] for o in outs}
    assert statuses == {"executed"}, statuses
    return {"single_s": round(statistics.median(singles), 4), "singles_s": [round(s, 4) for s in singles],
            "wall_s": round(wall, 4), "cpu_ms_per_decision": round(cpu / n * 1000, 1),
            "cpu_ms_single": round(statistics.median(single_cpu) * 1000, 1),
            "loop_stall_single_ms": round(max(single_stalls) * 1000, 1),
            "loop_stall_ms": round(probe.worst * 1000, 1)}


class _StallProbe:
    """Ticks every 5 ms on the running loop; `worst` is the longest it was late."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick, self.worst = tick, 0.0

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.worst = max(self.worst, time.perf_counter() - before - self.tick)

    async def __aenter__(self) -> _StallProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()


# -- 3. orchestration overhead ----------------------------------------------------------


def overhead(tmp: Path, n: int = 200) -> dict[str, Any]:
    """`n` 2-round decisions per checkpointer on a zero-latency scripted model (sync invoke),
    interleaved so that a noisy neighbour hits the three alike. Median ms per decision."""
    from langgraph.checkpoint.memory import InMemorySaver

    from graph.checkpoints import serializer, sqlite_checkpointer

    model = scripted_model()
    savers = {"sqlite": lambda home: sqlite_checkpointer(home),
              "memory": lambda home: nullcontext(InMemorySaver(serde=serializer())),
              "none": lambda home: nullcontext(None)}
    times: dict[str, list[float]] = {name: [] for name in savers}
    with _entered(savers, tmp, model) as graphs:
        for i in range(-5, n):  # five warm-up decisions each
            for name, (graph, ctx) in graphs.items():
                start = time.perf_counter()
                out = graph.invoke(brief(2), config(f"overhead-{i}"), context=ctx)
                elapsed = time.perf_counter() - start
                assert out["status"] == "executed", out.get("reason")
                if i >= 0:
                    times[name].append(elapsed)
            model.calls.clear()
    medians = {name: round(statistics.median(t) * 1000, 1) for name, t in times.items()}
    p90 = {name: round(statistics.quantiles(t, n=10)[-1] * 1000, 1) for name, t in times.items()}
    return {
        "decisions": n, "median_ms": medians, "p90_ms": p90,
        "rows": [("3 overhead", f"median ms per decision ({n}, zero-latency model): sqlite / memory / none",
                  f"{medians['sqlite']:.0f} / {medians['memory']:.0f} / {medians['none']:.0f}", "", None)],
    }


class _entered:
    """Open every checkpointer, each on its own seeded home; yield name -> (graph, context)."""

    def __init__(self, savers: dict, tmp: Path, model) -> None:
        self.savers, self.tmp, self.model, self.stack = savers, tmp, model, []

    def __enter__(self) -> dict[str, tuple[Any, Any]]:
        from graph.builder import build_graph

        graphs = {}
        for name, make in self.savers.items():
            home = prepare_home(self.tmp / f"overhead-{name}")
            manager = make(home)
            self.stack.append(manager)
            graphs[name] = (build_graph(manager.__enter__(), llm=self.model, sources=sample_sources),
                            context(home, provider="offline"))
        return graphs

    def __exit__(self, *exc: object) -> None:
        for manager in reversed(self.stack):
            manager.__exit__(None, None, None)


def scripted_model():
    """A zero-latency chat model: a 2-round debate (the CEO revises once), then copy."""
    import re

    from tests.fakes import ScriptedChatModel

    split = [{"channel": "search", "amount": 3000.0}, {"channel": "email", "amount": 600.0}]

    def ceo(messages):
        found = re.search(r"Round (\d+) of at most (\d+)", messages[0].content)
        last = not found or int(found.group(1)) >= int(found.group(2))
        return {"action": "approve" if last else "revise", "rationale": "The numbers hold.",
                "guidance": "" if last else "Lead with wet-rock grip.", "allocations": split, "cited_signals": []}

    return ScriptedChatModel(scripts={
        "cmo": lambda m: {"argument": "Search and email convert best.", "message": "Grip for wet trails.",
                          "allocations": split, "cited_signals": []},
        "cfo": lambda m: {"stance": "support", "argument": "Pays back.", "recommended_budget": 3600.0,
                          "cut_channels": [], "cited_signals": []},
        "ceo": ceo,
        "copywriter": lambda m: {"headline": "Trail Sneaker X", "body": "Grip on wet granite.",
                                 "call_to_action": "Shop now"},
    })


# -- 4. checkpoint growth ---------------------------------------------------------------


def checkpoint_growth(tmp: Path, rounds: tuple[int, ...] = (1, 2, 3, 5)) -> dict[str, Any]:
    """Bytes a decision writes to the checkpoint database (checkpoint rows and metadata, the
    channel values stored apart in `checkpoint_blobs`, and pending writes) by debate rounds,
    against the final state's serialised size."""
    from graph.builder import build_graph
    from graph.checkpoints import checkpoint_path, serializer, sqlite_checkpointer

    home = prepare_home(tmp / "growth")
    serde = serializer()
    per_round: dict[int, dict[str, Any]] = {}
    with TimedServer(latency=0.0), sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, sources=sample_sources)
        ctx = context(home)
        for r in rounds:
            thread = f"growth-{r}"
            out = graph.invoke(brief(r), config(thread), context=ctx)
            assert out["status"] == "executed", out.get("reason")
            values = graph.get_state(config(thread)).values
            assert len(values["debate"]) == 3 * r, len(values["debate"])
            per_round[r] = {"final_state_bytes": len(serde.dumps_typed(values)[1])}
    conn = sqlite3.connect(checkpoint_path(home))
    try:
        for r in rounds:
            thread = f"growth-{r}"
            count, blobs, meta = conn.execute(
                "SELECT COUNT(*), SUM(LENGTH(checkpoint)), SUM(LENGTH(metadata)) FROM checkpoints WHERE thread_id = ?",
                [thread]).fetchone()
            writes = conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?",
                                  [thread]).fetchone()[0]
            values = conn.execute("SELECT COALESCE(SUM(LENGTH(blob)), 0) FROM checkpoint_blobs WHERE thread_id = ?",
                                  [thread]).fetchone()[0]
            per_round[r] |= {"checkpoints": count, "checkpoint_bytes": blobs + meta + values, "value_bytes": values,
                             "write_bytes": writes, "bytes": blobs + meta + values + writes}
        by_channel = _bytes_by_channel(conn, "growth-2", serde)
    finally:
        conn.close()
    sizes = [per_round[r]["bytes"] for r in rounds]
    steps = [(b - a) / (rb - ra) for (ra, a), (rb, b) in zip(zip(rounds, sizes), zip(rounds[1:], sizes[1:]))]
    linear = max(steps) / min(steps) <= 1.25 if min(steps) > 0 else False
    two = per_round.get(2) or per_round[rounds[0]]
    multiple = two["bytes"] / two["final_state_bytes"]
    return {
        "by_rounds": per_round, "bytes_per_extra_round": [round(s) for s in steps], "linear": linear,
        "bytes_over_final_state_at_2_rounds": round(multiple, 2), "target": 10, "by_channel_at_2_rounds": by_channel,
        "rows": [
            ("4 checkpoints", "KB per decision at " + " / ".join(f"{r}" for r in rounds) + " rounds",
             " / ".join(f"{per_round[r]['bytes'] / 1000:.0f}" for r in rounds), "linear", linear),
            ("", "bytes per decision / final state, 2 rounds",
             f"{multiple:.1f}x ({two['bytes'] / 1000:.0f} KB / {two['final_state_bytes'] / 1000:.1f} KB)",
             "<= 10x", multiple <= 10),
        ],
    }


def _bytes_by_channel(conn: sqlite3.Connection, thread: str, serde) -> dict[str, dict[str, int]]:
    """Where a thread's bytes go: each channel's stored copies (`in_checkpoints`: values inline in
    checkpoint rows, as the plain savers write them, plus rows of `checkpoint_blobs`) and their
    size, and the size of its pending writes."""
    channels: dict[str, dict[str, int]] = {}
    for type_, blob in conn.execute("SELECT type, checkpoint FROM checkpoints WHERE thread_id = ?", [thread]):
        for name, value in serde.loads_typed((type_, blob)).get("channel_values", {}).items():
            entry = channels.setdefault(name, {"in_checkpoints": 0, "checkpoint_bytes": 0, "write_bytes": 0})
            entry["in_checkpoints"] += 1
            entry["checkpoint_bytes"] += len(serde.dumps_typed(value)[1])
    for name, copies, size in conn.execute("SELECT channel, COUNT(*), SUM(LENGTH(blob)) FROM checkpoint_blobs "
                                           "WHERE thread_id = ? AND type != 'empty' GROUP BY channel", [thread]):
        entry = channels.setdefault(name, {"in_checkpoints": 0, "checkpoint_bytes": 0, "write_bytes": 0})
        entry["in_checkpoints"] += copies
        entry["checkpoint_bytes"] += size
    for name, size in conn.execute("SELECT channel, SUM(LENGTH(value)) FROM writes WHERE thread_id = ? "
                                   "GROUP BY channel", [thread]):
        channels.setdefault(name, {"in_checkpoints": 0, "checkpoint_bytes": 0, "write_bytes": 0})["write_bytes"] = size
    ranked = sorted(channels.items(), key=lambda kv: -(kv[1]["checkpoint_bytes"] + kv[1]["write_bytes"]))
    return {name: entry for name, entry in ranked if entry["checkpoint_bytes"] + entry["write_bytes"] > 0}


# -- 5. re-run cost ---------------------------------------------------------------------


def rerun_cost(tmp: Path) -> dict[str, Any]:
    """The same brief at the same clock, twice, with the SQLite LLM cache on: the first run in
    this process, the second in a new process on a store seeded the same way."""
    from bench.rerun import decide

    cache = tmp / "rerun-llm-cache.sqlite"
    with TimedServer(latency=0.0) as srv:
        first = decide(prepare_home(tmp / "rerun-first"), cache, "rerun")
        first_requests = srv.total
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(
            [sys.executable, "-m", "bench.rerun", "--home", str(prepare_home(tmp / "rerun-second")),
             "--cache", str(cache), "--thread", "rerun"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"bench.rerun failed:\n{proc.stderr[-3000:]}")
        second = json.loads(proc.stdout)
        second_requests = srv.total - first_requests
        # the first home again: its budget left and lessons moved with the first run, so the prompts differ
        third = decide(tmp / "rerun-first", cache, "rerun-same-home")
        same_home_requests = srv.total - first_requests - second_requests
    keys = ("status", "verdict", "plan", "copy", "debate")
    same = all(first[k] == second[k] for k in keys)
    return {
        "first_run_requests": first_requests, "second_run_requests": second_requests, "same_decision": same,
        "second_run_usage": second["usage"], "first_run_usage": first["usage"],
        "same_home_third_run_requests": same_home_requests, "third_run_status": third["status"], "target": 0,
        "rows": [("5 re-run cost", "new LLM requests on the identical 2nd run (new process)",
                  f"{second_requests} (1st run: {first_requests}); same decision: {'yes' if same else 'NO'}",
                  "0", second_requests == 0 and same)],
    }


__all__ = ["critical_path", "concurrency", "overhead", "checkpoint_growth", "rerun_cost"]

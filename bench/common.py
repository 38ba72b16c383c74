"""What the benchmarks share: a clean environment, the fake OpenAI server with request
timings, a responder that debates a chosen number of rounds, a business store whose
budget never runs out, and the superstep / critical-path accounting."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests` is a folder at the repo root, not an installed package
    sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import OpenAIServer, default_responder, default_split  # noqa: E402

NOW = "2026-11-28T12:00:00+00:00"
LATENCY = 0.150
QUICK, DEEP = "gpt-4.1-mini", "gpt-4.1"  # names the price table knows, so usage has a cost
GOAL = "Launch the trail sneaker in Spain, up to 8,000 EUR"

#: Settings that would send a benchmark to a real model, a real source or LangSmith.
_ISOLATED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEWS_API_KEY", "NEWS_API_BASE_URL", "TWITTER_BEARER_TOKEN",
             "TWITTER_API_BASE_URL", "HN_API_BASE_URL", "LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT")


def isolate_env() -> None:
    """No developer setting leaks in: no keys, no LEADBOOST_* overrides, no tracing."""
    for name in list(os.environ):
        if name in _ISOLATED or name.startswith("LEADBOOST_"):
            del os.environ[name]
    os.environ["LANGSMITH_TRACING"] = "false"
    os.environ["LANGCHAIN_TRACING_V2"] = "false"


def brief(rounds: int = 2) -> dict[str, Any]:
    return {"brief": {"goal": GOAL, "budget": 8000, "market": "ES", "max_rounds": rounds}}


def debate_responder(schema: str, body: dict) -> dict:
    """Valid answers (tests' default responder), except that the CEO asks for another round
    until the brief's last one: a brief with `max_rounds` N debates exactly N rounds."""
    if schema == "CeoAnswer":
        found = re.search(r"Round (\d+) of at most (\d+)", str(body["messages"][0].get("content", "")))
        if found and int(found.group(1)) < int(found.group(2)):
            return {"action": "revise", "rationale": "Sharpen the message before we spend.",
                    "guidance": "Lead with wet-rock grip.", "allocations": default_split(body), "cited_signals": []}
    return default_responder(schema, body)


@dataclass(frozen=True)
class Arrival:
    wall: float  # time.time(), comparable with checkpoint timestamps
    schema: str
    lane: str = ""  # what may run beside other requests of its node: the channel of a copy request


def lane_of(schema: str, body: dict) -> str:
    """A request's lane: its schema (one node), and for copy its channel (one request per
    channel, side by side by design)."""
    found = re.search(r"Channel: (\w+)\.", str((body.get("messages") or [{}])[0].get("content", "")))
    return f"{schema}:{found.group(1)}" if schema == "CopyAnswer" and found else schema


class TimedServer(OpenAIServer):
    """The tests' fake server, noting when each request arrived."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("responder", debate_responder)
        super().__init__(**kwargs)
        self.arrivals: list[Arrival] = []
        self._arrivals_lock = threading.Lock()

    def __enter__(self) -> TimedServer:
        super().__enter__()
        os.environ["OPENAI_API_KEY"] = "bench-key"
        os.environ["OPENAI_BASE_URL"] = self.base_url
        return self

    def _plan(self, schema: str, body: dict) -> Any:
        with self._arrivals_lock:
            self.arrivals.append(Arrival(time.time(), schema, lane_of(schema, body)))
        return super()._plan(schema, body)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class RemoteServer:
    """A `TimedServer` in a process of its own, as a real model server would be: its threads
    (one per connection, JSON in and out) do not compete with the decisions for this
    process's GIL. `stats()` returns its counters and request arrivals."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency

    def __enter__(self) -> RemoteServer:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, self.latency), daemon=True)
        self._process.start()
        self.base_url = self._conn.recv()
        os.environ["OPENAI_API_KEY"] = "bench-key"
        os.environ["OPENAI_BASE_URL"] = self.base_url
        return self

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        found = self._conn.recv()
        found["arrivals"] = [Arrival(*a) for a in found["arrivals"]]
        return found

    @property
    def total(self) -> int:
        return self.stats()["total"]

    @property
    def arrivals(self) -> list[Arrival]:
        return self.stats()["arrivals"]

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send("stop")
            self._process.join(timeout=10)
        finally:
            if self._process.is_alive():
                self._process.terminate()


def _serve(conn, latency: float) -> None:
    with TimedServer(latency=latency) as srv:
        conn.send(srv.base_url)
        while (command := conn.recv()) != "stop":
            if command == "stats":
                with srv._arrivals_lock:
                    arrivals = [(a.wall, a.schema, a.lane) for a in srv.arrivals]
                conn.send({"total": srv.total, "requests": dict(srv.requests), "arrivals": arrivals})


def sample_sources(client, now, context):
    """The bundled sample signals only: nothing leaves the machine."""
    from tools.sources.sample import SampleSource

    return [SampleSource(now)]


def context(home: str | Path, **overrides: Any):
    from state import Context

    settings = {"home": str(home), "provider": "openai", "now": NOW, "quick_model": QUICK, "deep_model": DEEP,
                "llm_timeout": 60.0}
    return Context(**(settings | overrides))


def prepare_home(home: str | Path) -> Path:
    """A seeded store whose budget never runs out, so that hundreds of decisions follow the same path."""
    from state import clock
    from tools.seed import open_store

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with open_store(str(home), clock(context(home))) as store:
        store.db.execute("UPDATE budgets SET allocated = 1e12")
    return home


def config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


# -- supersteps and the critical path -------------------------------------------------


def supersteps(graph, thread_id: str, arrivals: list[Arrival], latency: float) -> list[dict[str, Any]]:
    """Each superstep of a finished thread (from its checkpoint history) with its duration and
    its LLM requests (by arrival time). `critical_calls`: the most requests any one lane of the
    step made (a node's re-asks follow each other; CMO beside CFO, and the copy of each channel,
    run side by side by design). `sequential_calls`: the longest chain of requests that did
    follow each other in time; more than `critical_calls` means side-by-side work was serialised."""
    history = list(reversed(list(graph.get_state_history(config(thread_id)))))
    moments = [datetime.fromisoformat(s.created_at).timestamp() for s in history]
    steps = []
    for i, snap in enumerate(history):
        if not snap.next:
            continue
        start, end = moments[i], moments[i + 1] if i + 1 < len(moments) else float("inf")
        calls = [a for a in arrivals if start <= a.wall < end]
        lanes = Counter(a.lane for a in calls)
        steps.append({"nodes": "+".join(sorted(snap.next)), "ms": round((end - start) * 1000, 1),
                      "llm_calls": len(calls), "critical_calls": max(lanes.values(), default=0),
                      "sequential_calls": _longest_chain(sorted(a.wall for a in calls), latency)})
    return steps


def _longest_chain(starts: list[float], latency: float) -> int:
    """Longest sequence of requests each sent after the previous one's answer (start + latency)."""
    best: list[int] = []
    for i, s in enumerate(starts):
        best.append(1 + max((best[j] for j in range(i) if s >= starts[j] + latency * 0.999), default=0))
    return max(best, default=0)


def machine() -> dict[str, Any]:
    import platform

    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}

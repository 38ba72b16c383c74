"""The SQLite LLM cache (`Context.llm_cache`, LEADBOOST_LLM_CACHE): an identical run at the
same clock is answered from the cache, in this process or another one, with no request to
the model server and the same decision; a changed prompt is asked again.

The second run uses a fresh home seeded the same way: in the first run's home the budget
left and the lessons have moved (the first campaign was booked), so the prompts differ.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import build_graph
from graph.checkpoints import serializer, sqlite_checkpointer
from graph.runs import decision
from state import Context
from tests.fakes.openai_server import OpenAIServer, default_split
from tools.sources.sample import SampleSource

#: pytest resets warning filters per test; the product silences this one (agents/cache.py) outside pytest
pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.LangChainBetaWarning")

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-28T12:00:00+00:00"
GOAL = "Launch the trail sneaker in Spain, up to 8,000 EUR"
SAME = ("status", "verdict", "plan", "copy", "debate")


def sample_only(client, now, context):
    return [SampleSource(now)]


def revise_round_one(schema: str, body: dict) -> dict | None:
    """Two rounds: the CEO revises round 1 (so the cache holds round-2 prompts too)."""
    if schema == "CeoAnswer" and "Round 1 of" in body["messages"][0]["content"]:
        return {"action": "revise", "rationale": "Once more.", "guidance": "Lead with grip.",
                "allocations": default_split(body), "cited_signals": []}
    return None


def responder(schema: str, body: dict):
    from tests.fakes.openai_server import default_responder

    return revise_round_one(schema, body) or default_responder(schema, body)


def run(home: Path, cache: str, thread: str = "cached", goal: str = GOAL) -> dict:
    ctx = Context(home=str(home), provider="openai", now=NOW, quick_model="radar-quick", deep_model="radar-deep",
                  llm_cache=cache, llm_timeout=20)
    config = {"configurable": {"thread_id": thread}}
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, sources=sample_only)
        graph.invoke({"brief": {"goal": goal, "budget": 8000, "max_rounds": 2}}, config, context=ctx)
        result = decision(thread, graph.get_state(config))
    return json.loads(json.dumps(result, default=str))


def point_at(srv: OpenAIServer, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cache")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)


def test_an_identical_second_run_sends_no_request_and_decides_the_same(tmp_path, monkeypatch):
    cache = str(tmp_path / "llm-cache.sqlite")
    with OpenAIServer(responder=responder) as srv:
        point_at(srv, monkeypatch)
        first = run(tmp_path / "first", cache)
        asked = sum(srv.requests.values())
        second = run(tmp_path / "second", cache)
        again = sum(srv.requests.values()) - asked

    assert first["status"] == "executed" and first["round"] == 2
    assert asked == 8  # cmo, cfo, ceo twice; one copy per planned channel (2)
    assert again == 0
    assert {k: second[k] for k in SAME} == {k: first[k] for k in SAME}
    # nothing was sent, so nothing is counted or priced
    assert first["usage"]["calls"] == 8 and first["usage"]["tokens"] > 0
    assert (second["usage"]["calls"], second["usage"]["tokens"], second["usage"]["cost_usd"]) == (0, 0, 0)


def test_the_cache_answers_a_run_in_another_process(tmp_path, monkeypatch):
    cache = tmp_path / "llm-cache.sqlite"
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_cache import run
        print(json.dumps(run(Path(sys.argv[1]), sys.argv[2])))
    """)
    with OpenAIServer(responder=responder) as srv:
        point_at(srv, monkeypatch)
        first = run(tmp_path / "first", str(cache))
        asked = sum(srv.requests.values())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADBOOST_", "LANGSMITH_", "LANGCHAIN_"))}
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "second"), str(cache)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        again = sum(srv.requests.values()) - asked

    second = json.loads(proc.stdout.strip().splitlines()[-1])
    assert asked == 8 and again == 0
    assert {k: second[k] for k in SAME} == {k: first[k] for k in SAME}
    assert "Warning" not in proc.stderr  # reading the cache back is quiet


def test_a_changed_prompt_is_asked_again(tmp_path, monkeypatch):
    cache = str(tmp_path / "llm-cache.sqlite")
    with OpenAIServer(responder=responder) as srv:
        point_at(srv, monkeypatch)
        run(tmp_path / "first", cache)
        asked = sum(srv.requests.values())
        other = run(tmp_path / "second", cache, goal="Launch the trail sneaker in Spain for wet autumn runs, 8,000 EUR")

    assert other["status"] == "executed"
    assert sum(srv.requests.values()) - asked == 8  # every prompt quotes the brief: nothing matches


def test_without_the_cache_every_run_asks(tmp_path, monkeypatch):
    with OpenAIServer(responder=responder) as srv:
        point_at(srv, monkeypatch)
        run(tmp_path / "first", "")
        run(tmp_path / "second", "")
    assert sum(srv.requests.values()) == 16


def test_on_keeps_the_cache_in_the_home(tmp_path, monkeypatch):
    with OpenAIServer(responder=responder) as srv:
        point_at(srv, monkeypatch)
        run(tmp_path / "home", "on")
    assert (tmp_path / "home" / "llm_cache.sqlite").is_file()


def test_model_clients_are_per_event_loop_so_successive_loops_work(tmp_path, monkeypatch):
    """`agents.llm` keeps one model client per event loop (and per settings): a connection opened on
    one loop must never be reused on another. langchain-openai's default HTTP client is shared by the
    whole process, so `asyncio.run(graph.ainvoke(...))` twice, or `invoke` then `ainvoke`, failed with
    "Event loop is closed" on the second loop before each client got its own HTTP client."""
    ctx = Context(home=str(tmp_path), provider="openai", now=NOW, quick_model="radar-quick", deep_model="radar-deep",
                  llm_timeout=20, llm_retries=0)
    brief = {"brief": {"goal": GOAL, "budget": 8000}}
    with OpenAIServer() as srv:
        point_at(srv, monkeypatch)
        graph = build_graph(InMemorySaver(serde=serializer()), sources=sample_only)
        runs = [asyncio.run(graph.ainvoke(brief, {"configurable": {"thread_id": f"loop-{i}"}}, context=ctx))
                for i in range(2)]
        runs.append(graph.invoke(brief, {"configurable": {"thread_id": "sync"}}, context=ctx))
        runs.append(asyncio.run(graph.ainvoke(brief, {"configurable": {"thread_id": "loop-3"}}, context=ctx)))
    assert [r["status"] for r in runs] == ["executed"] * 4
    assert sum(srv.requests.values()) == 4 * 5  # cmo, cfo, ceo, and copy for two channels, each run

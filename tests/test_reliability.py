"""Reliability on the OpenAI path and under concurrency.

- 50 decisions at once through the real `langchain-openai` client against the local fault
  server, with ~30% transient faults (429 with Retry-After, 500, 503, connection reset, client
  timeout) and some unusable answers (cut off, wrong schema, no choices). The faults are drawn
  per call and attempt from a seeded RNG, never from arrival order, so the traffic each decision
  must cause is known in advance and the counts are asserted exactly: one extra request per
  transient fault (the client's retry), one corrective re-ask per unusable answer, nothing else.
- One unusable answer of each kind: exactly one corrective re-ask, then success; twice: the
  node fails after two requests, with no third.
- Plans checked while the budget was free, executed after it was spent by others: the period's
  budget is still never exceeded (the actuator reserves before it orders).
- Concurrent first use of an empty home seeds the store once.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from datetime import datetime
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langgraph.types import Command

from agents.llm import StructuredOutputError
from graph.builder import build_graph
from graph.checkpoints import async_sqlite_checkpointer
from graph.runs import status_of
from state import Context
from tests.fakes.openai_server import Fault, OpenAIServer, default_responder
from tools.seed import QUARTERLY_BUDGET, open_store
from tools.store import OverBudget, Store

NOW = "2026-11-28T12:00:00+00:00"
PERIOD = "2026-Q4"
QUICK, DEEP = "radar-quick-test", "radar-deep-test"
SEED = 20261128
DECISIONS = 50
RETRIES = 3            # Context.llm_retries: the client's retries of a transient fault
TRANSIENT_RATE = 0.30  # per request (a call's first RETRIES attempts)
ANSWER_RATE = 0.10     # per first ask of a call: an unusable answer, re-asked once by `ask`
TRANSIENT = ("429", "500", "503", "reset", "timeout")
UNUSABLE = ("truncated", "bad_schema", "no_choices")
#: In the mix: the unusable answers whose tokens the client reports (a reply with no choice at all
#: loses its usage inside langchain-openai, so the exact token count below could not hold).
MIXED_UNUSABLE = ("truncated", "bad_schema")
#: Messages a corrective re-ask adds: a cut-off or empty answer gets one note, a wrong one is
#: quoted back with the error (two messages). Every role's first ask has two (system, user).
REASK_ADDS = {"truncated": 1, "no_choices": 1, "bad_schema": 2}
FIRST_ASK = 2
TAG = re.compile(r"\bcase (d\d\d)\b")


def brief(i: int) -> dict:
    # 50 x 1,000 EUR fits the quarter's 60,000: every decision can be executed.
    return {"goal": f"Launch the trail sneaker in Spain, case d{i:02d}", "budget": 1000, "market": "ES",
            "channels": ["search", "email"]}


def fault_for(call: tuple, attempt: int) -> str | None:
    """The deterministic fate of one request: `call` is (decision, schema, channel, messages sent)."""
    rng = random.Random(f"{SEED}|{call}|{attempt}")
    if attempt <= RETRIES and rng.random() < TRANSIENT_RATE:  # never more faults in a row than retries
        return rng.choice(TRANSIENT)
    if call[3] == FIRST_ASK and rng.random() < ANSWER_RATE:
        return rng.choice(MIXED_UNUSABLE)
    return None


def expected_traffic(tag: str, channels: list[str]) -> tuple[Counter, Counter, int]:
    """What a decision must cost if the client retries each transient fault once and `ask`
    re-asks each unusable answer once: (requests by schema, faults by kind, answered calls)."""
    requests, faults, answered = Counter(), Counter(), 0
    calls = [("CmoAnswer", ""), ("CfoAnswer", ""), ("CeoAnswer", "")] + [("CopyAnswer", c) for c in channels]
    for schema, channel in calls:
        sent = FIRST_ASK
        while True:
            attempt = 0
            while True:  # the client's retries
                attempt += 1
                requests[schema] += 1
                kind = fault_for((tag, schema, channel, sent), attempt)
                if kind in TRANSIENT:
                    faults[kind] += 1
                    continue
                break
            answered += 1
            if kind in UNUSABLE:
                faults[kind] += 1
                sent += REASK_ADDS[kind]
                continue
            break
    return requests, faults, answered


class FaultPlan:
    """Responder for OpenAIServer: attributes each request to its decision and call, serves the
    planned fault or a valid answer, and counts what each decision received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: Counter = Counter()
        self.requests: defaultdict[str, Counter] = defaultdict(Counter)
        self.faults: defaultdict[str, Counter] = defaultdict(Counter)

    def __call__(self, schema: str, body: dict):
        text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
        tag = TAG.search(text).group(1)  # the goal (debate) or the CMO's message (copy) names it
        channel = re.search(r"Channel: (\w+)\.", text).group(1) if schema == "CopyAnswer" else ""
        call = (tag, schema, channel, len(body["messages"]))
        with self.lock:
            self.attempts[call] += 1
            kind = fault_for(call, self.attempts[call])
            self.requests[tag][schema] += 1
            if kind:
                self.faults[tag][kind] += 1
        if kind:
            return Fault(kind)
        answer = default_responder(schema, body)
        if schema == "CmoAnswer":
            answer["message"] = f"Grip for wet trails, case {tag}."
        return answer


@pytest.fixture
def openai_env(monkeypatch):
    def point_at(srv: OpenAIServer) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)

    return point_at


async def test_fifty_concurrent_decisions_through_transient_faults(tmp_path, openai_env):
    plan = FaultPlan()
    home = tmp_path / "home"
    # The server stalls longer than the client waits: a "timeout" is the client's own timeout.
    with OpenAIServer(responder=plan, stall=10.0, retry_after="0.01") as srv:
        openai_env(srv)
        ctx = Context(home=str(home), provider="openai", now=NOW, quick_model=QUICK, deep_model=DEEP,
                      llm_timeout=3.0, llm_retries=RETRIES, forecast_draws=2000)
        async with async_sqlite_checkpointer(home) as saver:
            graph = build_graph(saver)
            outs = await asyncio.gather(*(
                graph.ainvoke({"brief": brief(i)}, {"configurable": {"thread_id": f"rel-{i:02d}"}}, context=ctx)
                for i in range(DECISIONS)))

    tags = [f"d{i:02d}" for i in range(DECISIONS)]
    served = {kind: srv.faults_served[kind] for kind in (*TRANSIENT, *MIXED_UNUSABLE)}
    print(f"\n{DECISIONS} decisions, {sum(srv.requests.values())} requests, faults served {served}")

    # every decision finished, and decided
    assert {o["status"] for o in outs} <= {"executed", "rejected"}, [o.get("reason") for o in outs]
    assert all(o["status"] == "executed" for o in outs)  # 50 x 1,000 fits the quarter

    # the fault mix is what the test claims: every transient kind, ~30% of the requests
    assert all(served[kind] > 0 for kind in (*TRANSIENT, *MIXED_UNUSABLE)), served
    transient = sum(served[k] for k in TRANSIENT)
    assert 0.2 < transient / sum(srv.requests.values()) < 0.4

    # exact traffic per decision: one retry per transient fault, one re-ask per unusable answer
    expected_faults, expected_requests = Counter(), Counter()
    for tag, out in zip(tags, outs):
        requests, faults, answered = expected_traffic(tag, sorted(out["plan"].channels))
        assert plan.requests[tag] == requests, tag
        assert plan.faults[tag] == faults, tag
        assert out["usage"].calls == answered, tag  # every HTTP 200 is paid for, faults are not
        assert sum(requests.values()) == answered + sum(faults[k] for k in TRANSIENT), tag
        expected_faults += faults
        expected_requests += requests
    # and the server's own counters agree: requests = answers + transient faults, nothing unattributed
    assert srv.requests == expected_requests
    assert srv.faults_served == expected_faults
    answers = sum(o["usage"].calls for o in outs)  # every HTTP 200, usable or not
    unusable = sum(served[k] for k in MIXED_UNUSABLE)
    assert sum(srv.requests.values()) == answers + transient == (answers - unusable) + sum(srv.faults_served.values())
    assert sum(o["usage"].tokens for o in outs) == srv.tokens()  # cut-off answers are counted too

    # exactly once: one execution and one ledger row per executed channel per campaign
    with Store.at_home(home) as store:
        per_channel = store.db.execute(
            "SELECT campaign_id, channel, COUNT(*), SUM(status = 'executed') FROM executions GROUP BY 1, 2").fetchall()
        ledger = store.db.execute(
            "SELECT campaign_id, channel, COUNT(*) FROM ledger WHERE period = ? GROUP BY 1, 2", [PERIOD]).fetchall()
        spent = store.spent(PERIOD)
    planned = {(o["campaign"].id, e.channel) for o in outs for e in o["campaign"].executions}
    assert len(planned) == sum(len(o["plan"].channels) for o in outs)
    assert {(c, ch) for c, ch, _, _ in per_channel} == planned
    assert all(n == 1 and done == 1 for _, _, n, done in per_channel)
    assert {(c, ch): n for c, ch, n in ledger} == {key: 1 for key in planned}
    assert spent == pytest.approx(sum(o["campaign"].spend for o in outs)) and spent <= QUARTERLY_BUDGET


@pytest.mark.parametrize("kind", UNUSABLE)
async def test_an_unusable_answer_is_reasked_once_then_accepted(tmp_path, openai_env, kind):
    with OpenAIServer(responder={"CmoAnswer": [Fault(kind)]}) as srv:
        openai_env(srv)
        ctx = Context(home=str(tmp_path), provider="openai", now=NOW, quick_model=QUICK, deep_model=DEEP,
                      llm_timeout=10, forecast_draws=2000)
        out = await build_graph().ainvoke({"brief": brief(0)}, {"configurable": {"thread_id": "reask"}}, context=ctx)

    assert out["status"] == "executed", out.get("reason")
    assert srv.faults_served == Counter({kind: 1})
    assert srv.requests["CmoAnswer"] == 2  # the answer and one corrective re-ask, not more
    first, second = [b for b in srv.received if b["response_format"]["json_schema"]["name"] == "CmoAnswer"]
    assert second["messages"][:FIRST_ASK] == first["messages"]
    assert len(second["messages"]) == FIRST_ASK + REASK_ADDS[kind]
    note = second["messages"][-1]["content"]
    assert "CmoAnswer" in note and ("cut off or empty" in note if kind != "bad_schema" else "rejected" in note)
    cmo = out["usage"].lines[f"cmo/{QUICK}"]
    assert cmo.calls == 2  # both answers are paid for
    if kind != "no_choices":  # (with no choice at all, langchain-openai drops the reply's usage)
        sent = srv.usage["CmoAnswer"]
        assert (cmo.input_tokens, cmo.output_tokens) == (sent["prompt_tokens"], sent["completion_tokens"])


@pytest.mark.parametrize("kind", UNUSABLE)
async def test_two_unusable_answers_fail_the_node_after_two_requests(tmp_path, openai_env, kind):
    with OpenAIServer(responder={"CeoAnswer": [Fault(kind), Fault(kind)]}) as srv:
        openai_env(srv)
        ctx = Context(home=str(tmp_path), provider="openai", now=NOW, quick_model=QUICK, deep_model=DEEP,
                      llm_timeout=10, forecast_draws=2000)
        with pytest.raises(StructuredOutputError) as failure:
            await build_graph().ainvoke({"brief": brief(0)}, {"configurable": {"thread_id": "twice"}}, context=ctx)

    assert failure.value.role == "ceo"
    assert srv.requests["CeoAnswer"] == 2 and srv.faults_served == Counter({kind: 2})
    assert srv.requests["CopyAnswer"] == 0


async def test_plans_checked_on_a_free_budget_never_overspend_it_when_executed(tmp_path):
    """Fourteen plans of 5,440 pass policy while the quarter's 60,000 is untouched (they wait for
    approval), then are approved at once: 76,160 asked, only what the budget holds is executed."""
    home = tmp_path / "home"
    ctx = Context(home=str(home), provider="offline", now=NOW, auto_approve_below=1000, forecast_draws=2000)
    goal = {"goal": "Launch the trail sneaker in Spain", "budget": 8000}
    configs = [{"configurable": {"thread_id": f"race-{i:02d}"}} for i in range(14)]
    async with async_sqlite_checkpointer(home) as saver:
        graph = build_graph(saver)
        waiting = await asyncio.gather(*(graph.ainvoke({"brief": goal}, c, context=ctx) for c in configs))
        assert all("__interrupt__" in w for w in waiting)
        plans = [(await graph.aget_state(c)).values["plan"] for c in configs]
        assert all(p.budget == 5440 for p in plans)  # each one checked against 60,000 left

        outcomes = await asyncio.gather(
            *(graph.ainvoke(Command(resume={"approved": True}), c, context=ctx) for c in configs),
            return_exceptions=True)
        states = [await graph.aget_state(c) for c in configs]

    executed = [o for o in outcomes if isinstance(o, dict) and o.get("status") == "executed"]
    refused = [o for o in outcomes if isinstance(o, OverBudget)]
    assert len(executed) == int(QUARTERLY_BUDGET // 5440) == 11
    assert len(refused) == 3 and len(executed) + len(refused) == len(configs), outcomes
    assert all("budget left in 2026-Q4" in str(o) and "nothing was ordered" in str(o) for o in refused)
    assert Counter(status_of(s) for s in states) == Counter({"executed": 11, "failed": 3})

    with Store.at_home(home) as store:
        spent = store.spent(PERIOD)
        executions = store.db.execute("SELECT status, COUNT(*), SUM(amount) FROM executions GROUP BY 1").fetchall()
        assert store.budget_left(PERIOD) >= 0
    assert spent == 11 * 5440 <= QUARTERLY_BUDGET
    assert executions == [("executed", 22, spent)]  # the refused plans ordered nothing, reserved nothing


def test_concurrent_first_use_of_an_empty_home_seeds_the_store_once(tmp_path: Path):
    home = tmp_path / "fresh"
    start = threading.Barrier(8)

    def first_use(_: int) -> tuple[int, float]:
        start.wait()
        with open_store(str(home), datetime.fromisoformat(NOW)) as store:
            return store.db["products"].count, store.budget_left(PERIOD)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(first_use, range(8)))
    assert len(set(results)) == 1 and results[0][1] == QUARTERLY_BUDGET
    with Store.at_home(home) as store:
        assert store.db.execute("SELECT COUNT(*) FROM budgets").fetchone()[0] == 5
        assert store.db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 3

"""Graph tests: the whole state machine, offline or on a scripted model, with checkpoints."""

from __future__ import annotations

import re
import sqlite3

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graph import build_graph
from graph.checkpoints import serializer
from tests.fakes import ScriptedChatModel
from tools.ads import SimulatedAdsPlatform
from tools.sources.sample import SampleSource

#: LangGraph's default recursion limit is 10,007 supersteps: a broken round bound would loop for
#: minutes. A five-round run takes 19 supersteps; 40 makes such a regression fail fast.
CONFIG = {"configurable": {"thread_id": "graph-thread"}, "recursion_limit": 40}


def sample_only(client, now, context):
    return [SampleSource(now)]


def graph_with(llm=None, platform=None):
    return build_graph(InMemorySaver(serde=serializer()), llm=llm, sources=sample_only, platform=platform)


def rows(home, sql: str, args=()) -> list[tuple]:
    with sqlite3.connect(home / "enterprise.sqlite") as conn:
        return conn.execute(sql, args).fetchall()


def steps(graph, config=CONFIG) -> list[tuple[str, ...]]:
    """The nodes of each superstep, oldest first (from the checkpoint history)."""
    return [tuple(sorted(s.next)) for s in reversed(list(graph.get_state_history(config))) if s.next]


def turns(graph, config=CONFIG) -> list[tuple[int, str, str]]:
    return [(t.round, t.role, t.stance) for t in graph.get_state(config).values["debate"]]


# -- scripted answers ----------------------------------------------------------


def split_of(split: dict[str, float]) -> list[dict]:
    return [{"channel": k, "amount": v} for k, v in split.items()]


def cmo_says(split: dict[str, float], argument: str = "Search and email convert best.") -> dict:
    return {"argument": argument, "message": "Grip for wet trails.", "allocations": split_of(split),
            "cited_signals": []}


def cfo_says(stance: str, argument: str) -> dict:
    return {"stance": stance, "argument": argument, "recommended_budget": 3600.0, "cut_channels": [],
            "cited_signals": []}


def ceo_says(action: str, split: dict[str, float] | None = None, guidance: str = "") -> dict:
    return {"action": action, "rationale": f"CEO rules {action}.", "guidance": guidance,
            "allocations": split_of(split or {}), "cited_signals": []}


COPY = {"headline": "Trail Sneaker X", "body": "Grip on wet granite.", "call_to_action": "Shop now"}
PLAN = {"search": 3000, "email": 600}


def scripted(**scripts) -> ScriptedChatModel:
    return ScriptedChatModel(scripts={"copywriter": lambda messages: COPY, **scripts})


# -- full runs -----------------------------------------------------------------


def test_offline_run_executes_and_books_the_campaign(context, brief, home):
    graph = build_graph(InMemorySaver(serde=serializer()))  # default sources: sample, with no keys
    out = graph.invoke({"brief": brief}, CONFIG, context=context)
    assert out["status"] == "executed" and out["provider"] == "offline"
    campaign, plan = out["campaign"], out["plan"]
    assert campaign.spend == plan.budget <= 8000
    assert {e.channel for e in campaign.executions} == set(plan.channels)
    executed = rows(home, "SELECT channel, amount, status FROM executions WHERE campaign_id = ?", [campaign.id])
    assert sorted(executed) == sorted((ch, amount, "executed") for ch, amount in plan.channels.items())
    [(status, spend)] = rows(home, "SELECT status, spend FROM campaigns WHERE id = ?", [campaign.id])
    assert (status, spend) == ("executed", plan.budget)
    ledger = rows(home, "SELECT SUM(amount) FROM ledger WHERE campaign_id = ?", [campaign.id])
    assert ledger == [(plan.budget,)]
    assert out["usage"].calls == 0
    assert [run.name for run in out["scout_report"].sources] == ["sample"]  # no keys: the bundled sample


def test_offline_cfo_objection_makes_the_ceo_revise(context, brief):
    graph = graph_with()
    out = graph.invoke({"brief": brief}, CONFIG, context=context)
    assert turns(graph)[:3] == [(1, "cmo", "propose"), (1, "cfo", "object"), (1, "ceo", "revise")]
    assert [t for t in turns(graph) if t[0] == 2] == [(2, "cmo", "revise"), (2, "cfo", "support"),
                                                      (2, "ceo", "decide")]
    cut = re.search(r"Cut ([a-z, ]+):", graph.get_state(CONFIG).values["debate"][1].argument).group(1).split(", ")
    assert cut and not set(cut) & set(out["plan"].channels)
    assert out["status"] == "executed"


def test_scripted_ceo_revises_on_the_cfo_objection_and_the_loop_runs_again(context, brief):
    def ceo(messages):
        round_ = int(re.search(r"Round (\d+) of", messages[0].content).group(1))
        if f"[round {round_}] CFO (object)" in messages[1].content:
            return ceo_says("revise", PLAN, guidance="Drop social; fund search and email.")
        return ceo_says("approve", PLAN)

    model = scripted(
        cmo=[cmo_says({"search": 3000, "social": 3000}), cmo_says(PLAN, argument="Social dropped as asked.")],
        cfo=[cfo_says("object", "Social returns -0.09 at p50."), cfo_says("support", "Search and email pay back.")],
        ceo=ceo,
    )
    graph = graph_with(llm=model)
    out = graph.invoke({"brief": brief}, CONFIG, context=context)
    assert turns(graph) == [(1, "cmo", "propose"), (1, "cfo", "object"), (1, "ceo", "revise"),
                            (2, "cmo", "revise"), (2, "cfo", "support"), (2, "ceo", "decide")]
    round_two_cmo = model.calls_for("cmo")[1][1].content
    assert "CEO guidance: Drop social; fund search and email." in round_two_cmo
    assert "[round 1] CFO (object): Social returns -0.09 at p50." in round_two_cmo
    assert out["status"] == "executed" and out["plan"].channels == PLAN
    assert out["provider"] == "custom:ScriptedChatModel"
    usage = out["usage"].lines
    assert {k: v.calls for k, v in usage.items()} == {"cmo/scripted": 2, "cfo/scripted": 2, "ceo/scripted": 2,
                                                      "copywriter/scripted": 2}
    assert out["usage"].tokens == 8 * 120


@pytest.mark.parametrize("brief_rounds, context_rounds, expected", [(3, 5, 3), (5, 2, 2), (1, 5, 1)])
def test_max_rounds_bounds_a_ceo_that_always_says_revise(context, brief, home, brief_rounds, context_rounds,
                                                         expected):
    model = scripted(cmo=lambda m: cmo_says(PLAN), cfo=lambda m: cfo_says("support", "Fine."),
                     ceo=lambda m: ceo_says("revise", PLAN, guidance="Once more."))
    context.max_rounds = context_rounds
    graph = graph_with(llm=model)
    out = graph.invoke({"brief": brief | {"max_rounds": brief_rounds}}, CONFIG, context=context)
    assert len(model.calls_for("ceo")) == expected
    assert [t for t in turns(graph) if t[1] == "ceo"][-1] == (expected, "ceo", "decide")
    assert out["status"] == "rejected" and out["verdict"].action == "reject"
    assert "campaign" not in out and model.calls_for("copywriter") == []
    assert rows(home, "SELECT COUNT(*) FROM executions") == [(0,)]
    assert rows(home, "SELECT COUNT(*) FROM campaigns WHERE thread_id = ?", [CONFIG["configurable"]["thread_id"]]) \
        == [(0,)]


def test_ceo_rejection_ends_without_execution(context, brief, home):
    model = scripted(cmo=[cmo_says(PLAN)], cfo=[cfo_says("object", "Nothing pays back.")], ceo=[ceo_says("reject")])
    graph = graph_with(llm=model)
    out = graph.invoke({"brief": brief}, CONFIG, context=context)
    assert out["status"] == "rejected" and out["reason"] == "the CEO rejected the plan: CEO rules reject."
    assert "plan" not in out and "campaign" not in out
    assert steps(graph)[-1] == ("enterprise_check",)
    assert rows(home, "SELECT COUNT(*) FROM executions") == [(0,)]
    assert rows(home, "SELECT COUNT(*) FROM ledger WHERE campaign_id NOT LIKE 'cmp_seed%'") == [(0,)]


def test_unknown_product_ends_before_the_debate(context, brief):
    model = scripted()
    graph = graph_with(llm=model)
    out = graph.invoke({"brief": brief | {"product": "NOPE-1"}}, CONFIG, context=context)
    assert out["status"] == "rejected" and "NOPE-1" in out["reason"]
    assert steps(graph) == [("__start__",), ("scout",), ("scout_merge",), ("enterprise_brief",)]
    assert model.calls == []


def test_budget_too_small_for_any_channel_is_rejected_before_the_debate(context, brief):
    model = scripted()
    graph = graph_with(llm=model)
    out = graph.invoke({"brief": brief | {"budget": 50}}, CONFIG, context=context)
    assert out["status"] == "rejected" and "below the minimum spend" in out["reason"]
    assert steps(graph)[-1] == ("enterprise_brief",) and model.calls == []


# -- checkpoints ---------------------------------------------------------------


def test_history_shows_every_node_in_order_with_cmo_and_cfo_in_one_superstep(context, brief):
    graph = graph_with()
    graph.invoke({"brief": brief}, CONFIG, context=context)
    round_ = ("cfo", "cmo")
    assert steps(graph) == [
        ("__start__",), ("scout",), ("scout_merge",), ("enterprise_brief",),
        round_, ("ceo",), round_, ("ceo",),
        ("enterprise_check",), ("approval",), ("copywriter",), ("actuator",), ("enterprise_record",),
    ]
    history = list(reversed(list(graph.get_state_history(CONFIG))))
    numbers = [s.metadata["step"] for s in history]
    assert numbers == list(range(-1, len(history) - 1))  # one checkpoint per superstep
    debate_steps = [s for s in history if "cmo" in s.next]
    assert all(sorted(t.name for t in s.tasks) == ["cfo", "cmo"] for s in debate_steps)
    after = {s.metadata["step"]: s for s in history}
    for s in debate_steps:  # both turns of the round land in the very next checkpoint
        roles = [t.role for t in after[s.metadata["step"] + 1].values["debate"]]
        assert roles[-2:] in (["cmo", "cfo"], ["cfo", "cmo"])


class FlakyPlatform:
    """The simulated platform, but the second order dies with a connection error once."""

    def __init__(self, inner: SimulatedAdsPlatform) -> None:
        self.inner, self.orders, self.failed = inner, 0, False

    def place_order(self, order):
        self.orders += 1
        if self.orders == 2 and not self.failed:
            self.failed = True
            raise RuntimeError("connection reset by the ad platform")
        return self.inner.place_order(order)


def test_actuator_crash_leaves_a_thread_that_resumes_without_redoing_work(context, brief, home):
    platform = FlakyPlatform(SimulatedAdsPlatform.at_home(home))
    model = scripted(cmo=[cmo_says(PLAN)], cfo=[cfo_says("support", "Pays back.")], ceo=[ceo_says("approve", PLAN)])
    graph = graph_with(llm=model, platform=platform)
    with pytest.raises(RuntimeError, match="connection reset"):
        graph.invoke({"brief": brief}, CONFIG, context=context)
    stuck = graph.get_state(CONFIG)
    assert stuck.next == ("actuator",)
    assert ["connection reset" in str(t.error) for t in stuck.tasks] == [True]
    assert rows(home, "SELECT channel, status FROM executions ORDER BY channel") == [("email", "executed"),
                                                                                    ("search", "pending")]
    calls_before = len(model.calls)

    out = graph.invoke(None, CONFIG, context=context)
    assert out["status"] == "executed" and out["campaign"].spend == 3600
    assert len(model.calls) == calls_before  # no role (nor the copywriter) ran again
    assert platform.orders == 3  # resume asked only for search again
    assert platform.inner.order_count() == 2  # email was not booked twice
    assert rows(home, "SELECT channel, status FROM executions ORDER BY channel") == [("email", "executed"),
                                                                                    ("search", "executed")]
    assert rows(home, "SELECT COUNT(*), SUM(amount) FROM ledger WHERE campaign_id = ?", [out["campaign"].id]) \
        == [(2, 3600.0)]
    assert steps(graph).count(("copywriter",)) == 1


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize("change, field", [
    ({"goal": "   "}, "brief.goal"),
    ({"budget": -1}, "brief.budget"),
    ({"channels": ["search", "tv"]}, "brief.channels"),
    ({"max_rounds": 0}, "brief.max_rounds"),
    ({"max_rounds": 6}, "brief.max_rounds"),
    ({"goal": "x" * 4001}, "brief.goal"),
])
def test_bad_brief_is_refused_with_the_field_named(context, brief, change, field):
    model = scripted()
    graph = graph_with(llm=model)
    with pytest.raises(ValueError, match=re.escape(field)):
        graph.invoke({"brief": brief | change}, CONFIG, context=context)
    assert model.calls == []


def test_the_debate_edge_itself_bounds_the_loop():
    """Defence in depth: even a `revise` verdict past the last round goes to the policy check."""
    from graph.builder import DEBATE, route_after_ceo
    from state import Brief, Verdict

    brief = Brief(goal="trail sneaker", budget=1000, max_rounds=2)
    revise = Verdict(action="revise", rationale="again")
    assert route_after_ceo({"verdict": revise, "round": 2, "brief": brief}) == DEBATE
    assert route_after_ceo({"verdict": revise, "round": 3, "brief": brief}) == "enterprise_check"


def test_a_run_without_thread_id_is_refused_before_any_call(context):
    """Idempotency keys derive from the thread id: without one, nothing may start."""
    import pytest

    from graph import build_graph
    from state import InvalidInput

    with pytest.raises(InvalidInput, match="thread_id"):
        build_graph().invoke({"brief": {"goal": "trail sneaker in Spain", "budget": 3000}}, context=context)

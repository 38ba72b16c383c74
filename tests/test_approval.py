"""Human approval: plans at or above `auto_approve_below` stop at an interrupt; the one
resume payload approves, rejects or lowers the budget; a payload that cannot be applied
is refused (and the approver asked again); a finished thread never executes twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.types import Command

from graph import build_graph
from graph.checkpoints import sqlite_checkpointer
from state import Context
from tools.ads import SimulatedAdsPlatform
from tools.store import Store

NOW = "2026-11-28T12:00:00+00:00"
BRIEF = {"goal": "Launch the trail sneaker in Spain, up to 8,000 EUR", "budget": 8000}


@pytest.fixture
def context(home: Path) -> Context:
    """The shared offline context (conftest), with plans of 1,000 or more waiting for approval."""
    return Context(provider="offline", home=str(home), now=NOW, auto_approve_below=1000)


@pytest.fixture
def platform(home: Path) -> SimulatedAdsPlatform:
    return SimulatedAdsPlatform.at_home(home)


@pytest.fixture
def graph(home: Path, platform: SimulatedAdsPlatform) -> Iterator:
    with sqlite_checkpointer(home) as saver:
        yield build_graph(saver, platform=platform)


@pytest.fixture
def waiting(graph, context) -> tuple[dict, dict]:
    """A thread stopped at the approval interrupt: (config, the run's output)."""
    cfg = {"configurable": {"thread_id": "t-approval"}}
    out = graph.invoke({"brief": BRIEF}, cfg, context=context)
    return cfg, out


def business(home: Path) -> dict:
    with Store.at_home(home) as store:
        return {
            "executions": store.db.execute(
                "SELECT idempotency_key, campaign_id, channel, amount, status FROM executions ORDER BY 1").fetchall(),
            "ledger": store.db.execute(
                "SELECT idempotency_key, campaign_id, amount FROM ledger WHERE campaign_id IN"
                " (SELECT id FROM campaigns WHERE thread_id != 'seed') ORDER BY 1").fetchall(),
            "campaigns": store.db.execute(
                "SELECT id, status, spend FROM campaigns WHERE thread_id != 'seed' ORDER BY 1").fetchall(),
        }


NOTHING = {"executions": [], "ledger": [], "campaigns": []}


def test_a_plan_above_the_threshold_waits_for_approval(graph, waiting, home, platform) -> None:
    cfg, out = waiting
    snap = graph.get_state(cfg)
    assert snap.next == ("approval",)
    assert snap.interrupts
    asked = snap.interrupts[0].value
    plan = snap.values["plan"]
    assert plan.budget >= 1000
    assert asked["plan"]["budget"] == plan.budget
    assert asked["plan"]["campaign_id"] == plan.campaign_id
    assert "error" not in asked
    assert out["__interrupt__"][0].value == asked
    assert "status" not in out and "campaign" not in out
    assert business(home) == NOTHING
    assert platform.order_count() == 0


def test_below_the_threshold_runs_without_asking(graph, home) -> None:
    ctx = Context(provider="offline", home=str(home), now=NOW, auto_approve_below=1_000_000)
    cfg = {"configurable": {"thread_id": "t-auto"}}
    out = graph.invoke({"brief": BRIEF}, cfg, context=ctx)
    assert "__interrupt__" not in out
    assert out["status"] == "executed"
    assert "approval" not in graph.get_state(cfg).values


def test_approve_executes_the_plan(graph, waiting, context, home, platform) -> None:
    cfg, _ = waiting
    plan = graph.get_state(cfg).values["plan"]
    out = graph.invoke(Command(resume={"approved": True}), cfg, context=context)
    assert out["status"] == "executed", out.get("reason")
    assert out["campaign"].id == plan.campaign_id
    assert out["campaign"].spend == plan.budget
    snap = graph.get_state(cfg)
    assert snap.next == () and not snap.interrupts
    assert snap.values["approval"].approved is True
    db = business(home)
    assert [(c[0], c[1], c[2]) for c in db["campaigns"]] == [(plan.campaign_id, "executed", plan.budget)]
    assert {e[2]: e[3] for e in db["executions"]} == plan.channels
    assert sum(row[2] for row in db["ledger"]) == plan.budget
    assert platform.order_count() == len(plan.channels)


def test_reject_ends_rejected_with_nothing_executed(graph, waiting, context, home, platform) -> None:
    cfg, _ = waiting
    out = graph.invoke(Command(resume={"approved": False, "reason": "too much"}), cfg, context=context)
    assert out["status"] == "rejected"
    assert "too much" in out["reason"]
    assert "campaign" not in out
    snap = graph.get_state(cfg)
    assert snap.next == () and not snap.interrupts
    assert snap.values["approval"].approved is False
    assert business(home) == NOTHING
    assert platform.order_count() == 0


def test_approve_at_a_lower_budget(graph, waiting, context, home, platform) -> None:
    cfg, _ = waiting
    plan = graph.get_state(cfg).values["plan"]
    lower = 3000.0
    assert plan.budget > lower
    out = graph.invoke(Command(resume={"approved": True, "budget": lower}), cfg, context=context)
    assert out["status"] == "executed", out.get("reason")
    new_plan = out["plan"]
    assert new_plan.budget <= lower
    assert sum(new_plan.channels.values()) <= lower
    assert new_plan.campaign_id != plan.campaign_id  # a different plan is a different campaign
    assert any("approver lowered the budget to 3,000.00" in a for a in new_plan.adjustments)
    assert new_plan.forecast.spend == new_plan.budget
    assert out["campaign"].spend <= lower
    db = business(home)
    assert [c[0] for c in db["campaigns"]] == [new_plan.campaign_id]
    assert sum(row[2] for row in db["ledger"]) == out["campaign"].spend <= lower
    assert all(e[3] <= lower for e in db["executions"])
    assert platform.order_count() == len(new_plan.channels)


def test_a_budget_above_the_plan_is_refused(graph, waiting, context, home, platform) -> None:
    cfg, _ = waiting
    plan = graph.get_state(cfg).values["plan"]
    out = graph.invoke(Command(resume={"approved": True, "budget": plan.budget + 10_000}), cfg, context=context)

    assert "status" not in out and "campaign" not in out
    error = out["__interrupt__"][0].value["error"]
    assert error.startswith("resume.budget:")
    assert "above the plan's" in error
    snap = graph.get_state(cfg)
    assert snap.next == ("approval",)  # still waiting, asking again with the error
    assert snap.interrupts[0].value["error"] == error
    assert business(home) == NOTHING
    assert platform.order_count() == 0


def test_after_a_refused_answer_a_valid_one_is_applied(graph, waiting, context, home, platform) -> None:
    """The refused payload must not stick to the thread: the next answer is the one applied."""
    cfg, _ = waiting
    plan = graph.get_state(cfg).values["plan"]
    graph.invoke(Command(resume={"approved": True, "budget": plan.budget * 3}), cfg, context=context)
    graph.invoke(Command(resume={"approved": "perhaps"}), cfg, context=context)  # invalid too
    assert "resume.approved" in graph.get_state(cfg).interrupts[0].value["error"]

    out = graph.invoke(Command(resume={"approved": True, "budget": 2500.0}), cfg, context=context)
    assert out["status"] == "executed", out.get("reason")
    assert out["campaign"].spend <= 2500.0
    assert sum(row[2] for row in business(home)["ledger"]) == out["campaign"].spend
    assert platform.order_count() == len(out["plan"].channels)


def test_a_budget_below_every_minimum_is_refused(graph, waiting, context, home) -> None:
    cfg, _ = waiting
    out = graph.invoke(Command(resume={"approved": True, "budget": 50.0}), cfg, context=context)
    error = out["__interrupt__"][0].value["error"]
    assert error.startswith("resume.budget: 50.00 leaves no valid plan")
    assert business(home) == NOTHING
    out = graph.invoke(Command(resume={"approved": False}), cfg, context=context)
    assert out["status"] == "rejected"
    assert business(home) == NOTHING


@pytest.mark.parametrize("resume", [{"approved": True}, {"approved": True, "budget": 3000.0}])
def test_resuming_a_finished_thread_does_nothing_new(graph, waiting, context, home, platform, resume) -> None:
    cfg, _ = waiting
    first = graph.invoke(Command(resume=resume), cfg, context=context)
    assert first["status"] == "executed"
    done, orders, history = business(home), platform.order_count(), len(list(graph.get_state_history(cfg)))

    for again in (Command(resume={"approved": True}), Command(resume={"approved": True, "budget": 1500.0}), None):
        out = graph.invoke(again, cfg, context=context)
        assert out["campaign"] == first["campaign"]  # the finished decision, unchanged
        assert business(home) == done
        assert platform.order_count() == orders
    snap = graph.get_state(cfg)
    assert snap.next == ()
    assert snap.values["campaign"] == first["campaign"]
    assert len(list(graph.get_state_history(cfg))) == history  # no step ran


def test_resuming_a_rejected_thread_does_not_execute(graph, waiting, context, home, platform) -> None:
    cfg, _ = waiting
    graph.invoke(Command(resume={"approved": False, "reason": "too much"}), cfg, context=context)
    out = graph.invoke(Command(resume={"approved": True}), cfg, context=context)
    assert out["status"] == "rejected"
    assert graph.get_state(cfg).values["status"] == "rejected"
    assert business(home) == NOTHING
    assert platform.order_count() == 0

"""Exactly once, through the whole graph on a SqliteSaver: replay from an earlier
checkpoint, a crash between the platform call and the ledger write then resume, and
forks from the verdict (unchanged: nothing new; lower budget: one new campaign)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graph import build_graph
from graph.checkpoints import sqlite_checkpointer
from state import Brief, Context
from tools.ads import SimulatedAdsPlatform, idempotency_key
from tools.store import Store

NOW = "2026-11-28T12:00:00+00:00"
BRIEF = {"goal": "Launch the trail sneaker in Spain, up to 8,000 EUR", "budget": 8000}


class CountingPlatform(SimulatedAdsPlatform):
    """The simulated platform, counting the calls it receives (booked orders are in its file)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[str] = []

    def place_order(self, order):
        self.calls.append(order.idempotency_key)
        return super().place_order(order)

    def orders(self) -> list[tuple]:
        conn = self._connect()
        try:
            return conn.execute("SELECT idempotency_key, campaign_id, channel, amount FROM orders"
                                " ORDER BY idempotency_key").fetchall()
        finally:
            conn.close()


@pytest.fixture
def platform(home: Path) -> CountingPlatform:
    return CountingPlatform(home / "adsplatform.sqlite")


@pytest.fixture
def graph(home: Path, platform: CountingPlatform) -> Iterator:
    with sqlite_checkpointer(home) as saver:
        yield build_graph(saver, platform=platform)


def config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def snapshot_db(home: Path) -> dict[str, list[tuple]]:
    """Everything the business side knows about executions, ledger and campaigns."""
    with Store.at_home(home) as store:
        return {
            "executions": store.db.execute(
                "SELECT idempotency_key, campaign_id, channel, amount, status, receipt_id FROM executions"
                " ORDER BY idempotency_key").fetchall(),
            "ledger": store.db.execute(
                "SELECT id, idempotency_key, period, campaign_id, channel, amount FROM ledger ORDER BY id").fetchall(),
            "campaigns": store.db.execute(
                "SELECT id, status, spend FROM campaigns WHERE thread_id != 'seed' ORDER BY id").fetchall(),
        }


def assert_balanced(home: Path, campaign_id: str, expected_spend: float) -> None:
    """sum(ledger) == sum(executed executions) == campaign spend, one ledger row per execution."""
    with Store.at_home(home) as store:
        ledger_sum, ledger_rows = store.db.execute(
            "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM ledger WHERE campaign_id = ?", [campaign_id]).fetchone()
        executed_sum, executed_rows = store.db.execute(
            "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM executions WHERE campaign_id = ? AND status = 'executed'",
            [campaign_id]).fetchone()
        spend, status = store.db.execute("SELECT spend, status FROM campaigns WHERE id = ?", [campaign_id]).fetchone()
        keys_in_ledger = {r[0] for r in store.db.execute(
            "SELECT idempotency_key FROM ledger WHERE campaign_id = ?", [campaign_id])}
        keys_executed = {r[0] for r in store.db.execute(
            "SELECT idempotency_key FROM executions WHERE campaign_id = ? AND status = 'executed'", [campaign_id])}
    assert status == "executed"
    assert ledger_rows == executed_rows > 0
    assert keys_in_ledger == keys_executed
    assert round(ledger_sum, 2) == round(executed_sum, 2) == round(spend, 2) == round(expected_spend, 2)


def checkpoint_before(graph, cfg: dict, node: str):
    """The latest checkpoint of the thread whose next step is `node`."""
    for snap in graph.get_state_history(cfg):
        if snap.next == (node,):
            return snap
    raise AssertionError(f"no checkpoint before {node}")


def run_once(graph, context: Context, thread: str = "t-exec") -> tuple[dict, dict]:
    cfg = config(thread)
    out = graph.invoke({"brief": BRIEF}, cfg, context=context)
    assert out["status"] == "executed", out.get("reason")
    return cfg, out


# -- (a) replay ----------------------------------------------------------------


def test_replay_from_before_the_actuator_executes_nothing_new(graph, context, home, platform) -> None:
    cfg, out = run_once(graph, context)
    campaign = out["campaign"]
    assert len(campaign.executions) >= 2
    before = snapshot_db(home)
    orders = platform.orders()
    assert len(orders) == len(campaign.executions)
    calls = len(platform.calls)
    history = len(list(graph.get_state_history(cfg)))

    target = checkpoint_before(graph, cfg, "actuator")
    replayed = graph.invoke(None, {"configurable": {"thread_id": cfg["configurable"]["thread_id"],
                                                    "checkpoint_id": target.config["configurable"]["checkpoint_id"]}},
                            context=context)

    assert len(list(graph.get_state_history(cfg))) > history  # the actuator and the record really ran again
    assert replayed["status"] == "executed"
    assert replayed["campaign"] == campaign  # same campaign, same receipts
    assert snapshot_db(home) == before
    assert platform.orders() == orders
    assert len(platform.calls) == calls  # already executed: the platform is not even asked again
    assert_balanced(home, campaign.id, campaign.spend)


def test_replay_from_before_the_policy_check_executes_nothing_new(graph, context, home, platform) -> None:
    cfg, out = run_once(graph, context)
    before, orders = snapshot_db(home), platform.orders()
    target = checkpoint_before(graph, cfg, "enterprise_check")
    replayed = graph.invoke(None, {"configurable": {**cfg["configurable"],
                                                    "checkpoint_id": target.config["configurable"]["checkpoint_id"]}},
                            context=context)
    assert replayed["plan"].campaign_id == out["plan"].campaign_id
    assert snapshot_db(home) == before
    assert platform.orders() == orders


def test_invoking_a_finished_thread_again_does_nothing(graph, context, home, platform) -> None:
    cfg, out = run_once(graph, context)
    before, orders = snapshot_db(home), platform.orders()
    again = graph.invoke(None, cfg, context=context)
    assert again["campaign"] == out["campaign"]
    assert snapshot_db(home) == before
    assert platform.orders() == orders


def test_a_new_thread_with_the_same_brief_is_a_new_campaign(graph, context, home, platform) -> None:
    _, first = run_once(graph, context, "t-one")
    _, second = run_once(graph, context, "t-two")
    assert first["campaign"].id != second["campaign"].id
    assert len(platform.orders()) == len(first["campaign"].executions) + len(second["campaign"].executions)
    assert_balanced(home, first["campaign"].id, first["campaign"].spend)
    assert_balanced(home, second["campaign"].id, second["campaign"].spend)


# -- (b) crash between the platform call and the ledger write ------------------


def test_crash_after_the_platform_call_then_resume_books_once(graph, context, home, platform, monkeypatch) -> None:
    real = Store.complete_execution
    crashes: list[str] = []

    def crash_once(self, *, key, receipt, period):
        if not crashes:
            crashes.append(key)
            raise RuntimeError("simulated crash after the platform booked the order")
        return real(self, key=key, receipt=receipt, period=period)

    monkeypatch.setattr(Store, "complete_execution", crash_once)
    cfg = config("t-crash")
    with pytest.raises(RuntimeError, match="simulated crash"):
        graph.invoke({"brief": BRIEF}, cfg, context=context)

    # the crash left a paid order with a pending intent and no ledger entry
    assert graph.get_state(cfg).next == ("actuator",)
    assert len(crashes) == 1
    with Store.at_home(home) as store:
        pending = store.execution(crashes[0])
        assert pending is not None and pending["status"] == "pending"
        assert store.db.execute("SELECT COUNT(*) FROM ledger WHERE idempotency_key = ?",
                                [crashes[0]]).fetchone()[0] == 0
    assert [o[0] for o in platform.orders()] == [crashes[0]]

    out = graph.invoke(None, cfg, context=context)

    assert out["status"] == "executed", out.get("reason")
    campaign, plan = out["campaign"], out["plan"]
    keys = {idempotency_key("t-crash", plan.campaign_id, ch) for ch in plan.channels}
    assert {e.idempotency_key for e in campaign.executions} == keys
    assert all(e.status == "executed" and e.receipt_id for e in campaign.executions)
    # the platform was asked twice for the crashed key, and booked it once
    assert platform.calls.count(crashes[0]) == 2
    orders = platform.orders()
    assert sorted(o[0] for o in orders) == sorted(keys)
    assert {o[2]: o[3] for o in orders} == plan.channels
    db = snapshot_db(home)
    assert sorted(r[0] for r in db["executions"]) == sorted(keys)
    assert sorted(r[1] for r in db["ledger"] if r[3] == campaign.id) == sorted(keys)
    assert campaign.spend == plan.budget
    assert_balanced(home, campaign.id, plan.budget)

    # and a further resume changes nothing
    graph.invoke(None, cfg, context=context)
    assert snapshot_db(home) == db
    assert platform.orders() == orders


def test_platform_failure_is_recorded_and_resume_completes_it(graph, context, home, platform) -> None:
    """A refused channel is `failed` with no ledger entry; the others are executed once."""
    platform.fail_channels = frozenset({"search"})
    cfg = config("t-refused")
    out = graph.invoke({"brief": BRIEF}, cfg, context=context)
    assert out["status"] == "failed"
    assert "search" in out["reason"]
    ok = [e for e in out["campaign"].executions if e.status == "executed"]
    assert ok and all(e.channel != "search" for e in ok)
    with Store.at_home(home) as store:
        statuses = dict(store.db.execute("SELECT channel, status FROM executions").fetchall())
        assert statuses["search"] == "failed"
        ledger_channels = [r[0] for r in store.db.execute(
            "SELECT channel FROM ledger WHERE campaign_id = ?", [out["campaign"].id])]
    assert "search" not in ledger_channels
    assert out["campaign"].spend == sum(e.amount for e in ok)
    assert {o[2] for o in platform.orders()} == {e.channel for e in ok}


# -- (c) forks from the verdict ------------------------------------------------


def test_fork_from_the_verdict_unchanged_does_not_execute_again(graph, context, home, platform) -> None:
    cfg, out = run_once(graph, context, "t-fork")
    before, orders = snapshot_db(home), platform.orders()
    verdict_ckpt = checkpoint_before(graph, cfg, "enterprise_check")  # the checkpoint after `ceo`
    assert verdict_ckpt.values["verdict"] == out["verdict"]

    forked_cfg = graph.update_state(verdict_ckpt.config, {"brief": verdict_ckpt.values["brief"]})
    assert graph.get_state(forked_cfg).next == ("enterprise_check",)
    forked = graph.invoke(None, forked_cfg, context=context)

    assert forked["status"] == "executed"
    assert forked["campaign"].id == out["campaign"].id
    assert forked["campaign"] == out["campaign"]
    assert snapshot_db(home) == before
    assert platform.orders() == orders
    assert_balanced(home, out["campaign"].id, out["campaign"].spend)


def test_fork_with_a_lower_budget_is_a_new_campaign_executed_once(graph, context, home, platform) -> None:
    cfg, out = run_once(graph, context, "t-fork-low")
    original = out["campaign"]
    before = snapshot_db(home)
    original_orders = platform.orders()
    low = 3000.0
    assert original.spend > low

    verdict_ckpt = checkpoint_before(graph, cfg, "enterprise_check")
    brief: Brief = verdict_ckpt.values["brief"]
    forked_cfg = graph.update_state(verdict_ckpt.config, {"brief": brief.model_copy(update={"budget": low})})
    forked = graph.invoke(None, forked_cfg, context=context)

    assert forked["status"] == "executed", forked.get("reason")
    new = forked["campaign"]
    assert new.id != original.id
    assert new.spend <= low
    assert forked["plan"].budget <= low
    assert any("the brief's cap" in a for a in forked["plan"].adjustments)

    after = snapshot_db(home)
    # the original's executions and ledger rows are untouched
    assert [r for r in after["executions"] if r[1] == original.id] == before["executions"]
    assert [r for r in after["ledger"] if r[3] != new.id] == before["ledger"]
    new_execs = [r for r in after["executions"] if r[1] == new.id]
    assert len(new_execs) == len(forked["plan"].channels) == len(new.executions)
    assert {r[2]: r[3] for r in new_execs} == forked["plan"].channels
    # the platform booked the new campaign once, next to the original's orders
    new_orders = [o for o in platform.orders() if o[1] == new.id]
    assert len(new_orders) == len(new_execs)
    assert [o for o in platform.orders() if o[1] == original.id] == original_orders
    assert_balanced(home, original.id, original.spend)
    assert_balanced(home, new.id, new.spend)
    assert {r[0] for r in after["campaigns"]} == {original.id, new.id}

    # the forked thread's head is now the new campaign; running it again books nothing more
    again = graph.invoke(None, cfg, context=context)
    assert again["campaign"].id == new.id
    replay = graph.invoke(None, forked_cfg, context=context)  # the fork's checkpoint, run again
    assert replay["campaign"].id == new.id
    assert snapshot_db(home) == after
    assert len(platform.orders()) == len(original_orders) + len(new_orders)

"""Policy in code: each rule broken by a crafted verdict, then the whole graph with a
CEO that asks for ten times the budget (clamped, never executed above the cap)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

import agents.ceo
from agents.allocation import as_list
from graph import build_graph
from graph.checkpoints import serializer
from state import Brief, ChannelEconomics, Context, ProductFacts, Verdict
from tools.ads import SimulatedAdsPlatform
from tools.forecast import forecast
from tools.policy import check
from tools.seed import QUARTERLY_BUDGET, open_store
from tools.store import Store, period_of

NOW = "2026-11-28T12:00:00+00:00"
MOMENT = datetime.fromisoformat(NOW)
DRAWS = 2000


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, ProductFacts], dict[str, ChannelEconomics]]:
    with open_store(str(tmp_path_factory.mktemp("policy-store")), MOMENT) as store:
        return {p.sku: p for p in store.products()}, {c.name: c for c in store.channels()}


@pytest.fixture
def products(catalogue) -> dict[str, ProductFacts]:
    return catalogue[0]


@pytest.fixture
def economics(catalogue) -> dict[str, ChannelEconomics]:
    return catalogue[1]


def verdict(channels: dict[str, float], sku: str = "TRAIL-X", budget: float | None = None) -> Verdict:
    return Verdict(action="approve", product_sku=sku, channels=channels,
                   budget=sum(channels.values()) if budget is None else budget, rationale="crafted")


def brief(budget: float = 8000.0, **extra) -> Brief:
    return Brief(goal="Launch the trail sneaker in Spain", budget=budget, **extra)


def run(v: Verdict, b: Brief, products, economics, *, sku: str | None = None, budget_left: float = QUARTERLY_BUDGET,
        hurdle: float = 0.0):
    return check(v, b, product=products.get(sku or v.product_sku), economics=economics, budget_left=budget_left,
                 hurdle_roi=hurdle, draws=DRAWS)


# -- rules, one at a time --------------------------------------------------------


def test_a_clean_verdict_passes_unchanged(products, economics) -> None:
    out = run(verdict({"search": 4000.0, "email": 600.0}), brief(), products, economics)
    assert out.approved, out.rejection
    assert out.allocation == {"search": 4000.0, "email": 600.0}
    assert out.adjustments == []
    assert out.forecast.spend == 4600.0
    assert out.forecast == forecast(products["TRAIL-X"], out.allocation, economics, draws=DRAWS)


def test_over_budget_is_clamped_to_the_brief_cap(products, economics) -> None:
    asked = {"search": 30_000.0, "social": 20_000.0, "email": 10_000.0}
    out = run(verdict(asked), brief(5000.0), products, economics)
    assert out.approved, out.rejection
    total = sum(out.allocation.values())
    assert total <= 5000.0
    assert total == pytest.approx(5000.0, abs=0.05)
    # scaled proportionally, not by dropping channels
    assert set(out.allocation) == set(asked)
    assert out.allocation["search"] / out.allocation["email"] == pytest.approx(3.0, rel=1e-3)
    assert any("down to 5,000.00" in a and "the brief's cap" in a for a in out.adjustments), out.adjustments
    assert out.forecast.spend <= 5000.0


def test_clamping_never_raises_spend(products, economics) -> None:
    asked = {"search": 2000.0, "email": 500.0}
    out = run(verdict(asked), brief(8000.0), products, economics)
    assert out.allocation == asked
    assert out.adjustments == []
    # the verdict's own budget below its split is a cap too: scaled down, not up
    out = run(verdict(asked, budget=1500.0), brief(8000.0), products, economics)
    assert sum(out.allocation.values()) <= 1500.0
    assert any("the verdict's budget" in a for a in out.adjustments)


def test_budget_left_in_the_period_below_the_cap(products, economics) -> None:
    out = run(verdict({"search": 5000.0, "email": 700.0}), brief(8000.0), products, economics, budget_left=2500.0)
    assert out.approved, out.rejection
    assert sum(out.allocation.values()) <= 2500.0
    assert any("budget left in the period" in a for a in out.adjustments), out.adjustments


def test_no_budget_left_is_a_rejection(products, economics) -> None:
    out = run(verdict({"search": 5000.0}), brief(), products, economics, budget_left=0.0)
    assert not out.approved
    assert out.rejection == "no budget left in the period"
    assert out.allocation == {}
    out = run(verdict({"search": 5000.0}), brief(), products, economics, budget_left=-300.0)
    assert out.rejection == "no budget left in the period"


def test_unknown_sku_is_rejected(products, economics) -> None:
    out = run(verdict({"search": 1000.0}, sku="GHOST-9"), brief(), products, economics)
    assert not out.approved
    assert out.rejection == "unknown product 'GHOST-9'"
    assert out.allocation == {} and out.forecast is None


def test_verdict_for_another_product_than_the_brief(products, economics) -> None:
    out = run(verdict({"search": 1000.0}, sku="URBAN-R"), brief(product="TRAIL-X"), products, economics)
    assert not out.approved
    assert "URBAN-R" in out.rejection and "TRAIL-X" in out.rejection


def test_out_of_stock_is_rejected(products, economics) -> None:
    assert products["KIDS-T"].stock == 0
    out = run(verdict({"search": 1000.0}, sku="KIDS-T"), brief(), products, economics)
    assert not out.approved
    assert out.rejection == "KIDS-T is out of stock"


def test_disallowed_channel_is_dropped(products, economics) -> None:
    b = brief(channels=["search", "email"])
    out = run(verdict({"search": 3000.0, "video": 3000.0, "email": 500.0}), b, products, economics)
    assert out.approved, out.rejection
    assert out.allocation == {"search": 3000.0, "email": 500.0}
    assert "dropped video: not an allowed channel for this brief" in out.adjustments
    assert [c.channel for c in out.forecast.channels] == ["email", "search"]


def test_only_disallowed_channels_is_a_rejection(products, economics) -> None:
    out = run(verdict({"video": 3000.0}), brief(channels=["search"]), products, economics)
    assert out.rejection == "no allowed channel left in the plan"


def test_channel_without_economics_is_dropped(products, economics) -> None:
    partial = {k: v for k, v in economics.items() if k != "social"}
    out = check(verdict({"search": 3000.0, "social": 1000.0}), brief(), product=products["TRAIL-X"],
                economics=partial, budget_left=QUARTERLY_BUDGET, hurdle_roi=0.0, draws=DRAWS)
    assert out.allocation == {"search": 3000.0}
    assert "dropped social: no channel economics in the store" in out.adjustments


def test_below_minimum_spend_is_dropped(products, economics) -> None:
    assert economics["email"].min_spend == 100.0
    out = run(verdict({"search": 3000.0, "email": 50.0}), brief(), products, economics)
    assert out.approved, out.rejection
    assert out.allocation == {"search": 3000.0}
    assert any(a.startswith("dropped email: 50.00 is below its minimum spend of 100.00") for a in out.adjustments)


def test_clamping_can_push_a_channel_below_its_minimum(products, economics) -> None:
    # search 9,000 + video 1,500 (its minimum) scaled to 5,000: video falls under 1,500 and goes
    out = run(verdict({"search": 9000.0, "video": 1500.0}), brief(5000.0), products, economics)
    assert out.approved, out.rejection
    assert list(out.allocation) == ["search"]
    assert out.allocation["search"] <= 5000.0
    assert any(a.startswith("dropped video") for a in out.adjustments)


def test_every_channel_below_minimum_is_a_rejection(products, economics) -> None:
    out = run(verdict({"search": 100.0, "video": 200.0}), brief(), products, economics)
    assert out.rejection == "no channel reaches its minimum spend"


def test_roi_under_the_hurdle_is_rejected_with_the_reason(products, economics) -> None:
    v = verdict({"search": 4000.0, "email": 600.0})
    passing = run(v, brief(), products, economics, hurdle=0.0)
    assert passing.approved
    roi = passing.forecast.roi.p50
    out = run(v, brief(), products, economics, hurdle=roi + 1.0)
    assert not out.approved
    assert out.rejection == f"p50 ROI {roi:.2f} is below the hurdle of {roi + 1.0:.2f}"
    assert out.allocation == {}


def test_expected_units_above_stock_are_scaled_down(products, economics) -> None:
    tent = products["TENT-2P"]  # stock 80
    asked = {"search": 5000.0, "email": 700.0}
    before = forecast(tent, asked, economics, draws=DRAWS)
    # the plan as asked would sell out in almost every draw (forecast units are capped at stock,
    # so the median shows the stock itself; the uncapped demand is far above it)
    assert before.units.p50 == tent.stock
    assert before.stock_bound_share > 0.9
    out = run(verdict(asked, sku="TENT-2P"), brief(), products, economics)
    assert out.approved, out.rejection
    assert sum(out.allocation.values()) < 0.8 * sum(asked.values())
    assert any(f"fit the stock of {tent.stock}" in a for a in out.adjustments), out.adjustments
    assert out.forecast.units.p50 <= tent.stock
    assert out.forecast.stock_bound_share <= 0.5  # median demand within stock
    assert out.forecast.units.p50 > 0.9 * tent.stock  # ...and not scaled down much further than needed
    # the largest such plan: 5% more spend would put the median demand above the stock
    more = {k: v * 1.05 for k, v in out.allocation.items()}
    assert forecast(tent, more, economics, draws=DRAWS).stock_bound_share > 0.5


def test_plan_within_stock_is_not_scaled(products, economics) -> None:
    asked = {"search": 1000.0}
    assert forecast(products["TENT-2P"], asked, economics, draws=DRAWS).stock_bound_share < 0.5
    out = run(verdict(asked, sku="TENT-2P"), brief(), products, economics)
    assert out.allocation == asked
    assert out.adjustments == []


def test_stock_too_small_for_any_minimum_spend_is_a_rejection(products, economics) -> None:
    tiny = products["TENT-2P"].model_copy(update={"stock": 1})
    out = check(verdict({"search": 5000.0}, sku="TENT-2P"), brief(), product=tiny, economics=economics,
                budget_left=QUARTERLY_BUDGET, hurdle_roi=-10.0, draws=DRAWS)
    assert not out.approved
    assert out.rejection == "no channel reaches its minimum spend within the stock"


@pytest.mark.parametrize("action,reason", [("reject", "the CEO rejected the plan: crafted"),
                                           ("revise", "the debate ended without an approved plan")])
def test_non_approving_verdicts_spend_nothing(products, economics, action: str, reason: str) -> None:
    v = Verdict(action=action, product_sku="TRAIL-X", channels={"search": 1000.0}, rationale="crafted")
    out = run(v, brief(), products, economics)
    assert out.rejection == reason
    assert out.allocation == {}


# -- through the whole graph ---------------------------------------------------


def test_a_ceo_asking_ten_times_the_budget_is_clamped_end_to_end(tmp_path: Path, monkeypatch) -> None:
    asked: list[float] = []

    def greedy_ceo(state, runtime, facts, final):
        split = {k: v * 10 for k, v in state["proposal"].channels.items()}
        asked.append(sum(split.values()))
        cited = [s.id for s in state["signals"][:1]]
        return agents.ceo.CeoAnswer(action="approve", rationale="Go big: ten times the plan.", guidance="",
                                    allocations=as_list(split), cited_signals=cited)

    monkeypatch.setattr(agents.ceo, "offline", greedy_ceo)
    home = tmp_path / "home"
    home.mkdir()
    budget = 8000.0
    platform = SimulatedAdsPlatform.at_home(home)
    graph = build_graph(InMemorySaver(serde=serializer()), platform=platform)
    cfg = {"configurable": {"thread_id": "greedy"}}
    out = graph.invoke({"brief": {"goal": "Launch the trail sneaker in Spain", "budget": budget}}, cfg,
                       context=Context(provider="offline", home=str(home), now=NOW))

    assert asked and asked[0] >= 10 * 0.9 * budget  # the CEO really asked for ~10x
    assert out["verdict"].budget == asked[-1] > budget
    assert out["status"] == "executed", out.get("reason")
    assert out["plan"].budget <= budget
    assert any("the brief's cap" in a for a in out["plan"].adjustments), out["plan"].adjustments
    assert out["campaign"].spend <= budget
    assert all(e.status == "executed" for e in out["campaign"].executions)

    with Store.at_home(home) as store:
        ledger = store.db.execute("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE campaign_id = ?",
                                  [out["campaign"].id]).fetchone()[0]
        executed = store.db.execute("SELECT COALESCE(SUM(amount), 0) FROM executions WHERE campaign_id = ?",
                                    [out["campaign"].id]).fetchone()[0]
        assert 0 < ledger <= budget
        assert executed == pytest.approx(ledger)
        assert store.spent(period_of(MOMENT)) <= budget
    assert platform.order_count() == len(out["plan"].channels)

"""The Monte Carlo forecast: monotone and saturating in spend, capped by stock,
reproducible by seed, ordered quantiles. Figures only printed, never timed."""

from __future__ import annotations

import time

import pytest

from state import ChannelEconomics, Forecast, ProductFacts
from tools.forecast import channel_roi, forecast, impressions
from tools.seed import CHANNELS, PRODUCTS

ECONOMICS = {
    c[0]: ChannelEconomics(**dict(zip(("name", "cpm", "ctr", "cvr", "min_spend", "saturation"), c)))
    for c in CHANNELS
}
CATALOGUE = {
    p[0]: ProductFacts(**dict(zip(("sku", "name", "category", "price", "unit_cost", "stock"), p))) for p in PRODUCTS
}
TRAIL_X = CATALOGUE["TRAIL-X"]  # stock 1800
PLENTY = TRAIL_X.model_copy(update={"stock": 10_000_000})  # never stock-bound
SPENDS = [250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0]
DRAWS = 4000


def metrics(f: Forecast) -> dict:
    return {"units": f.units, "revenue": f.revenue, "margin": f.margin, "roi": f.roi}


@pytest.mark.parametrize("channel", sorted(ECONOMICS))
def test_units_are_monotone_in_spend(channel: str) -> None:
    units = [forecast(PLENTY, {channel: s}, ECONOMICS, draws=DRAWS).units.p50 for s in SPENDS]
    assert all(b >= a for a, b in zip(units, units[1:])), units
    assert units[-1] > units[0]  # spending more buys something


def test_more_spend_on_a_mix_never_sells_less() -> None:
    mix = {"search": 0.5, "social": 0.3, "email": 0.2}
    totals = [1000.0 * k for k in range(1, 16)]
    for q in ("p10", "p50", "p90"):
        units = [getattr(forecast(PLENTY, {c: t * w for c, w in mix.items()}, ECONOMICS, draws=DRAWS).units, q)
                 for t in totals]
        assert all(b >= a for a, b in zip(units, units[1:])), (q, units)


@pytest.mark.parametrize("channel", sorted(ECONOMICS))
def test_returns_saturate(channel: str) -> None:
    """Units per extra euro fall as spend rises (equal spend steps)."""
    step = ECONOMICS[channel].saturation / 2
    spends = [step * k for k in range(0, 7)]
    units = [forecast(PLENTY, {channel: s}, ECONOMICS, draws=DRAWS).units.p50 for s in spends]
    marginal = [(b - a) / step for a, b in zip(units, units[1:])]
    assert all(later < earlier for earlier, later in zip(marginal, marginal[1:])), marginal
    # far past saturation a euro buys under a tenth of what the first euros bought
    assert marginal[-1] < marginal[0] / 10
    # and the average ROI falls too
    rois = [forecast(PLENTY, {channel: s}, ECONOMICS, draws=DRAWS).roi.p50 for s in spends[1:]]
    assert all(later < earlier for earlier, later in zip(rois, rois[1:])), rois


def test_impressions_curve_is_linear_at_first_then_flat() -> None:
    search = ECONOMICS["search"]
    assert impressions(0.0, search) == 0.0
    assert impressions(10.0, search) == pytest.approx(10.0 / search.cpm * 1000, rel=0.01)
    ceiling = search.saturation / search.cpm * 1000
    assert impressions(search.saturation * 20, search) == pytest.approx(ceiling, rel=1e-6)
    assert impressions(search.saturation * 20, search) <= ceiling


def test_units_never_exceed_stock() -> None:
    small = TRAIL_X.model_copy(update={"stock": 60})
    shares = []
    for s in SPENDS:
        f = forecast(small, {"search": s * 0.7, "email": s * 0.3}, ECONOMICS, draws=DRAWS)
        assert f.units.p90 <= small.stock
        assert f.units.p10 <= f.units.p50 <= f.units.p90 <= small.stock
        assert f.revenue.p90 <= small.stock * small.price + 0.01
        assert f.margin.p90 <= small.stock * small.unit_margin + 0.01
        shares.append(f.stock_bound_share)
    assert all(b >= a for a, b in zip(shares, shares[1:])), shares
    assert shares[0] < 0.05  # low spend: rarely limited by stock
    assert shares[-1] == 1.0  # huge spend: every draw sells out
    assert forecast(small, {"search": 32000.0}, ECONOMICS, draws=DRAWS).units.p50 == small.stock


def test_stock_cap_changes_only_what_exceeds_it() -> None:
    plan = {"search": 3000.0, "email": 500.0}
    free = forecast(PLENTY, plan, ECONOMICS, draws=DRAWS)
    capped = forecast(TRAIL_X.model_copy(update={"stock": int(free.units.p50)}), plan, ECONOMICS, draws=DRAWS)
    assert capped.units.p10 == free.units.p10  # below the cap: untouched
    assert capped.units.p90 == int(free.units.p50) < free.units.p90
    assert 0.4 < capped.stock_bound_share < 0.6


def test_zero_stock_sells_nothing() -> None:
    f = forecast(CATALOGUE["KIDS-T"], {"search": 2000.0}, ECONOMICS, draws=DRAWS)
    assert f.units.p90 == 0
    assert f.revenue.p90 == 0
    assert f.roi.p50 == -1.0  # the whole spend is lost
    assert f.stock_bound_share == 1.0


def test_same_seed_same_forecast_other_seed_other_forecast() -> None:
    plan = {"search": 3000.0, "social": 2000.0, "email": 500.0}
    a = forecast(TRAIL_X, plan, ECONOMICS, draws=DRAWS, seed=11)
    b = forecast(TRAIL_X, plan, ECONOMICS, draws=DRAWS, seed=11)
    c = forecast(TRAIL_X, plan, ECONOMICS, draws=DRAWS, seed=12)
    assert a == b
    assert a.model_dump_json() == b.model_dump_json()
    assert (a.units, a.revenue, a.roi) != (c.units, c.revenue, c.roi)
    assert a.seed == 11 and c.seed == 12
    # different, but not a different model: same ballpark
    assert c.units.p50 == pytest.approx(a.units.p50, rel=0.1)
    # the default seed is fixed too
    assert forecast(TRAIL_X, plan, ECONOMICS, draws=DRAWS) == forecast(TRAIL_X, plan, ECONOMICS, draws=DRAWS)


def test_channel_roi_is_reproducible() -> None:
    plan = {"search": 3000.0, "video": 3000.0}
    assert channel_roi(TRAIL_X, plan, ECONOMICS) == channel_roi(TRAIL_X, plan, ECONOMICS)
    roi = channel_roi(TRAIL_X, plan, ECONOMICS)
    assert roi["search"] > roi["video"]  # search is the efficient channel in the demo economics


@pytest.mark.parametrize("sku", ["TRAIL-X", "TENT-2P", "REC-S", "KIDS-T"])
@pytest.mark.parametrize("plan", [
    {"search": 300.0},
    {"email": 800.0, "display": 400.0},
    {"search": 5000.0, "social": 4000.0, "video": 6000.0, "display": 2000.0, "email": 700.0},
])
def test_quantiles_are_ordered_for_every_metric(sku: str, plan: dict[str, float]) -> None:
    f = forecast(CATALOGUE[sku], plan, ECONOMICS, draws=DRAWS, seed=3)
    for name, q in metrics(f).items():
        assert q.p10 <= q.p50 <= q.p90, (name, q)
    assert f.spend == pytest.approx(sum(plan.values()))
    assert [c.channel for c in f.channels] == sorted(plan)
    assert f.roi.p50 == pytest.approx((f.margin.p50 - f.spend) / f.spend, abs=1e-3)


def test_demand_index_moves_units() -> None:
    plan = {"search": 3000.0}
    low = forecast(PLENTY, plan, ECONOMICS, draws=DRAWS, demand_index=0.8)
    high = forecast(PLENTY, plan, ECONOMICS, draws=DRAWS, demand_index=1.2)
    assert high.units.p50 == pytest.approx(low.units.p50 * 1.5, rel=0.01)


def test_ten_thousand_draws_on_five_channels() -> None:
    plan = {"search": 4800.0, "social": 4000.0, "video": 3000.0, "display": 1000.0, "email": 640.0}
    started = time.perf_counter()
    f = forecast(TRAIL_X, plan, ECONOMICS, draws=10_000)
    elapsed = time.perf_counter() - started
    print(f"\nforecast: 10,000 draws x 5 channels in {elapsed * 1000:.1f} ms")
    assert f.draws == 10_000
    assert len(f.channels) == 5
    assert f.spend == sum(plan.values())
    assert 0 < f.units.p50 <= TRAIL_X.stock

"""Policy in code: what a verdict may actually spend, whatever the model said.

Rules, in order: the verdict must approve a known product that is in stock; only
allowed channels with known economics; spend never above the verdict's own
budget, the brief's cap or the budget left in the period (scaled down, never
up); every channel at or above its minimum spend (or dropped); expected units
sold (p50) within stock; p50 ROI at or above the hurdle. What can be clamped is
clamped and recorded; what cannot is a rejection with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from langsmith import traceable
from state import Brief, ChannelEconomics, Forecast, ProductFacts, Verdict
from tools.forecast import forecast

STOCK_SEARCH_STEPS = 14


@dataclass
class PolicyOutcome:
    """Either an allocation that passes every rule (with its forecast) or a rejection."""

    allocation: dict[str, float] = field(default_factory=dict)
    forecast: Forecast | None = None
    adjustments: list[str] = field(default_factory=list)
    rejection: str | None = None

    @property
    def approved(self) -> bool:
        return self.rejection is None


@traceable(run_type="tool", name="policy_check")
def check(
    verdict: Verdict,
    brief: Brief,
    *,
    product: ProductFacts | None,
    economics: dict[str, ChannelEconomics],
    budget_left: float,
    hurdle_roi: float,
    demand_index: float = 1.0,
    draws: int = 10_000,
    seed: int = 7,
) -> PolicyOutcome:
    """Apply every rule to a verdict. `product` is the store's row for the verdict's SKU."""
    out = PolicyOutcome()
    if verdict.action == "reject":
        return _reject(out, f"the CEO rejected the plan: {verdict.rationale}")
    if verdict.action == "revise":
        return _reject(out, "the debate ended without an approved plan")
    if product is None:
        return _reject(out, f"unknown product {verdict.product_sku!r}")
    if brief.product and verdict.product_sku != brief.product:
        return _reject(out, f"the verdict names {verdict.product_sku} but the brief is for {brief.product}")
    if product.stock <= 0:
        return _reject(out, f"{product.sku} is out of stock")

    allocation: dict[str, float] = {}
    for name, amount in verdict.channels.items():
        if name not in brief.channels:
            out.adjustments.append(f"dropped {name}: not an allowed channel for this brief")
        elif name not in economics:
            out.adjustments.append(f"dropped {name}: no channel economics in the store")
        else:
            allocation[name] = amount
    if not allocation:
        return _reject(out, "no allowed channel left in the plan")

    requested = sum(allocation.values())
    caps = [("the verdict's budget", verdict.budget or requested), ("the brief's cap", brief.budget),
            ("the budget left in the period", budget_left)]
    cap_name, cap = min(caps, key=lambda c: c[1])
    if cap <= 0:
        return _reject(out, "no budget left in the period")
    if requested > cap + 0.005:
        allocation = _scale(allocation, cap / requested)
        out.adjustments.append(f"scaled spend {requested:,.2f} down to {cap:,.2f} ({cap_name})")

    allocation = _drop_below_minimum(allocation, economics, out.adjustments)
    if not allocation:
        return _reject(out, "no channel reaches its minimum spend")

    predicted = forecast(product, allocation, economics, draws=draws, seed=seed, demand_index=demand_index)
    if not _fits_stock(predicted):
        allocation = _fit_stock(allocation, product, economics, demand_index, draws, seed)
        out.adjustments.append(
            f"scaled spend down to {sum(allocation.values()):,.2f} so that expected units fit the "
            f"stock of {product.stock}"
        )
        allocation = _drop_below_minimum(allocation, economics, out.adjustments)
        if not allocation:
            return _reject(out, "no channel reaches its minimum spend within the stock")
        predicted = forecast(product, allocation, economics, draws=draws, seed=seed, demand_index=demand_index)

    if predicted.roi.p50 < hurdle_roi:
        return _reject(out, f"p50 ROI {predicted.roi.p50:.2f} is below the hurdle of {hurdle_roi:.2f}")
    out.allocation, out.forecast = allocation, predicted
    return out


def _reject(out: PolicyOutcome, reason: str) -> PolicyOutcome:
    out.rejection = reason
    return out


def _scale(allocation: dict[str, float], factor: float) -> dict[str, float]:
    """Scale to a total floored to the cent (never above the cap); the rounding
    remainder goes to the largest channel so the parts add up to the total."""
    target = math.floor(sum(allocation.values()) * factor * 100 + 1e-6) / 100
    scaled = {k: math.floor(v * factor * 100) / 100 for k, v in allocation.items()}
    largest = max(scaled, key=scaled.get)
    scaled[largest] = round(scaled[largest] + target - sum(scaled.values()), 2)
    return scaled


def _drop_below_minimum(
    allocation: dict[str, float], economics: dict[str, ChannelEconomics], adjustments: list[str]
) -> dict[str, float]:
    kept = {}
    for name, amount in allocation.items():
        minimum = economics[name].min_spend
        if amount < minimum:
            adjustments.append(f"dropped {name}: {amount:,.2f} is below its minimum spend of {minimum:,.2f}")
        else:
            kept[name] = amount
    return kept


def _fits_stock(predicted: Forecast) -> bool:
    """Median demand within stock. The forecast's units are already capped by stock (their p50
    can never exceed it), so the test is on the uncapped demand: at most half the draws sell out."""
    return predicted.stock_bound_share <= 0.5


def _fit_stock(
    allocation: dict[str, float], product: ProductFacts, economics: dict[str, ChannelEconomics],
    demand_index: float, draws: int, seed: int,
) -> dict[str, float]:
    """Largest proportional scale-down whose p50 units fit the stock (bisection, same draws
    and seed as the final forecast, so the result is guaranteed to fit)."""
    low, high = 0.0, 1.0
    for _ in range(STOCK_SEARCH_STEPS):
        mid = (low + high) / 2
        fits = _fits_stock(forecast(product, _scale(allocation, mid), economics, draws=draws,
                                    seed=seed, demand_index=demand_index))
        low, high = (mid, high) if fits else (low, mid)
    return _scale(allocation, low)

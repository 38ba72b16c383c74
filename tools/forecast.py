"""Marketing-mix forecast: a seeded Monte Carlo over uncertain channel rates.

Per channel, for a spend s:
    impressions = (saturation / cpm * 1000) * (1 - exp(-s / saturation))
        (linear, s / cpm * 1000, at low spend; flattening as s nears `saturation`)
    clicks      = impressions * ctr * e1,        e1 ~ LogNormal(0, 0.25)
    units       = clicks * cvr * demand * e2,    e2 ~ LogNormal(0, 0.35)
A common demand shock, demand = demand_index * LogNormal(0, 0.15), moves all
channels together (a good month is good everywhere). Units are then capped by
stock. Revenue = units * price, gross margin = units * (price - unit_cost),
ROI = (gross margin - spend) / spend. Quantiles p10/p50/p90 come from `draws` draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from langsmith import traceable
from state import ChannelEconomics, ChannelForecast, Forecast, ProductFacts, Quantiles

CTR_SIGMA = 0.25
CVR_SIGMA = 0.35
DEMAND_SIGMA = 0.15


def impressions(spend: float, channel: ChannelEconomics) -> float:
    """Expected impressions for a spend: the saturation curve, no noise."""
    ceiling = channel.saturation / channel.cpm * 1000
    return float(ceiling * -np.expm1(-spend / channel.saturation))


@traceable(run_type="tool", name="forecast")
def forecast(
    product: ProductFacts,
    allocation: Mapping[str, float],
    economics: Mapping[str, ChannelEconomics],
    *,
    draws: int = 10_000,
    seed: int = 7,
    demand_index: float = 1.0,
) -> Forecast:
    """Outcome distribution of spending `allocation` (channel -> amount) on `product`.

    Seeded, so the same inputs give the same forecast: a debate asks for the same plan's
    numbers several times (CFO, CEO, policy), and it is simulated once (a small memo)."""
    spent = tuple(sorted((name, float(amount)) for name, amount in allocation.items()))
    rates = tuple(economics[name] for name, _ in spent)
    return _simulate(product, spent, rates, draws, seed, float(demand_index))


@lru_cache(maxsize=512)
def _simulate(product: ProductFacts, spent: tuple[tuple[str, float], ...], rates: tuple[ChannelEconomics, ...],
              draws: int, seed: int, demand_index: float) -> Forecast:
    rng = np.random.default_rng(seed)
    demand = demand_index * rng.lognormal(0.0, DEMAND_SIGMA, draws)
    total_units = np.zeros(draws)
    clicks, units = np.empty((len(spent), draws)), np.empty((len(spent), draws))
    shown = []
    for i, ((_, spend), channel) in enumerate(zip(spent, rates)):
        shown.append(impressions(spend, channel))
        clicks[i] = shown[i] * channel.ctr * rng.lognormal(0.0, CTR_SIGMA, draws)
        units[i] = clicks[i] * channel.cvr * demand * rng.lognormal(0.0, CVR_SIGMA, draws)
        total_units += units[i]
    medians = np.median(np.concatenate([clicks, units]), axis=1) if spent else np.zeros(0)
    per_channel = [
        ChannelForecast(channel=name, spend=round(spend, 2), impressions=round(shown[i]),
                        clicks=round(float(medians[i])), units=round(float(medians[len(spent) + i]), 1))
        for i, (name, spend) in enumerate(spent)
    ]
    capped = np.minimum(total_units, product.stock)
    spend = float(sum(amount for _, amount in spent))
    # Revenue, margin and ROI are affine maps of the units sold, so their quantiles are the same
    # maps of the units' quantiles (sorted: a negative unit margin reverses the order): one
    # percentile call, not four.
    q_units = np.percentile(capped, [10, 50, 90])
    q_margin = q_units * product.unit_margin
    return Forecast(
        draws=draws,
        seed=seed,
        spend=round(spend, 2),
        units=_quantiles(q_units, 1),
        revenue=_quantiles(q_units * product.price, 2),
        margin=_quantiles(q_margin, 2),
        roi=_quantiles((q_margin - spend) / spend if spend > 0 else np.zeros(3), 3),
        channels=per_channel,
        stock_bound_share=round(float(np.mean(total_units >= product.stock)), 4),
    )


def _quantiles(values: np.ndarray, digits: int) -> Quantiles:
    p10, p50, p90 = np.sort(values)
    return Quantiles(p10=round(float(p10), digits), p50=round(float(p50), digits), p90=round(float(p90), digits))


def channel_roi(
    product: ProductFacts,
    allocation: Mapping[str, float],
    economics: Mapping[str, ChannelEconomics],
    *,
    draws: int = 2_000,
    seed: int = 7,
    demand_index: float = 1.0,
) -> dict[str, float]:
    """p50 ROI of each channel on its own at its amount: which channels pay back."""
    return {
        name: forecast(product, {name: amount}, economics, draws=draws, seed=seed, demand_index=demand_index).roi.p50
        for name, amount in sorted(allocation.items())
    }

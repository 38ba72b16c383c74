"""Estimated LLM cost: a price table per model (USD per million tokens), configurable.

Defaults are list prices at the time of writing; set `LEADBOOST_PRICES` (JSON
`{"model": [input, output]}`) for your contract or your local model (0, 0).
"""

from __future__ import annotations

import json

from state import SettingError, Usage

PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}


def price_table(overrides: str = "") -> dict[str, tuple[float, float]]:
    if not overrides:
        return dict(PRICES)
    try:
        extra = {k: (float(v[0]), float(v[1])) for k, v in json.loads(overrides).items()}
    except (ValueError, TypeError, IndexError, AttributeError):
        raise SettingError('LEADBOOST_PRICES must be JSON like {"model": [input, output]} in USD per 1M tokens')
    return PRICES | extra


def cost(usage: Usage, prices: dict[str, tuple[float, float]]) -> dict[str, float | None]:
    """USD per "role/model" line and in total; None for a model with no price."""
    lines: dict[str, float | None] = {}
    for key, line in usage.lines.items():
        model = key.split("/", 1)[1]
        price = prices.get(model)
        lines[key] = None if price is None else round(
            (line.input_tokens * price[0] + line.output_tokens * price[1]) / 1_000_000, 6)
    known = [v for v in lines.values() if v is not None]
    return {**lines, "total": round(sum(known), 6)}

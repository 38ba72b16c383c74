"""Budget splits as the models write them (a list, which every JSON-schema dialect
accepts) and the deterministic split the offline roles start from."""

from __future__ import annotations

from pydantic import BaseModel, Field

from state import Channel, ChannelEconomics

#: Share of a channel's saturation spend worth buying: past it, returns have fallen a lot.
SATURATION_SHARE = 0.8


class ChannelAmount(BaseModel):
    channel: Channel
    amount: float = Field(gt=0, allow_inf_nan=False)


def as_dict(amounts: list[ChannelAmount]) -> dict[str, float]:
    split: dict[str, float] = {}
    for a in amounts:
        if a.channel in split:
            raise ValueError(f"allocations names {a.channel} twice")
        split[a.channel] = round(a.amount, 2)
    return split


def as_list(split: dict[str, float]) -> list[ChannelAmount]:
    return [ChannelAmount(channel=k, amount=v) for k, v in sorted(split.items())]


def units_per_euro(channel: ChannelEconomics) -> float:
    """Expected units from the first euro: the channel's efficiency before saturation."""
    return 1000 / channel.cpm * channel.ctr * channel.cvr


def split_budget(total: float, channels: list[ChannelEconomics], keep: int = 4) -> dict[str, float]:
    """Spread `total` over the `keep` most efficient channels, weighted by efficiency,
    each capped near its saturation and at or above its minimum spend."""
    ranked = sorted(channels, key=units_per_euro, reverse=True)[:keep]
    split: dict[str, float] = {}
    remaining = total
    while ranked and remaining > 1:
        weight = sum(units_per_euro(c) for c in ranked)
        leftover = 0.0
        for c in list(ranked):
            share = remaining * units_per_euro(c) / weight
            room = c.saturation * SATURATION_SHARE - split.get(c.name, 0.0)
            take = min(share, room)
            split[c.name] = split.get(c.name, 0.0) + take
            leftover += share - take
            if take >= room:
                ranked.remove(c)
        remaining = leftover
    minimum = {c.name: c.min_spend for c in channels}
    return {k: round(v, 2) for k, v in split.items() if v >= minimum[k]}

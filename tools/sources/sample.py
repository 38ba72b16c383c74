"""The bundled offline dataset, so the embedded default has something real to argue over.

Rows carry `age_hours` instead of a date: the sample is laid out relative to the
run's clock, so it never goes stale as the calendar moves.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources

from state import Signal
from tools.sources.base import Query

DATA = "sample_signals.jsonl"


def load_sample(now: datetime) -> list[Signal]:
    """Every bundled signal, dated against `now`."""
    text = resources.files("tools").joinpath("data", DATA).read_text(encoding="utf-8")
    signals = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        age = row.pop("age_hours")
        signals.append(Signal(**row, published_at=now - timedelta(hours=age)))
    return signals


class SampleSource:
    name = "sample"
    configured = True

    def __init__(self, now: datetime) -> None:
        self.now = now

    async def fetch(self, query: Query) -> list[Signal]:
        return load_sample(self.now)

"""Runtime settings of a run: the graph's `context_schema`.

Each field can be overridden by an environment variable `LEADBOOST_<FIELD>`
(upper case) when the caller leaves it at its default, so that `langgraph dev`,
the CLI and the Python API read the same settings.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Literal


class SettingError(ValueError):
    """A setting (context field or LEADBOOST_* variable) breaks its rule."""


@dataclass(kw_only=True)
class Context:
    provider: Literal["auto", "offline", "openai"] = field(
        default="auto",
        metadata={"description": "auto: openai when OPENAI_API_KEY is set, else offline."},
    )
    deep_model: str = field(default="gpt-4.1", metadata={"description": "Model for CEO verdicts."})
    quick_model: str = field(default="gpt-4.1-mini", metadata={"description": "Model for the other roles."})
    llm_timeout: float = field(default=60.0, metadata={"description": "Seconds per LLM request."})
    llm_retries: int = field(default=3, metadata={"description": "Retries of a transient LLM fault."})
    max_llm_calls: int = field(default=60, metadata={"description": "LLM calls a run may make at most."})
    max_tokens: int = field(default=250_000, metadata={"description": "LLM tokens a run may use at most."})
    llm_cache: str = field(
        default="", metadata={"description": "SQLite file caching LLM answers ('on': <home>/llm_cache.sqlite)."}
    )
    prices: str = field(
        default="", metadata={"description": 'JSON {"model": [USD per 1M input, per 1M output]} over the defaults.'}
    )
    max_rounds: int = field(default=5, metadata={"description": "Hard cap on debate rounds (the brief asks for fewer)."})
    auto_approve_below: float = field(
        default=10_000.0, metadata={"description": "Plans spending this much or more wait for a human."}
    )
    hurdle_roi: float = field(default=0.0, metadata={"description": "p50 ROI a plan must reach."})
    sources: str = field(default="", metadata={"description": "Comma-separated sources; empty: all configured."})
    recency_days: int = field(default=30, metadata={"description": "Signals older than this are dropped."})
    top_k: int = field(default=20, metadata={"description": "Signals kept for the debate."})
    now: str = field(default="", metadata={"description": "ISO time used as the run's clock; empty: real time."})
    home: str = field(default="", metadata={"description": "Folder of the SQLite files (LEADBOOST_HOME)."})
    forecast_draws: int = field(default=10_000, metadata={"description": "Monte Carlo draws per forecast."})
    seed: int = field(default=7, metadata={"description": "Forecast seed (reproducible)."})

    def __post_init__(self) -> None:
        for f in fields(self):
            env_name = f"LEADBOOST_{f.name.upper()}"
            if getattr(self, f.name) == f.default and env_name in os.environ:
                setattr(self, f.name, _parse(env_name, os.environ[env_name], type(f.default)))
        if not self.home:
            self.home = os.environ.get("LEADBOOST_HOME", ".leadboost")
        self._check()

    def _check(self) -> None:
        rules = [
            (self.provider in ("auto", "offline", "openai"), "provider", "must be auto, offline or openai"),
            (1 <= self.max_rounds <= 5, "max_rounds", "must be between 1 and 5"),
            (self.auto_approve_below >= 0, "auto_approve_below", "must be 0 or more"),
            (self.recency_days >= 1, "recency_days", "must be at least 1"),
            (1 <= self.top_k <= 100, "top_k", "must be between 1 and 100"),
            (100 <= self.forecast_draws <= 200_000, "forecast_draws", "must be between 100 and 200000"),
            (self.llm_timeout > 0, "llm_timeout", "must be positive"),
            (0 <= self.llm_retries <= 10, "llm_retries", "must be between 0 and 10"),
            (self.max_llm_calls >= 1, "max_llm_calls", "must be at least 1"),
            (self.max_tokens >= 1, "max_tokens", "must be at least 1"),
            (self.hurdle_roi > -1, "hurdle_roi", "must be above -1"),
        ]
        for ok, name, rule in rules:
            if not ok:
                raise SettingError(f"context.{name} (LEADBOOST_{name.upper()}) {rule}")
        if self.now:
            try:
                datetime.fromisoformat(self.now)
            except ValueError:
                raise SettingError("context.now (LEADBOOST_NOW) must be an ISO 8601 time") from None

    @property
    def source_names(self) -> list[str]:
        return [s.strip() for s in self.sources.split(",") if s.strip()]


def _parse(env_name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes")
        value = kind(raw.strip())
    except ValueError:
        what = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise SettingError(f"{env_name} must be {what} (got {raw!r})") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingError(f"{env_name} must be a finite number (got {raw!r})")
    return value


def clock(context: Context) -> datetime:
    """The run's clock: `context.now` when set (tests, replays), else real UTC time."""
    if context.now:
        moment = datetime.fromisoformat(context.now)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)

"""Domain objects shared by every layer.

Pydantic models, because every boundary (CLI flags, `invoke` input, SDK input,
LLM structured output) must be validated the same way and fail with the field's
name. They hold data only; behaviour lives in tools/ and agents/.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

#: Channels RADAR can buy. The store holds their economics; this is the closed set
#: a brief, a proposal or a verdict may name.
CHANNELS: tuple[str, ...] = ("search", "social", "video", "display", "email")

Channel = Literal["search", "social", "video", "display", "email"]
Role = Literal["cmo", "cfo", "ceo"]

MAX_GOAL_CHARS = 4000
MAX_BUDGET = 10_000_000.0
MAX_ROUNDS = 5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _no_control_chars(value: str, field: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{field} must not contain NUL bytes")
    return value


class Brief(_Model):
    """The marketing team's request: the input of a run."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    goal: str = Field(
        description="What the campaign should achieve, in plain words.",
        examples=["Launch the trail sneaker in Spain, up to 8,000 EUR"],
    )
    product: str | None = Field(
        default=None,
        description="Product SKU; when empty RADAR picks the product the goal names.",
        pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$",
    )
    budget: float = Field(
        description="Spend cap for this campaign, in `currency`.",
        gt=0,
        le=MAX_BUDGET,
        allow_inf_nan=False,
    )
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    channels: list[Channel] = Field(
        default_factory=lambda: list(CHANNELS),
        description="Channels the campaign may use.",
        min_length=1,
    )
    market: str | None = Field(
        default=None, description="ISO country code of the target market, e.g. ES.",
        pattern=r"^[A-Z]{2}$",
    )
    keywords: list[str] = Field(default_factory=list, max_length=20)
    max_rounds: int = Field(default=2, ge=1, le=MAX_ROUNDS, description="Debate rounds at most.")

    @field_validator("goal")
    @classmethod
    def _goal_is_meaningful(cls, value: str) -> str:
        _no_control_chars(value, "goal")
        if not value:
            raise ValueError("goal must not be empty or whitespace")
        if len(value) > MAX_GOAL_CHARS:
            raise ValueError(f"goal must be at most {MAX_GOAL_CHARS} characters (got {len(value)})")
        return value

    @field_validator("channels")
    @classmethod
    def _channels_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("channels must not repeat a channel")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords_clean(cls, value: list[str]) -> list[str]:
        cleaned = [_no_control_chars(k.strip(), "keywords") for k in value]
        if any(not k or len(k) > 60 for k in cleaned):
            raise ValueError("each keyword must be 1 to 60 characters")
        return cleaned


class Engagement(_Model):
    likes: int = 0
    shares: int = 0
    comments: int = 0
    views: int = 0

    @property
    def total(self) -> int:
        return self.likes + 2 * self.shares + self.comments + self.views // 100


class Signal(_Model):
    """A market signal as a source delivered it (full text; lives in the store)."""

    id: str = Field(min_length=1, max_length=200)
    source: str
    title: str = Field(min_length=1)
    text: str = ""
    url: str | None = None
    published_at: datetime
    author: str | None = None
    engagement: Engagement = Field(default_factory=Engagement)
    market: str | None = None
    lang: str | None = None

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("published_at must carry a timezone")
        return value


class SignalDigest(_Model):
    """What the debate sees of a kept signal: small enough to checkpoint."""

    id: str
    source: str
    title: str
    excerpt: str = Field(max_length=400)
    url: str | None = None
    published_at: datetime
    score: float
    relevance: float
    sentiment: float = Field(ge=-1, le=1)


class SourceRun(_Model):
    name: str
    fetched: int = 0
    error: str | None = None


class SourceError(_Model):
    source: str
    kind: Literal["not_configured", "rate_limited", "unavailable", "bad_response"]
    message: str


class QuarantinedSignal(_Model):
    id: str
    source: str
    title: str
    patterns: list[str]


class ScoutReport(_Model):
    """What Scout did: which sources ran and what was dropped, and why."""

    sources: list[SourceRun] = Field(default_factory=list)
    kept: int = 0
    dropped: dict[str, list[str]] = Field(
        default_factory=dict, description="reason (stale, duplicate, quarantined, cut) -> signal ids"
    )
    quarantined: list[QuarantinedSignal] = Field(default_factory=list)
    rejected_rows: list[str] = Field(default_factory=list, description="bad input rows, by line")


class ProductFacts(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a forecast memo key

    sku: str
    name: str
    category: str
    price: float
    unit_cost: float
    stock: int

    @property
    def unit_margin(self) -> float:
        return self.price - self.unit_cost


class ChannelEconomics(_Model):
    """Per-channel rates the forecast uses (from the store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a forecast memo key

    name: str
    cpm: float = Field(gt=0, description="cost per 1,000 impressions")
    ctr: float = Field(gt=0, lt=1)
    cvr: float = Field(gt=0, lt=1)
    min_spend: float = Field(ge=0)
    saturation: float = Field(gt=0, description="spend at which returns have fallen to 1/e")


class BusinessSnapshot(_Model):
    """Enterprise's view at the start of the debate."""

    period: str
    budget_left: float
    currency: str
    product: ProductFacts | None
    channels: list[ChannelEconomics]
    lessons: list[str] = Field(default_factory=list)
    demand_index: float = 1.0


class Allocation(_Model):
    """A budget split over channels; amounts in the brief's currency."""

    channels: dict[Channel, float] = Field(min_length=1)

    @field_validator("channels")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if not math.isfinite(amount) or amount <= 0:
                raise ValueError(f"channels.{name} must be a positive amount")
        return value

    @property
    def total(self) -> float:
        return round(sum(self.channels.values()), 2)


class Proposal(_Model):
    """The CMO's plan as it stands after a round."""

    product_sku: str
    budget: float = Field(gt=0, allow_inf_nan=False)
    channels: dict[Channel, float] = Field(min_length=1)
    message: str = Field(max_length=400, description="positioning in one or two sentences")


class DebateTurn(_Model):
    """One speech in the debate transcript."""

    role: Role
    round: int = Field(ge=1)
    stance: Literal["propose", "revise", "support", "object", "decide"]
    argument: str = Field(max_length=1500)
    cited_signals: list[str] = Field(default_factory=list)


class Verdict(_Model):
    """The CEO's ruling on a round. `revise` loops the debate; the others end it."""

    action: Literal["approve", "revise", "reject"]
    product_sku: str | None = None
    budget: float = Field(default=0, ge=0, allow_inf_nan=False)
    channels: dict[Channel, float] = Field(default_factory=dict)
    rationale: str = Field(max_length=1500)
    guidance: str | None = Field(default=None, max_length=600)
    cited_signals: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _approve_needs_plan(self) -> Verdict:
        if self.action == "approve" and (not self.channels or not self.product_sku):
            raise ValueError("an approve verdict needs product_sku and channels")
        return self


class Quantiles(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a simulation result, shared by the forecast memo

    p10: float
    p50: float
    p90: float

    @model_validator(mode="after")
    def _ordered(self) -> Quantiles:
        if not (self.p10 <= self.p50 <= self.p90):
            raise ValueError("quantiles must satisfy p10 <= p50 <= p90")
        return self


class ChannelForecast(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a simulation result, shared by the forecast memo

    channel: str
    spend: float
    impressions: float
    clicks: float
    units: float


class Forecast(_Model):
    """Monte Carlo outcome of a plan (see tools/forecast.py for the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a simulation result, shared by the forecast memo

    draws: int
    seed: int
    spend: float
    units: Quantiles
    revenue: Quantiles
    margin: Quantiles
    roi: Quantiles
    channels: list[ChannelForecast]
    stock_bound_share: float = Field(ge=0, le=1, description="share of draws capped by stock")


class Plan(_Model):
    """The plan after policy: what may actually be executed."""

    campaign_id: str
    product_sku: str
    budget: float
    channels: dict[Channel, float]
    forecast: Forecast
    adjustments: list[str] = Field(default_factory=list)


class ApprovalDecision(_Model):
    """The one resume payload of the approval interrupt (CLI, Studio and SDK alike)."""

    approved: bool
    budget: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    reason: str | None = Field(default=None, max_length=500)


class ChannelCopy(_Model):
    channel: Channel
    headline: str = Field(min_length=1)
    body: str = Field(min_length=1)
    call_to_action: str = Field(min_length=1)


class Execution(_Model):
    channel: str
    amount: float
    idempotency_key: str
    receipt_id: str
    status: Literal["executed", "failed"]


class Campaign(_Model):
    id: str
    product_sku: str
    spend: float
    executions: list[Execution]
    status: Literal["executed", "failed"]


class UsageLine(_Model):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class Usage(_Model):
    """LLM usage keyed by "role/model"; added up across nodes by a reducer."""

    lines: dict[str, UsageLine] = Field(default_factory=dict)

    def __add__(self, other: Usage) -> Usage:
        merged = {k: v.model_copy() for k, v in self.lines.items()}
        for key, line in other.lines.items():
            base = merged.setdefault(key, UsageLine())
            base.calls += line.calls
            base.input_tokens += line.input_tokens
            base.output_tokens += line.output_tokens
        return Usage(lines=merged)

    @property
    def calls(self) -> int:
        return sum(line.calls for line in self.lines.values())

    @property
    def tokens(self) -> int:
        return sum(line.input_tokens + line.output_tokens for line in self.lines.values())


RunStatus = Literal["running", "executed", "rejected", "awaiting_approval", "failed"]

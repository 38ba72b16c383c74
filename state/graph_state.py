"""The one shared state of the graph, its input and its output.

Kept small on purpose: full signals live in the store and only digests travel here.
Our checkpointer stores a channel's value once per version (graph/checkpoints.py), and
the transcript, the one value that grows every round, is a delta channel: each turn is
stored once, not once per version of the whole list, so a thread grows linearly in rounds.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any

from langgraph.channels import DeltaChannel, LastValue

from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypedDict

from state.domain import (
    ApprovalDecision,
    Brief,
    BusinessSnapshot,
    Campaign,
    ChannelCopy,
    DebateTurn,
    Plan,
    Proposal,
    RunStatus,
    ScoutReport,
    SignalDigest,
    SourceError,
    Usage,
    Verdict,
)
from state.errors import InvalidInput, describe


class Validated(LastValue):
    """A LastValue channel that validates every write with its pydantic type: a bad
    brief from `invoke`, the SDK or `update_state` fails before any checkpoint is written,
    with a message naming each field and rule."""

    def update(self, values: Sequence[Any]) -> bool:
        return super().update([self._valid(v) for v in values])

    def _valid(self, value: Any) -> Any:
        if isinstance(value, self.typ):
            return value
        try:
            return self.typ.model_validate(value)
        except ValidationError as exc:
            raise InvalidInput(describe(exc, self.key or self.typ.__name__.lower())) from None


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    """Reducer: usage from parallel nodes adds up instead of overwriting."""
    return (left or Usage()) + (right or Usage())


_ROLE_ORDER = {"cmo": 0, "cfo": 1, "ceo": 2}


def add_turns(left: list[DebateTurn] | None, writes: Sequence[list[DebateTurn] | None]) -> list[DebateTurn]:
    """Delta reducer: the transcript plus a batch of writes, kept in speaking order (round, then
    CMO, CFO, CEO) whatever order parallel nodes finish in. Folding two batches one after the
    other gives what folding them at once does, as a `DeltaChannel` requires. Turns replayed
    from the server's JSON store (or sent through its API) arrive as dicts: validated here."""
    turns = [*(left or []), *(turn for write in writes for turn in write or [])]
    turns = [t if isinstance(t, DebateTurn) else DebateTurn.model_validate(t) for t in turns]
    return sorted(turns, key=lambda t: (t.round, _ROLE_ORDER[t.role]))


def batches(left: list[str] | None, right: list[str] | None) -> list[str]:
    """Reducer for fetched signal ids: appends, and `None` clears (after the merge)."""
    if right is None:
        return []
    return (left or []) + right


class RadarInput(BaseModel):
    """What a caller sends: the brief, nothing else. Validated on the way in."""

    model_config = ConfigDict(extra="forbid")

    brief: Brief


class RadarState(TypedDict, total=False):
    brief: Annotated[Brief, Validated(Brief)]
    """The request, validated on every write."""
    provider: str
    """Which provider decided ("offline" or "openai:<model>"); shown in every report."""

    fetched: Annotated[list[str], batches]
    """Ids of the signals scout fetched (stored in full), for scout_merge; cleared by it."""
    source_errors: Annotated[list[SourceError], operator.add]
    """Sources that failed; the run goes on with the others."""
    signals: list[SignalDigest]
    """The kept, ranked signals the debate may cite."""
    scout_report: ScoutReport
    """Which sources ran, what was dropped and why."""

    snapshot: BusinessSnapshot
    """Enterprise's numbers at the start of the debate."""

    round: int
    """Debate round in progress (1-based); bumped by the CEO on `revise`."""
    debate: Annotated[list[DebateTurn], DeltaChannel(add_turns)]
    """Append-only transcript of every turn (a delta channel: each turn is stored once)."""
    proposal: Proposal
    """The CMO's latest plan."""
    verdict: Verdict
    """The CEO's latest ruling; `verdict.action` routes the debate."""

    plan: Plan
    """The plan after policy (clamped, forecast, with its adjustments)."""
    approval: ApprovalDecision
    """The human decision, when the plan needed one."""
    copy: list[ChannelCopy]
    """Ad copy per channel of the plan."""
    campaign: Campaign
    """What was executed."""

    status: RunStatus
    """Final status once decided; `awaiting_approval` is read from the interrupt."""
    reason: str
    """Why the run was rejected or failed."""
    usage: Annotated[Usage, add_usage]
    """LLM calls and tokens, by role and model."""


class RadarOutput(TypedDict, total=False):
    """The decision a caller gets back."""

    status: RunStatus
    reason: str
    provider: str
    verdict: Verdict
    plan: Plan
    campaign: Campaign
    usage: Usage
    signals: list[SignalDigest]
    scout_report: ScoutReport
    source_errors: list[SourceError]


def as_dict(state: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready copy of a state (pydantic models dumped)."""
    from pydantic import BaseModel

    def dump(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, list):
            return [dump(v) for v in value]
        if isinstance(value, dict):
            return {k: dump(v) for k, v in value.items()}
        return value

    return {k: dump(v) for k, v in state.items()}

"""CEO: moderates each round and rules: revise (another round), approve or reject.

The CEO sees the CMO's proposal of this round, the CFO's answer, and code's
forecast of the proposal. Its `Verdict.action` is what the graph routes on. On
the last round `revise` is not an option: the CEO must approve or reject.
"""

from __future__ import annotations

import json
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, field_validator

from agents.allocation import ChannelAmount, as_dict, as_list, split_budget
from agents.enterprise import plan_forecast
from agents.llm import respond
from agents.prompts import DATA_RULE, citations_check, quote_signals, situation, transcript
from state import Context, DebateTurn, RadarState, Verdict
from tools.forecast import channel_roi

PROMPT = """You are the CEO of an outdoor and running gear brand, moderating a debate between the CMO and the CFO.
Round {round} of at most {max_rounds}. {options}
An approved plan must name the product {sku}, stay within the brief's budget and the budget left, and use only the
brief's channels. Company policy will clamp anything beyond that, so decide on the numbers given.
{data_rule}"""

OPEN = ("Rule `revise` (with guidance and the split you want next) if the plan should change, `approve` with the "
        "final split if it is good, or `reject` if no campaign is worth running.")
FINAL = "This is the last round: rule `approve` with the final split, or `reject`. `revise` is not allowed."


class CeoAnswer(BaseModel):
    """The CEO's ruling on this round."""

    action: Literal["approve", "revise", "reject"]
    rationale: str = Field(description="Why, in 2-4 sentences, with numbers.")
    guidance: str = Field(description="For `revise`: what the CMO must change. Otherwise empty.")
    allocations: list[ChannelAmount] = Field(description="The split approved or wanted next; empty to reject.")
    cited_signals: list[str] = Field(description="Ids of the signals the ruling relies on.")

    @field_validator("allocations")
    @classmethod
    def _one_amount_per_channel(cls, value: list[ChannelAmount]) -> list[ChannelAmount]:
        as_dict(value)  # a channel named twice fails validation, so `ask` re-asks instead of the node crashing
        return value


def numbers(state: RadarState, runtime: Runtime[Context]) -> dict:
    proposal = state["proposal"]
    snapshot = state["snapshot"]
    return {
        "proposal": proposal.model_dump(),
        "forecast": plan_forecast(state, runtime, dict(proposal.channels)),
        "channel_roi_p50": channel_roi(snapshot.product, proposal.channels, {c.name: c for c in snapshot.channels},
                                       seed=runtime.context.seed, demand_index=snapshot.demand_index),
    }


def messages(state: RadarState, runtime: Runtime[Context], facts: dict, final: bool) -> list:
    brief = state["brief"]
    shown = {**facts, "forecast": facts["forecast"].model_dump(exclude={"channels"})}
    return [
        SystemMessage(PROMPT.format(round=state["round"], max_rounds=brief.max_rounds, options=FINAL if final else OPEN,
                                    sku=state["snapshot"].product.sku, data_rule=DATA_RULE)),
        HumanMessage(
            f"Situation:\n{situation(brief, state['snapshot'])}\n\nThis round's proposal and its forecast:\n"
            f"{json.dumps(shown, indent=1)}\n\n{quote_signals(state['signals'])}\n\n"
            f"Debate so far:\n{transcript(state.get('debate', []))}"
        ),
    ]


def offline(state: RadarState, runtime: Runtime[Context], facts: dict, final: bool) -> CeoAnswer:
    """Drop channels under the hurdle and move their money to the others; approve once none is left."""
    hurdle = runtime.context.hurdle_roi
    plan = dict(state["proposal"].channels)
    losers = sorted(k for k, roi in facts["channel_roi_p50"].items() if roi < hurdle)
    keep = {k: v for k, v in plan.items() if k not in losers}
    snapshot = state["snapshot"]
    cited = [s.id for s in state["signals"][:2]]
    if not keep:
        return CeoAnswer(action="reject", rationale=f"No channel pays back at the hurdle of {hurdle:.2f}.",
                         guidance="", allocations=[], cited_signals=cited)
    if losers and not final:
        economics = [c for c in snapshot.channels if c.name in keep]
        split = split_budget(sum(plan.values()), economics, keep=len(economics))
        return CeoAnswer(
            action="revise",
            rationale=f"{', '.join(losers)} return below the hurdle of {hurdle:.2f}; the rest of the plan is sound.",
            guidance=f"Drop {', '.join(losers)} and move the money to {', '.join(sorted(split))}",
            allocations=as_list(split), cited_signals=cited,
        )
    roi = facts["forecast"].roi
    if roi.p50 < hurdle and not losers:
        return CeoAnswer(action="reject", rationale=f"p50 ROI {roi.p50:+.2f} is below the hurdle.",
                         guidance="", allocations=[], cited_signals=cited)
    return CeoAnswer(
        action="approve",
        rationale=f"Approved at {sum(keep.values()):,.0f}: p50 ROI {roi.p50:+.2f}, the CFO's numbers hold"
        + (f"; dropping {', '.join(losers)}." if losers else "."),
        guidance="", allocations=as_list(keep), cited_signals=cited,
    )


def create_ceo(llm: BaseChatModel | None = None):
    async def ceo(state: RadarState, runtime: Runtime[Context]) -> dict:
        final = state["round"] >= min(state["brief"].max_rounds, runtime.context.max_rounds)
        facts = numbers(state, runtime)
        answer, usage = await respond(
            "ceo", CeoAnswer, llm=llm, context=runtime.context, tier="deep",
            messages=lambda: messages(state, runtime, facts, final),
            offline=lambda: offline(state, runtime, facts, final),
            check=citations_check(state["signals"]), spent=state.get("usage"),
        )
        action = answer.action
        if final and action == "revise":
            action = "reject"  # the loop is bounded: no agreement by the last round spends nothing
        split = as_dict(answer.allocations)
        if action == "approve" and not split:
            action = "reject"
        verdict = Verdict(
            action=action, product_sku=state["snapshot"].product.sku, budget=round(sum(split.values()), 2),
            channels=split if action != "reject" else {}, rationale=answer.rationale[:1500],
            guidance=(answer.guidance or None) if action == "revise" else None,
            cited_signals=answer.cited_signals,
        )
        turn = DebateTurn(role="ceo", round=state["round"], stance="revise" if action == "revise" else "decide",
                          argument=answer.rationale[:1500], cited_signals=answer.cited_signals)
        update = {"verdict": verdict, "debate": [turn], "usage": usage}
        if action == "revise":
            update["round"] = state["round"] + 1
        return update

    return ceo

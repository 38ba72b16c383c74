"""CMO: proposes the campaign in round 1 and revises it after the CEO's guidance."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, field_validator

from agents.allocation import ChannelAmount, as_dict, as_list, split_budget, units_per_euro
from agents.llm import respond
from agents.prompts import DATA_RULE, citations_check, quote_signals, situation, transcript
from state import Context, DebateTurn, Proposal, RadarState

PROMPT = """You are the CMO of an outdoor and running gear brand, in a debate with the CFO and the CEO.
Round {round} of at most {max_rounds}. {task}
Spend at most the brief's budget and the budget left; use only the brief's channels; every channel at or above
its min_spend. Ground your argument in the signals (cite their ids) and in the numbers below.
{data_rule}"""

FIRST = "Propose the campaign: product, total budget, split by channel, and the message."
LATER = "Revise your proposal: answer the CFO's numbers and follow the CEO's guidance."


class CmoAnswer(BaseModel):
    """The CMO's proposal for this round."""

    argument: str = Field(description="Why this plan, in 2-4 sentences, with numbers.")
    message: str = Field(description="The campaign's positioning in one or two sentences.")
    allocations: list[ChannelAmount] = Field(min_length=1, description="Budget per channel, in the brief's currency.")
    cited_signals: list[str] = Field(description="Ids of the signals the argument relies on.")

    @field_validator("allocations")
    @classmethod
    def _one_amount_per_channel(cls, value: list[ChannelAmount]) -> list[ChannelAmount]:
        as_dict(value)  # a channel named twice fails validation, so `ask` re-asks instead of the node crashing
        return value


def messages(state: RadarState) -> list:
    rnd, brief = state["round"], state["brief"]
    return [
        SystemMessage(PROMPT.format(round=rnd, max_rounds=brief.max_rounds, task=FIRST if rnd == 1 else LATER,
                                    data_rule=DATA_RULE)),
        HumanMessage(
            f"Situation:\n{situation(brief, state['snapshot'])}\n\n{quote_signals(state['signals'])}\n\n"
            f"Debate so far:\n{transcript(state.get('debate', []))}"
            + (f"\n\nCEO guidance: {state['verdict'].guidance}" if state.get("verdict") and state["verdict"].guidance
               else "")
        ),
    ]


def offline(state: RadarState) -> CmoAnswer:
    """Round 1: the budget over the four most efficient channels. Later: the CEO's split."""
    brief, snapshot = state["brief"], state["snapshot"]
    verdict = state.get("verdict")
    if verdict is not None and verdict.channels:
        split, why = dict(verdict.channels), f"I adopt the CEO's guidance: {verdict.guidance}"
    else:
        allowed = [c for c in snapshot.channels if c.name in brief.channels]
        cap = min(brief.budget, snapshot.budget_left)
        # Too little for the weighted split (every share under its channel's minimum): all of it on the
        # best channel it can buy (enterprise_brief has rejected budgets that buy none).
        split = split_budget(cap, allowed) or {
            max((c for c in allowed if c.min_spend <= cap), key=units_per_euro).name: round(cap, 2)}
        why = "I weight the budget toward the channels that convert best per euro, below their saturation"
    upbeat = [s for s in state["signals"] if s.sentiment > 0][:2] or state["signals"][:1]
    total = sum(split.values())
    return CmoAnswer(
        argument=f"{why}. Plan: {total:,.0f} {brief.currency} over {', '.join(sorted(split))}."
        + (f" Momentum: {upbeat[0].title}." if upbeat else ""),
        message=f"{snapshot.product.name}: built for the trails people are running now.",
        allocations=as_list(split),
        cited_signals=[s.id for s in upbeat],
    )


def create_cmo(llm: BaseChatModel | None = None):
    async def cmo(state: RadarState, runtime: Runtime[Context]) -> dict:
        answer, usage = await respond(
            "cmo", CmoAnswer, llm=llm, context=runtime.context, tier="quick",
            messages=lambda: messages(state), offline=lambda: offline(state),
            check=citations_check(state["signals"]), spent=state.get("usage"),
        )
        split = as_dict(answer.allocations)
        proposal = Proposal(product_sku=state["snapshot"].product.sku, budget=round(sum(split.values()), 2),
                            channels=split, message=answer.message[:400])
        turn = DebateTurn(role="cmo", round=state["round"], stance="propose" if state["round"] == 1 else "revise",
                          argument=answer.argument[:1500], cited_signals=answer.cited_signals)
        return {"proposal": proposal, "debate": [turn], "usage": usage}

    return cmo

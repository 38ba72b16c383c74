"""CFO: answers with numbers. Runs beside the CMO, on the last round's proposal.

The numbers are code's (tools/forecast.py); the CFO argues from them. The CFO
speaks in parallel with the CMO, so it prices what is on the table at the start of
the round: in round 1 the brief's channels at an even split (the envelope the
CMO's plan will be judged against), later the split the CEO asked for.
"""

from __future__ import annotations

import json
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agents.enterprise import plan_forecast
from agents.llm import respond
from agents.prompts import DATA_RULE, citations_check, quote_signals, situation, transcript
from state import Channel, Context, DebateTurn, RadarState
from tools.forecast import channel_roi

PROMPT = """You are the CFO of an outdoor and running gear brand, in a debate with the CMO and the CEO.
Round {round} of at most {max_rounds}. Judge the plan below with the forecast numbers given (they come from the
company's forecast model; do not invent others). Object to channels whose p50 ROI is below the hurdle of
{hurdle:.2f}, and say what budget the numbers justify. Cite signal ids that matter to the money.
{data_rule}"""


class CfoAnswer(BaseModel):
    """The CFO's financial answer for this round."""

    stance: Literal["support", "object"]
    argument: str = Field(description="2-4 sentences, quoting the forecast's numbers.")
    recommended_budget: float = Field(ge=0, description="Total spend the numbers justify.")
    cut_channels: list[Channel] = Field(description="Channels to drop (p50 ROI below the hurdle).")
    cited_signals: list[str] = Field(description="Ids of the signals the argument relies on.")


def plan_under_review(state: RadarState) -> dict[str, float]:
    """What is on the table at the start of the round: the split the CEO asked for on
    `revise`, else the last proposal, else (round 1) the brief's cap split evenly."""
    verdict = state.get("verdict")
    if verdict is not None and verdict.action == "revise" and verdict.channels:
        return dict(verdict.channels)
    if state.get("proposal"):
        return dict(state["proposal"].channels)
    brief, snapshot = state["brief"], state["snapshot"]
    known = [c.name for c in snapshot.channels if c.name in brief.channels]
    cap = min(brief.budget, snapshot.budget_left)
    return {name: round(cap / len(known), 2) for name in known}


def numbers(state: RadarState, runtime: Runtime[Context]) -> dict:
    plan = plan_under_review(state)
    total = plan_forecast(state, runtime, plan)
    rois = channel_roi(state["snapshot"].product, plan, {c.name: c for c in state["snapshot"].channels},
                       seed=runtime.context.seed, demand_index=state["snapshot"].demand_index)
    return {"plan": plan, "forecast": total, "channel_roi_p50": rois}


def messages(state: RadarState, runtime: Runtime[Context], facts: dict) -> list:
    brief = state["brief"]
    shown = {"plan": facts["plan"], "channel_roi_p50": facts["channel_roi_p50"],
             "forecast": facts["forecast"].model_dump(exclude={"channels"})}
    return [
        SystemMessage(PROMPT.format(round=state["round"], max_rounds=brief.max_rounds,
                                    hurdle=runtime.context.hurdle_roi, data_rule=DATA_RULE)),
        HumanMessage(
            f"Situation:\n{situation(brief, state['snapshot'])}\n\nPlan under review and its forecast:\n"
            f"{json.dumps(shown, indent=1)}\n\n{quote_signals(state['signals'])}\n\n"
            f"Debate so far:\n{transcript(state.get('debate', []))}"
        ),
    ]


def offline(state: RadarState, runtime: Runtime[Context], facts: dict) -> CfoAnswer:
    """Object to every channel under the hurdle; support when none is."""
    hurdle = runtime.context.hurdle_roi
    losers = sorted(name for name, roi in facts["channel_roi_p50"].items() if roi < hurdle)
    keep = {k: v for k, v in facts["plan"].items() if k not in losers}
    roi = facts["forecast"].roi
    worries = [s for s in state["signals"] if s.sentiment < 0][:2]
    detail = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(facts["channel_roi_p50"].items()))
    argument = (
        f"Forecast for {sum(facts['plan'].values()):,.0f}: p50 ROI {roi.p50:+.2f} (p10 {roi.p10:+.2f}, "
        f"p90 {roi.p90:+.2f}). Per channel p50 ROI: {detail}."
        + (f" Cut {', '.join(losers)}: below the hurdle of {hurdle:.2f}." if losers else " Every channel pays back.")
        + (f" Risk: {worries[0].title}." if worries else "")
    )
    return CfoAnswer(
        stance="object" if losers or roi.p50 < hurdle else "support",
        argument=argument,
        recommended_budget=round(sum(keep.values()), 2),
        cut_channels=losers,
        cited_signals=[s.id for s in worries],
    )


def create_cfo(llm: BaseChatModel | None = None):
    async def cfo(state: RadarState, runtime: Runtime[Context]) -> dict:
        facts = numbers(state, runtime)
        answer, usage = await respond(
            "cfo", CfoAnswer, llm=llm, context=runtime.context, tier="quick",
            messages=lambda: messages(state, runtime, facts), offline=lambda: offline(state, runtime, facts),
            check=citations_check(state["signals"]), spent=state.get("usage"),
        )
        turn = DebateTurn(role="cfo", round=state["round"], stance=answer.stance, argument=answer.argument[:1500],
                          cited_signals=answer.cited_signals)
        return {"debate": [turn], "usage": usage}

    return cfo

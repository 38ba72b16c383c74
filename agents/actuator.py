"""Actuator: writes the copy per channel (in parallel), then executes the plan once.

Copy is the LLM's job (offline: templates over product and signal data), kept
within each channel's length limits. Execution is code: tools/ads.py, with an
idempotency key per channel, so replay, resume and fork never pay twice.
"""

from __future__ import annotations

import asyncio

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agents.enterprise import record_of
from agents.llm import respond
from agents.prompts import DATA_RULE, quote_signals
from state import ChannelCopy, Context, RadarState, Usage, clock
from tools.ads import AdsPlatform, SimulatedAdsPlatform, execute_plan
from tools.seed import open_store
from tools.store import period_of

#: Characters allowed per channel: (headline, body, call to action).
LIMITS = {
    "search": (30, 90, 15),
    "social": (40, 125, 20),
    "video": (40, 150, 20),
    "display": (30, 90, 15),
    "email": (60, 500, 25),
}

PROMPT = """You write ad copy for an outdoor and running gear brand. Channel: {channel}.
Limits: headline at most {h} characters, body at most {b}, call to action at most {c}.
Write in the language of the target market ({market}). Use the approved message; do not promise prices or
discounts that are not in the brief. {data_rule}"""


class CopyAnswer(BaseModel):
    """Ad copy for one channel."""

    headline: str = Field(min_length=1)
    body: str = Field(min_length=1)
    call_to_action: str = Field(min_length=1)


def within_limits(channel: str):
    h, b, c = LIMITS[channel]

    def check(answer: CopyAnswer) -> None:
        for field, limit in (("headline", h), ("body", b), ("call_to_action", c)):
            if len(getattr(answer, field)) > limit:
                raise ValueError(f"{field} is {len(getattr(answer, field))} characters; the limit is {limit}")

    return check


def offline(state: RadarState, channel: str) -> CopyAnswer:
    """Template copy from the product, the market and the strongest signal."""
    product = state["snapshot"].product
    h, b, c = LIMITS[channel]
    lead = state["signals"][0].title if state["signals"] else ""
    body = f"{state['proposal'].message} {('Trending: ' + lead) if lead else ''}".strip()
    return CopyAnswer(
        headline=_fit(product.name, h),
        body=_fit(body, b),
        call_to_action=_fit("Shop now" if channel != "email" else f"Get your {product.name}", c),
    )


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def create_copywriter(llm: BaseChatModel | None = None):
    async def copywriter(state: RadarState, runtime: Runtime[Context]) -> dict:
        brief, plan = state["brief"], state["plan"]

        async def write(channel: str) -> tuple[ChannelCopy, Usage]:
            h, b, c = LIMITS[channel]
            msgs = lambda: [  # noqa: E731
                SystemMessage(PROMPT.format(channel=channel, h=h, b=b, c=c, market=brief.market or "the goal's",
                                            data_rule=DATA_RULE)),
                HumanMessage(f"Product: {state['snapshot'].product.model_dump_json()}\n"
                             f"Message: {state['proposal'].message}\nBudget on {channel}: {plan.channels[channel]}\n\n"
                             f"{quote_signals(state['signals'][:5])}"),
            ]
            answer, usage = await respond(
                "copywriter", CopyAnswer, llm=llm, context=runtime.context, tier="quick",
                messages=msgs, offline=lambda: offline(state, channel), check=within_limits(channel),
                spent=state.get("usage"),
            )
            return ChannelCopy(channel=channel, **answer.model_dump()), usage

        results = await asyncio.gather(*(write(ch) for ch in sorted(plan.channels)))
        usage = sum((u for _, u in results), Usage())
        return {"copy": [c for c, _ in results], "usage": usage}

    return copywriter


def create_actuator(platform: AdsPlatform | None = None):
    """Node factory; `platform` defaults to the simulated one under LEADBOOST_HOME."""

    def actuator(state: RadarState, runtime: Runtime[Context], config: RunnableConfig) -> dict:
        context = runtime.context
        now = clock(context)
        with open_store(context.home, now) as store:
            campaign = execute_plan(
                store, platform or SimulatedAdsPlatform.at_home(context.home),
                thread_id=config["configurable"]["thread_id"], plan=state["plan"], copy=state["copy"],
                currency=state["brief"].currency, period=period_of(now), record=record_of(state),
            )
        return {"campaign": campaign}

    return actuator

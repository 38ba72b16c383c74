"""The RADAR graph, edge by edge as in the design diagram.

    scout -> scout_merge -> enterprise_brief -> (cmo | cfo) -> ceo
    ceo --revise--> (cmo | cfo)        ceo --approve/reject--> enterprise_check
    enterprise_check --plan--> approval -> copywriter -> actuator -> enterprise_record
    enterprise_check / approval --rejected--> END
"""

from __future__ import annotations

import asyncio

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import get_runtime

from agents import (
    approval,
    create_actuator,
    create_ceo,
    create_cfo,
    create_cmo,
    create_copywriter,
    create_scout,
    enterprise_brief,
    enterprise_check,
    enterprise_record,
    scout_merge,
)
from agents.scout import SourcesFactory, configured_sources
from state import Context, RadarInput, RadarOutput, RadarState
from tools.ads import AdsPlatform

DEBATE = ["cmo", "cfo"]


def invocable(node) -> RunnableLambda:
    """An async node that `invoke` can run too (LangGraph runs async nodes only under
    `ainvoke`); under `ainvoke` it stays a coroutine on the caller's event loop."""

    async def run_async(state: RadarState) -> dict:
        return await node(state, get_runtime(Context))

    def run_sync(state: RadarState) -> dict:
        return asyncio.run(node(state, get_runtime(Context)))

    return RunnableLambda(run_sync, afunc=run_async, name=node.__name__)


def route_after_brief(state: RadarState) -> list[str] | str:
    """No product to argue about: the run ends with its rejection."""
    return END if state.get("status") == "rejected" else DEBATE


def route_after_ceo(state: RadarState) -> list[str] | str:
    """`revise` runs another round (the CEO bumped `round`; it never says revise on the last)."""
    return DEBATE if state["verdict"].action == "revise" else "enterprise_check"


def route_after_check(state: RadarState) -> str:
    return END if state.get("status") == "rejected" else "approval"


def route_after_approval(state: RadarState) -> str:
    return END if state.get("status") == "rejected" else "copywriter"


def build_graph(
    checkpointer: BaseCheckpointSaver | None = None,
    *,
    llm: BaseChatModel | None = None,
    sources: SourcesFactory = configured_sources,
    platform: AdsPlatform | None = None,
) -> CompiledStateGraph:
    """Compile the graph. `llm` replaces the configured models (tests); `sources` and
    `platform` replace the source registry and the simulated ads platform."""
    g = StateGraph(RadarState, context_schema=Context, input_schema=RadarInput, output_schema=RadarOutput)

    g.add_node("scout", invocable(create_scout(sources, llm)))
    g.add_node("scout_merge", scout_merge)
    g.add_node("enterprise_brief", enterprise_brief)
    g.add_node("cmo", invocable(create_cmo(llm)))
    g.add_node("cfo", invocable(create_cfo(llm)))
    g.add_node("ceo", invocable(create_ceo(llm)))
    g.add_node("enterprise_check", enterprise_check)
    g.add_node("approval", approval)
    g.add_node("copywriter", invocable(create_copywriter(llm)))
    g.add_node("actuator", create_actuator(platform))
    g.add_node("enterprise_record", enterprise_record)

    g.add_edge(START, "scout")
    g.add_edge("scout", "scout_merge")
    g.add_edge("scout_merge", "enterprise_brief")
    g.add_conditional_edges("enterprise_brief", route_after_brief, [*DEBATE, END])
    g.add_edge(DEBATE, "ceo")
    g.add_conditional_edges("ceo", route_after_ceo, [*DEBATE, "enterprise_check"])
    g.add_conditional_edges("enterprise_check", route_after_check, ["approval", END])
    g.add_conditional_edges("approval", route_after_approval, ["copywriter", END])
    g.add_edge("copywriter", "actuator")
    g.add_edge("actuator", "enterprise_record")
    g.add_edge("enterprise_record", END)

    return g.compile(checkpointer=checkpointer, name="radar")

"""The RADAR graph, edge by edge as in the design diagram.

    scout -> scout_merge -> enterprise_brief -> (cmo | cfo) -> ceo
    ceo --revise--> (cmo | cfo)        ceo --approve/reject--> enterprise_check
    enterprise_check --plan--> approval -> copywriter -> actuator -> enterprise_record
    enterprise_check / approval --rejected--> END
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import ValidationError

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
from graph.nodes import as_node
from state import Context, InvalidInput, RadarInput, RadarOutput, RadarState, describe
from tools.ads import AdsPlatform

DEBATE = ["cmo", "cfo"]


def route_after_brief(state: RadarState) -> list[str] | str:
    """No product to argue about: the run ends with its rejection."""
    return END if state.get("status") == "rejected" else DEBATE


def route_after_ceo(state: RadarState) -> list[str] | str:
    """`revise` runs another round while rounds remain (the CEO bumped `round`); the round
    check bounds the loop here too, whatever the CEO node does."""
    if state["verdict"].action == "revise" and state["round"] <= state["brief"].max_rounds:
        return DEBATE
    return "enterprise_check"


def route_after_check(state: RadarState) -> str:
    return END if state.get("status") == "rejected" else "approval"


def route_after_approval(state: RadarState) -> str:
    return END if state.get("status") == "rejected" else "copywriter"


class RadarGraph(CompiledStateGraph):
    """The compiled graph, checking a caller's brief before anything is written.

    LangGraph saves the input checkpoint and the start task's writes before any channel
    validates them, so a bad brief would leave a thread that fails on every read (and a bad
    `update_state` leaves orphan writes). Here it raises `InvalidInput` (field and rule) and
    nothing is written. `invoke`, `ainvoke`, `astream_events` and the server go through
    `stream` or `astream`; `update_state` and `aupdate_state` through the bulk updates."""

    def stream(self, input, config=None, **kwargs):
        return super().stream(checked_input(input), checked_config(config), **kwargs)

    def astream(self, input, config=None, **kwargs):
        return super().astream(checked_input(input), checked_config(config), **kwargs)

    def bulk_update_state(self, config, supersteps):
        return super().bulk_update_state(config, checked_updates(supersteps))

    async def abulk_update_state(self, config, supersteps):
        return await super().abulk_update_state(config, checked_updates(supersteps))


def checked_input(value):
    """A dict input must carry a valid brief (other keys are not inputs and stay ignored);
    `None` (resume) and `Command`s pass as they are."""
    if isinstance(value, dict):
        try:
            RadarInput.model_validate({k: v for k, v in value.items() if k == "brief"})
        except ValidationError as exc:
            raise InvalidInput(describe(exc)) from None
    return value


def checked_config(config):
    """A run needs a thread id: it names the decision and its idempotency keys. Checked up
    front, not discovered after the model calls have been paid for."""
    if not ((config or {}).get("configurable") or {}).get("thread_id"):
        raise InvalidInput('config.configurable.thread_id: required (e.g. {"configurable": {"thread_id": "t1"}})')
    return config


def checked_updates(supersteps):
    """State updates that write a brief must write a valid one."""
    supersteps = [list(step) for step in supersteps]
    for step in supersteps:
        for update in step:
            if isinstance(update[0], dict) and "brief" in update[0]:
                checked_input({"brief": update[0]["brief"]})
    return supersteps


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

    g.add_node("scout", as_node(create_scout(sources, llm)))
    g.add_node("scout_merge", as_node(scout_merge))
    g.add_node("enterprise_brief", as_node(enterprise_brief))
    g.add_node("cmo", as_node(create_cmo(llm)))
    g.add_node("cfo", as_node(create_cfo(llm)))
    g.add_node("ceo", as_node(create_ceo(llm)))
    g.add_node("enterprise_check", as_node(enterprise_check))
    g.add_node("approval", as_node(approval))
    g.add_node("copywriter", as_node(create_copywriter(llm)))
    g.add_node("actuator", as_node(create_actuator(platform)))
    g.add_node("enterprise_record", as_node(enterprise_record))

    g.add_edge(START, "scout")
    g.add_edge("scout", "scout_merge")
    g.add_edge("scout_merge", "enterprise_brief")
    g.add_conditional_edges("enterprise_brief", route_after_brief, [*DEBATE, END])
    # Plain edges, not a join: CMO and CFO always share a step, so the CEO runs once either way, and
    # the server's state view (which reads a join's set back as a list) would lose `next` = ceo.
    for role in DEBATE:
        g.add_edge(role, "ceo")
    g.add_conditional_edges("ceo", route_after_ceo, [*DEBATE, "enterprise_check"])
    g.add_conditional_edges("enterprise_check", route_after_check, ["approval", END])
    g.add_conditional_edges("approval", route_after_approval, ["copywriter", END])
    g.add_edge("copywriter", "actuator")
    g.add_edge("actuator", "enterprise_record")
    g.add_edge("enterprise_record", END)

    compiled = g.compile(checkpointer=checkpointer, name="radar")
    compiled.__class__ = RadarGraph  # same object, input checked first (no state of its own)
    return compiled

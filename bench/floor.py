"""The stack's floor for benchmark 2: what 50 concurrent decisions cost with no RADAR code.

A stand-in graph with the shape of one 2-round decision (the same supersteps, the same
parallel pairs and the same 8 model calls through `ChatOpenAI`, 5 on the critical path)
whose nodes do nothing else, on the same async SQLite checkpointer. Its ratio is the best
benchmark 2 could show on this machine with this stack: everything RADAR adds comes on top.
"""

from __future__ import annotations

import asyncio
import operator
import statistics
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

#: (node, schema it asks for, or None for a node without a model call), in superstep order;
#: a tuple is a superstep whose nodes run side by side.
STEPS: list[Any] = [
    ("scout", None), ("scout_merge", None), ("enterprise_brief", None),
    (("cmo_1", "CmoAnswer"), ("cfo_1", "CfoAnswer")), ("ceo_1", "CeoAnswer"),
    (("cmo_2", "CmoAnswer"), ("cfo_2", "CfoAnswer")), ("ceo_2", "CeoAnswer"),
    ("enterprise_check", None), ("approval", None),
    (("copy_search", "CopyAnswer"), ("copy_email", "CopyAnswer")), ("actuator", None), ("enterprise_record", None),
]
#: Prompt sizes close to the roles' real ones (system rules; situation, signals and transcript).
SYSTEM_CHARS, HUMAN_CHARS = 1_500, 5_000


class _State(TypedDict, total=False):
    done: Annotated[list[str], operator.add]


def stand_in_graph(saver, llm):
    from langchain_core.messages import HumanMessage, SystemMessage
    from langgraph.graph import END, START, StateGraph

    def node(name: str, schema: str | None):
        messages = [SystemMessage(content="Rules. " * (SYSTEM_CHARS // 7)),
                    HumanMessage(content="Facts. " * (HUMAN_CHARS // 7))]
        answer_format = {"type": "json_schema",
                         "json_schema": {"name": schema, "schema": {"type": "object"}, "strict": False}}

        async def run(state: _State) -> dict:
            if schema:
                await llm.ainvoke(messages, response_format=answer_format)
            return {"done": [name]}

        return run

    builder = StateGraph(_State)
    previous: list[str] = [START]
    for step in STEPS:
        group = step if isinstance(step[0], tuple) else (step,)
        for name, schema in group:
            builder.add_node(name, node(name, schema))
        names = [name for name, _ in group]
        for name in names:
            builder.add_edge(previous if len(previous) > 1 else previous[0], name)
        previous = names
    builder.add_edge(previous[0], END)
    return builder.compile(checkpointer=saver)


async def floor(db: Path, base_url: str, n: int) -> dict[str, Any]:
    """One stand-in decision alone (median of 3), then `n` at once: wall times and CPU."""
    from langchain_openai import ChatOpenAI
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from openai import DefaultAsyncHttpxClient

    llm = ChatOpenAI(model="gpt-4.1", base_url=base_url, api_key="bench-key", temperature=0.2,
                     http_async_client=DefaultAsyncHttpxClient())
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = stand_in_graph(saver, llm)
        run = lambda thread: graph.ainvoke({"done": []}, {"configurable": {"thread_id": thread}})  # noqa: E731
        await run("warm-up")
        singles = []
        for i in range(3):
            start = time.perf_counter()
            await run(f"single-{i}")
            singles.append(time.perf_counter() - start)
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(run(f"many-{i}") for i in range(n)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    single = statistics.median(singles)
    return {"single_s": round(single, 4), "wall_s": round(wall, 4), "ratio": round(wall / single, 3),
            "cpu_ms_per_decision": round(cpu / n * 1000, 1)}

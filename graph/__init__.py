"""The compiled RADAR graph and its entry points (Python API, CLI, `langgraph dev`).

`from graph import build_graph` for your own checkpointer; `graph.graph` is the
checkpointer-less graph that `langgraph dev` serves (compiled on first access).
"""

from graph.builder import build_graph

__all__ = ["build_graph", "graph"]


def __getattr__(name: str):
    if name == "graph":
        from graph.server import graph

        return graph
    raise AttributeError(name)

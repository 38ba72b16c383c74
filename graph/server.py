"""The graph `langgraph dev` serves (langgraph.json). No checkpointer: the server brings its own."""

from graph.builder import build_graph
from graph.nodes import configure_logging

configure_logging()
graph = build_graph()

"""The graph `langgraph dev` serves (langgraph.json). No checkpointer: the server brings its own."""

from graph.builder import build_graph

graph = build_graph()

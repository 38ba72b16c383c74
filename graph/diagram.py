"""`python -m graph.diagram`: the Mermaid drawing of the graph, as the README shows it."""

from graph.builder import build_graph


def mermaid() -> str:
    return build_graph().get_graph().draw_mermaid()


if __name__ == "__main__":
    print(mermaid(), end="")

"""One decision with the LLM cache on, as benchmark 5 runs it (also in a separate process):

    python -m bench.rerun --home DIR --cache FILE --thread ID     (OPENAI_BASE_URL set by the caller)

prints the comparable part of the decision as one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.common import brief, config, context, sample_sources


def decide(home: Path, cache: Path, thread: str) -> dict[str, Any]:
    """Run the 2-round brief at the fixed clock; the decision as `leadboost run --json` shapes it."""
    from agents.pricing import price_table
    from graph.builder import build_graph
    from graph.checkpoints import sqlite_checkpointer
    from graph.runs import decision

    ctx = context(home, llm_cache=str(cache))
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, sources=sample_sources)
        graph.invoke(brief(2), config(thread), context=ctx)
        result = decision(thread, graph.get_state(config(thread)), price_table(ctx.prices))
    return json.loads(json.dumps({k: result[k] for k in ("status", "verdict", "plan", "copy", "debate", "usage")},
                                 default=str))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rerun")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--thread", required=True)
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("LEADBOOST_")]:
        del os.environ[name]
    os.environ["LANGSMITH_TRACING"] = os.environ["LANGCHAIN_TRACING_V2"] = "false"
    if not os.environ.get("OPENAI_BASE_URL", "").startswith("http://127.0.0.1:"):
        sys.exit("bench.rerun: OPENAI_BASE_URL must point at the local fake server")
    print(json.dumps(decide(args.home, args.cache, args.thread)))


if __name__ == "__main__":
    main()

"""Run `leadboost ARGS...` in this process and SIGKILL it at one point (used by tests/test_crash.py).

    python tests/crash_runner.py POINT leadboost-args...

POINT is a node of the graph (the process kills itself on entering that node, before the node
does anything), or `after_place_order` (killed inside `execute_plan`, right after the ad platform
has booked the first order and before its execution is marked done and its ledger entry written).
The kill is SIGKILL: no cleanup, no exception handler, no flushed buffers, as in a power cut.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_entry(node: str) -> None:
    """Wrap the role function that becomes `node` (its __name__ is the node's name) so that
    entering it kills the process. The wrapper keeps the signature LangGraph injects by."""
    import graph.builder as builder

    original = builder.as_node

    def as_node(fn):
        if fn.__name__ == node:
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def dying(*args, **kwargs):
                    die()
            else:
                @functools.wraps(fn)
                def dying(*args, **kwargs):
                    die()
            fn = dying
        return original(fn)

    builder.as_node = as_node


def kill_after_place_order() -> None:
    import tools.ads as ads

    original = ads.SimulatedAdsPlatform.place_order

    def place_order(self, order):
        original(self, order)  # booked on the platform (its own file), receipt not recorded yet
        die()

    ads.SimulatedAdsPlatform.place_order = place_order


def main() -> None:
    point, args = sys.argv[1], sys.argv[2:]
    if point == "after_place_order":
        kill_after_place_order()
    else:
        kill_on_entry(point)
    from graph.cli import main as leadboost

    sys.argv = ["leadboost", *args]
    leadboost()


if __name__ == "__main__":
    main()

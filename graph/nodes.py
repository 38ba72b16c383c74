"""How role functions become graph nodes: logged, and runnable by `invoke` and `ainvoke`.

Structured logs: at `LEADBOOST_LOG=info` every node start and end is one JSON
line on stderr with the thread id, the node and the duration. Values are never
logged, so neither are briefs nor secrets.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import os
import sys
import threading
import time
from typing import Any

from langchain_core.runnables import RunnableLambda
from langgraph.config import get_config
from langgraph.runtime import get_runtime

from state import Context, RadarState

log = logging.getLogger("leadboost")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": round(record.created, 3), "level": record.levelname.lower(), "event": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        return json.dumps(line)


def configure_logging(level: str | None = None) -> None:
    """Turn on JSON-line logs at LEADBOOST_LOG (e.g. info); off when unset."""
    level = (level or os.environ.get("LEADBOOST_LOG") or "").upper()
    if not level or log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def as_node(fn):
    """A node from a role function: logged; an async one also runs under `invoke`
    (LangGraph runs async nodes only under `ainvoke`), staying a coroutine under `ainvoke`."""
    if not inspect.iscoroutinefunction(fn):
        return _logged_sync(fn)
    timed = _logged_async(fn)

    async def run_async(state: RadarState) -> dict:
        return await timed(state, get_runtime(Context))

    def run_sync(state: RadarState) -> dict:
        return _on_sync_loop(timed(state, get_runtime(Context)))

    return RunnableLambda(run_sync, afunc=run_async, name=fn.__name__)


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _on_sync_loop(coro):
    """Run a coroutine for a sync caller on one long-lived event loop (clients such as
    ChatOpenAI's stay bound to the loop they first ran on), in the caller's context so
    that config, tracing parents and the runtime carry over."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="leadboost-sync-loop", daemon=True).start()
    context = contextvars.copy_context()

    async def in_context():
        return await asyncio.get_running_loop().create_task(coro, context=context)

    return asyncio.run_coroutine_threadsafe(in_context(), _loop).result()


def _fields(name: str, **extra: Any) -> dict[str, Any]:
    configurable = get_config().get("configurable", {})
    return {"fields": {"thread_id": configurable.get("thread_id"), "node": name, **extra}}


def _logged_sync(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not log.isEnabledFor(logging.INFO):
            return fn(*args, **kwargs)
        log.info("node_start", extra=_fields(fn.__name__))
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            log.info("node_end", extra=_fields(fn.__name__, duration_ms=round((time.perf_counter() - start) * 1000, 2)))

    return wrapper


def _logged_async(fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        if not log.isEnabledFor(logging.INFO):
            return await fn(*args, **kwargs)
        log.info("node_start", extra=_fields(fn.__name__))
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            log.info("node_end", extra=_fields(fn.__name__, duration_ms=round((time.perf_counter() - start) * 1000, 2)))

    return wrapper

"""Checkpointers on `$LEADBOOST_HOME/checkpoints.sqlite`, with our state types allowed.

The serializer is told which of our pydantic types it may rebuild, so reading a
checkpoint never falls back to the permissive (warned, soon blocked) path.
"""

from __future__ import annotations

import inspect
import sqlite3
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import BaseModel

import state.domain

FILENAME = "checkpoints.sqlite"


def serializer() -> JsonPlusSerializer:
    ours = [
        (obj.__module__, obj.__name__)
        for obj in vars(state.domain).values()
        if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == state.domain.__name__
    ]
    return JsonPlusSerializer(allowed_msgpack_modules=ours)


def checkpoint_path(home: str | Path) -> Path:
    path = Path(home) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def sqlite_checkpointer(home: str | Path):
    conn = sqlite3.connect(checkpoint_path(home), check_same_thread=False, timeout=30)
    try:
        saver = SqliteSaver(conn, serde=serializer())
        saver.setup()
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def async_sqlite_checkpointer(home: str | Path):
    async with AsyncSqliteSaver.from_conn_string(str(checkpoint_path(home))) as saver:
        saver.serde = serializer()
        yield saver

"""Checkpointers on `$LEADBOOST_HOME/checkpoints.sqlite`, with our state types allowed.

The serializer is told which of our pydantic types it may rebuild, so reading a
checkpoint never falls back to the permissive (warned, soon blocked) path.

The plain sqlite savers store the whole state in every checkpoint row, so a value
that does not change (the scout's signals) is written again at every step. Ours
store each channel's value once per version in `checkpoint_blobs`, as LangGraph's
PostgresSaver and InMemorySaver do, and the checkpoint rows without their values.
A file written by the plain savers is converted once when it is opened (`migrate`).
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import BaseModel

import state.domain

FILENAME = "checkpoints.sqlite"

BLOBS_TABLE = """CREATE TABLE IF NOT EXISTS checkpoint_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
)"""
INSERT_BLOB = ("INSERT OR IGNORE INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
               "VALUES (?, ?, ?, ?, ?, ?)")
DELETE_BLOBS = "DELETE FROM checkpoint_blobs WHERE thread_id = ?"
#: A channel that has a version but no value (PostgresSaver's marker); read back as absent.
EMPTY = "empty"


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


# -- channel values stored apart from the checkpoints -----------------------------------


def _thread(config: RunnableConfig) -> tuple[str, str]:
    """(thread_id, checkpoint_ns): a blob belongs to one namespace of one thread."""
    conf = config["configurable"]
    return str(conf["thread_id"]), conf.get("checkpoint_ns", "")


def _blob_rows(serde: SerializerProtocol, config: RunnableConfig, checkpoint: Checkpoint,
               versions: Mapping[str, Any]) -> list[tuple]:
    """Rows for the given channel versions; a version without a value is stored as `empty` so
    that reading the checkpoint back knows the channel is empty rather than lost."""
    thread_id, ns = _thread(config)
    values = checkpoint["channel_values"]
    return [(thread_id, ns, channel, str(version),
             *(serde.dumps_typed(values[channel]) if channel in values else (EMPTY, b"")))
            for channel, version in versions.items()]


def _select_blobs(config: RunnableConfig, versions: Mapping[str, Any], columns: str) -> tuple[str, list]:
    """One query for all the named versions: an OR of primary-key lookups (each one an index
    seek; a row-value IN would scan the thread's blobs)."""
    pairs = " OR ".join(["(channel = ? AND version = ?)"] * len(versions))
    params = [*_thread(config)]
    for channel, version in versions.items():
        params += [channel, str(version)]
    return f"SELECT {columns} FROM checkpoint_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND ({pairs})", params


def _wanted(checkpoint: Checkpoint) -> dict[str, Any]:
    """The versions to read: every versioned channel the row does not carry inline (all of them
    for our rows; the rows of the plain savers keep theirs)."""
    values = checkpoint["channel_values"]
    return {ch: v for ch, v in checkpoint["channel_versions"].items() if ch not in values}


def _refill(serde: SerializerProtocol, tup: CheckpointTuple, rows: list[tuple]) -> CheckpointTuple:
    """Put the read blobs back into the checkpoint; an `empty` one means the channel has no value."""
    values = tup.checkpoint["channel_values"]
    for channel, type_, blob in rows:
        if type_ != EMPTY:
            values[channel] = serde.loads_typed((type_, blob))
    return tup


def _stripped(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint row as stored: its values are in the blobs its `channel_versions` name."""
    return {**checkpoint, "channel_values": {}}


class BlobSqliteSaver(SqliteSaver):
    """SqliteSaver that stores each channel's value once per version, not once per checkpoint.

    Blobs are committed before the checkpoint row that names them, so a reader that sees a
    checkpoint finds its values. Every access holds `self.lock` (through `self.cursor()`).
    """

    def setup(self) -> None:
        if self.is_setup:
            return
        self.conn.execute(BLOBS_TABLE)  # before the base sets `is_setup`: nobody queries a missing table
        self.conn.commit()
        super().setup()

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        rows = _blob_rows(self.serde, config, checkpoint, new_versions)
        with self.cursor(transaction=False) as cur:  # the base's commit below covers both
            cur.executemany(INSERT_BLOB, rows)
        return super().put(config, _stripped(checkpoint), metadata, new_versions)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        tup = super().get_tuple(config)
        return self._filled(tup) if tup else None

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        # The base holds `self.lock` while it yields: take all its rows first (ours carry no
        # values, so they are small), then read the blobs of each under the lock again.
        for tup in [*super().list(config, filter=filter, before=before, limit=limit)]:
            yield self._filled(tup)

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)  # checkpoints first: none is left without its blobs
        with self.cursor() as cur:
            cur.execute(DELETE_BLOBS, (str(thread_id),))

    # The base's fast path reads values inline from the rows; the generic walk uses get_tuple.
    get_delta_channel_history = BaseCheckpointSaver.get_delta_channel_history

    def _filled(self, tup: CheckpointTuple) -> CheckpointTuple:
        if wanted := _wanted(tup.checkpoint):
            with self.cursor(transaction=False) as cur:
                rows = cur.execute(*_select_blobs(tup.config, wanted, "channel, type, blob")).fetchall()
            _refill(self.serde, tup, rows)
        return tup


class AsyncBlobSqliteSaver(AsyncSqliteSaver):
    """AsyncSqliteSaver storing values as `BlobSqliteSaver` does. Its sync methods (`get_tuple`,
    `list`, `put`, `delete_thread`, ...) run these async ones on the saver's loop."""

    _blobs_ready = False

    async def setup(self) -> None:
        await super().setup()  # takes `self.lock` itself
        if self._blobs_ready:
            return
        async with self.lock:
            if not self._blobs_ready:
                async with self.conn.execute(BLOBS_TABLE):
                    await self.conn.commit()
                self._blobs_ready = True

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        await self.setup()
        rows = _blob_rows(self.serde, config, checkpoint, new_versions)
        async with self.lock:  # no commit of our own: the base's commit below covers both
            await self.conn.executemany(INSERT_BLOB, rows)
        return await super().aput(config, _stripped(checkpoint), metadata, new_versions)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        tup = await super().aget_tuple(config)
        return await self._filled(tup) if tup else None

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        # As in BlobSqliteSaver.list: the base holds `self.lock` while it yields.
        for tup in [t async for t in super().alist(config, filter=filter, before=before, limit=limit)]:
            yield await self._filled(tup)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.setup()
        await super().adelete_thread(thread_id)
        async with self.lock, self.conn.cursor() as cur:
            await cur.execute(DELETE_BLOBS, (str(thread_id),))
            await self.conn.commit()

    aget_delta_channel_history = BaseCheckpointSaver.aget_delta_channel_history

    async def _filled(self, tup: CheckpointTuple) -> CheckpointTuple:
        if wanted := _wanted(tup.checkpoint):
            async with self.lock, self.conn.cursor() as cur:
                await cur.execute(*_select_blobs(tup.config, wanted, "channel, type, blob"))
                rows = await cur.fetchall()
            _refill(self.serde, tup, rows)
        return tup


def migrate(path: str | Path) -> None:
    """Move the values of checkpoints written by the plain savers into blobs, once per file
    (then `PRAGMA user_version` is 1), so that a thread they started goes on with ours and
    `put` never has to look for values it did not write."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= 1:
            return
        serde = serializer()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(BLOBS_TABLE)
        has_rows = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'").fetchone()
        for thread_id, ns, checkpoint_id, type_, blob in conn.execute(
            "SELECT thread_id, checkpoint_ns, checkpoint_id, type, checkpoint FROM checkpoints"
        ).fetchall() if has_rows else []:
            checkpoint = serde.loads_typed((type_, blob))
            if not checkpoint.get("channel_values"):
                continue
            config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
            conn.executemany(INSERT_BLOB, _blob_rows(serde, config, checkpoint, checkpoint["channel_versions"]))
            conn.execute("UPDATE checkpoints SET type = ?, checkpoint = ? WHERE thread_id = ? AND checkpoint_ns = ?"
                         " AND checkpoint_id = ?", [*serde.dumps_typed(_stripped(checkpoint)), thread_id, ns,
                                                    checkpoint_id])
        conn.execute("PRAGMA user_version = 1")
        conn.execute("COMMIT")
    finally:
        conn.close()


@contextmanager
def sqlite_checkpointer(home: str | Path):
    migrate(checkpoint_path(home))
    conn = sqlite3.connect(checkpoint_path(home), check_same_thread=False, timeout=30)
    try:
        saver = BlobSqliteSaver(conn, serde=serializer())
        saver.setup()
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def async_sqlite_checkpointer(home: str | Path):
    await asyncio.to_thread(migrate, checkpoint_path(home))
    async with AsyncBlobSqliteSaver.from_conn_string(str(checkpoint_path(home))) as saver:
        saver.serde = serializer()
        yield saver

"""An LLM answer cache in SQLite, so that a re-run costs no requests even across processes.

langchain-core ships only an in-memory cache (the SQLite one lives in
langchain-community, a large dependency for forty lines). Entries are keyed by
the prompt and the model's settings, as langchain-core's cache protocol defines.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from langchain_core.caches import BaseCache
from langchain_core.load import dumps, loads
from langchain_core.outputs import Generation


class SqliteLLMCache(BaseCache):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS llm_cache (prompt TEXT, llm TEXT, answer TEXT, PRIMARY KEY (prompt, llm))"
        )

    def lookup(self, prompt: str, llm_string: str) -> Sequence[Generation] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT answer FROM llm_cache WHERE prompt = ? AND llm = ?", [prompt, llm_string]
            ).fetchone()
        return loads(row[0]) if row else None

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?)",
                               [prompt, llm_string, dumps(list(return_val))])

    def clear(self, **kwargs: object) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM llm_cache")

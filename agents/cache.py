"""An LLM answer cache in SQLite, so that a re-run costs no requests even across processes.

langchain-core ships only an in-memory cache (the SQLite one lives in
langchain-community, a large dependency for forty lines). Entries are keyed by
the prompt and the model's settings, as langchain-core's cache protocol defines.
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from langchain_core.caches import BaseCache
from langchain_core._api import LangChainBetaWarning
from langchain_core.load import dumps, loads
from langchain_core.messages import BaseMessage
from langchain_core.outputs import Generation

#: Set in the `response_metadata` of an answer read back from the cache.
CACHE_HIT = "leadboost_cache_hit"

warnings.filterwarnings("ignore", category=LangChainBetaWarning, module=__name__)  # `loads` is marked beta


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
        if not row:
            return None
        generations = loads(row[0], allowed_objects="core")  # our own file; "core" is loads' default
        for generation in generations:
            if isinstance(getattr(generation, "message", None), BaseMessage):
                generation.message.response_metadata[CACHE_HIT] = True  # nothing was sent: no usage, no cost
        return generations

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?)",
                               [prompt, llm_string, dumps(list(return_val))])

    def clear(self, **kwargs: object) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM llm_cache")

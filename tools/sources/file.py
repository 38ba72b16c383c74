"""A social-listening export on disk (`.jsonl` or `.csv`): bring your own signals, offline.

Exports are hand-edited and messy, so a bad row does not fail the file: it is
skipped and reported by line in `rejected_rows`, which Scout's report shows.
Unknown columns are ignored (every tool adds its own); naive dates are UTC.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from state import Signal, describe
from tools.sources.base import Query, SourceBadResponse, SourceNotConfigured

FIELDS = ("id", "source", "title", "text", "url", "published_at", "author", "market", "lang")
COUNTS = ("likes", "shares", "comments", "views")


class FileSource:
    name = "file"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.path = (env.get("LEADBOOST_SIGNALS_FILE") or "").strip()
        self.rejected_rows: list[str] = []

    @property
    def configured(self) -> bool:
        return bool(self.path)

    async def fetch(self, query: Query) -> list[Signal]:
        if not self.configured:
            raise SourceNotConfigured(self.name, "set LEADBOOST_SIGNALS_FILE to a .jsonl or .csv export")
        return await asyncio.to_thread(self._read, Path(self.path).expanduser())

    def _read(self, path: Path) -> list[Signal]:
        if not path.is_file():
            raise SourceBadResponse(self.name, f"LEADBOOST_SIGNALS_FILE {path} does not exist")
        is_csv = path.suffix.lower() == ".csv"
        if not is_csv and path.suffix.lower() not in (".jsonl", ".ndjson"):
            raise SourceBadResponse(self.name, f"LEADBOOST_SIGNALS_FILE {path} must be a .jsonl or .csv file")
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = (
                    list(enumerate(csv.DictReader(handle), start=2)) if is_csv
                    else [(n, line) for n, line in enumerate(handle, start=1) if line.strip()]
                )
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SourceBadResponse(self.name, f"cannot read {path}: {exc}") from None
        self.rejected_rows = []
        signals = []
        for line, row in rows:
            where = f"{path.name} line {line}"
            try:
                signals.append(_signal(row if is_csv else json.loads(row)))
            except json.JSONDecodeError as exc:
                self.rejected_rows.append(f"{where}: invalid JSON ({exc.msg})")
            except ValidationError as exc:
                self.rejected_rows.append(f"{where}: {describe(exc).replace(chr(10), '; ')}")
            except TypeError:
                self.rejected_rows.append(f"{where}: expected a JSON object")
        return signals


def _signal(row: Any) -> Signal:
    """A row (CSV dict or JSON object) as a Signal; empty cells count as absent."""
    if not isinstance(row, dict):
        raise TypeError("not an object")
    data = {k: row[k] for k in (*FIELDS, *COUNTS) if row.get(k) not in (None, "")}
    nested = row.get("engagement") if isinstance(row.get("engagement"), dict) else {}
    data["engagement"] = {**nested, **{k: data.pop(k) for k in COUNTS if k in data}}
    stamp = data.get("published_at")
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.strip())
            data["published_at"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except ValueError:
            pass  # left as is: Signal's validation reports it with the field name
    key = str(data.get("url") or data.get("title") or "")
    data.setdefault("id", f"file:{hashlib.sha1(key.encode()).hexdigest()[:16]}")
    data.setdefault("source", "file")
    return Signal.model_validate(data)

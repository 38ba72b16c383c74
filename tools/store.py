"""The business store: products, channels, budgets, ledger, campaigns, executions.

One SQLite file (`$LEADBOOST_HOME/enterprise.sqlite`) built and browsed with
sqlite-utils. WAL and a busy timeout let concurrent runs share it; writes that
must be atomic go through `transaction()` (BEGIN IMMEDIATE), and the schema
evolves through numbered migrations recorded in `PRAGMA user_version`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic import TypeAdapter

from state import ChannelEconomics, ProductFacts, Signal

FILENAME = "enterprise.sqlite"
BUSY_TIMEOUT_S = 30


def period_of(moment: datetime) -> str:
    """Budget period (calendar quarter) of a moment: 2026-Q4."""
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


_JSON_TIME = TypeAdapter(datetime)  # the form pydantic writes, as the rows written before had
_SIGNAL_COLUMNS = ("id", "source", "title", "text", "url", "published_at", "author", "engagement", "market", "lang",
                   "fetched_at")
_UPSERT_SIGNAL = (
    f"INSERT INTO signals ({', '.join(_SIGNAL_COLUMNS)}) VALUES ({', '.join('?' * len(_SIGNAL_COLUMNS))}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _SIGNAL_COLUMNS[1:])}"
)


class OverBudget(RuntimeError):
    """Executing would take the period's spend above its budget (e.g. a concurrent run spent it first)."""


class Store:
    """Typed access to the enterprise database; one connection per instance."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        conn.execute("PRAGMA foreign_keys=ON")
        self.db = sqlite_utils.Database(conn)

    @classmethod
    def at_home(cls, home: str | Path) -> Store:
        return cls(Path(home) / FILENAME)

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block that takes the write lock up front (no upgrade deadlocks)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- schema -------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, target: int | None = None) -> int:
        """Apply the migrations above the current version, each in its own transaction."""
        target = len(MIGRATIONS) if target is None else target
        for number in range(self.version + 1, target + 1):
            with self.transaction():
                if self.version >= number:  # another connection applied it while this one waited
                    continue
                MIGRATIONS[number - 1](self.db)
                self.db.execute(f"PRAGMA user_version={number}")
        return self.version

    def ready(self) -> bool:
        return self.version == len(MIGRATIONS) and self.db["products"].count > 0

    # -- reads --------------------------------------------------------------

    def product(self, sku: str) -> ProductFacts | None:
        rows = list(self.db["products"].rows_where("sku = ?", [sku]))
        return ProductFacts(**_pick(rows[0], ProductFacts)) if rows else None

    def products(self) -> list[ProductFacts]:
        return [ProductFacts(**_pick(r, ProductFacts)) for r in self.db["products"].rows_where(order_by="sku")]

    def channels(self) -> list[ChannelEconomics]:
        return [ChannelEconomics(**_pick(r, ChannelEconomics)) for r in self.db["channels"].rows_where(order_by="name")]

    def signals(self, ids: list[str]) -> list[Signal]:
        """The stored signals with these ids, in the order given (screening keeps the first of
        two duplicates), skipping ids the store does not have."""
        wanted, found = list(dict.fromkeys(ids)), {}
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters per statement
            chunk = wanted[start:start + 500]
            cursor = self.db.execute(f"SELECT {', '.join(_SIGNAL_COLUMNS[:-1])} FROM signals WHERE id IN "
                                     f"({', '.join('?' * len(chunk))})", chunk)
            for row in cursor:
                fields = dict(zip(_SIGNAL_COLUMNS, row)) | {"engagement": json.loads(row[7])}
                found[row[0]] = Signal.model_validate(fields)
        return [found[i] for i in wanted if i in found]

    def budget_left(self, period: str) -> float:
        row = self.db.execute(
            "SELECT b.allocated - COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.period = b.period), 0)"
            " FROM budgets b WHERE b.period = ?",
            [period],
        ).fetchone()
        return round(row[0], 2) if row else 0.0

    def headroom(self, period: str) -> float:
        """Budget left in the period less what pending executions (ordered or about to be) hold."""
        pending = self.db.execute(
            "SELECT COALESCE(SUM(e.amount), 0) FROM executions e JOIN campaigns c ON c.id = e.campaign_id"
            " WHERE e.status = 'pending' AND c.period = ?",
            [period],
        ).fetchone()[0]
        return round(self.budget_left(period) - pending, 2)

    def spent(self, period: str | None = None) -> float:
        sql, args = "SELECT COALESCE(SUM(amount), 0) FROM ledger", []
        if period:
            sql, args = sql + " WHERE period = ?", [period]
        return round(self.db.execute(sql, args).fetchone()[0], 2)

    def lessons(self, sku: str | None, limit: int = 3) -> list[str]:
        rows = self.db.execute(
            "SELECT text FROM lessons ORDER BY (sku = ?) DESC, created_at DESC, id DESC LIMIT ?", [sku, limit]
        ).fetchall()
        return [r[0] for r in rows]

    def recent_campaigns(self, limit: int = 5) -> list[dict[str, Any]]:
        return list(self.db["campaigns"].rows_where(order_by="created_at desc", limit=limit))

    def execution(self, idempotency_key: str) -> dict[str, Any] | None:
        rows = list(self.db["executions"].rows_where("idempotency_key = ?", [idempotency_key]))
        return rows[0] if rows else None

    # -- writes -------------------------------------------------------------

    def save_signals(self, signals: list[Signal], fetched_at: datetime) -> None:
        """Full signals, keyed by id, so that state only needs ids and digests. One prepared upsert for
        all rows: the table is ours (migration v1), and sqlite-utils' `upsert_all` re-reads
        the schema on every call, which made this the slowest step before the debate."""
        rows = [
            [s.id, s.source, s.title, s.text, s.url, _JSON_TIME.dump_python(s.published_at, mode="json"), s.author,
             s.engagement.model_dump_json(), s.market, s.lang, fetched_at.isoformat()]
            for s in signals
        ]
        if rows:
            with self.transaction():
                self.db.conn.executemany(_UPSERT_SIGNAL, rows)

    def open_campaign(self, *, campaign_id: str, thread_id: str, sku: str, period: str, record: dict[str, str]) -> None:
        """Create the campaign row (status `executing`) unless it exists already."""
        self.db.execute(
            "INSERT OR IGNORE INTO campaigns (id, thread_id, product_sku, period, brief, verdict, plan, forecast,"
            " status, spend, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'executing', 0, ?)",
            [campaign_id, thread_id, sku, period, record["brief"], record["verdict"], record["plan"],
             record["forecast"], _now()],
        )

    def reserve(self, period: str, intents: list[tuple[str, str, str, float, str]]) -> None:
        """Record execution intents (key, campaign, channel, amount, payload) as `pending`, all at once,
        as a reservation on the period's budget. The check and the writes are one transaction and
        pending intents count as spent, so concurrent runs can never order more than the budget left
        between them. Intents already pending or executed stay as they are; failed ones are retried.
        Raises `OverBudget` (nothing written) when the new intents do not fit."""
        with self.transaction():
            new = [i for i in intents if (row := self.execution(i[0])) is None or row["status"] == "failed"]
            needed, left = round(sum(i[3] for i in new), 2), self.headroom(period)
            if needed > left + 0.005:
                raise OverBudget(f"ordering {needed:,.2f} more would exceed the budget left in {period} "
                                 f"({left:,.2f} after pending orders); nothing was ordered")
            for key, campaign_id, channel, amount, payload in new:
                self.db.execute(
                    "INSERT INTO executions (idempotency_key, campaign_id, channel, amount, payload, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?)"
                    " ON CONFLICT(idempotency_key) DO UPDATE SET status = 'pending'",
                    [key, campaign_id, channel, amount, payload, _now()],
                )

    def begin_execution(self, *, key: str, campaign_id: str, channel: str, amount: float, payload: str) -> None:
        """Record the intent before the platform call (status `pending`)."""
        self.db.execute(
            "INSERT OR IGNORE INTO executions (idempotency_key, campaign_id, channel, amount, payload, status,"
            " created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
            [key, campaign_id, channel, amount, payload, _now()],
        )

    def complete_execution(self, *, key: str, receipt: dict[str, Any], period: str) -> None:
        """Mark the execution done and write its ledger entry: both or neither."""
        with self.transaction():
            row = self.execution(key)
            if row is None or row["status"] == "executed":
                return
            self.db.execute(
                "UPDATE executions SET status = 'executed', receipt_id = ?, receipt = ? WHERE idempotency_key = ?",
                [receipt["receipt_id"], json.dumps(receipt), key],
            )
            self.db.execute(
                "INSERT INTO ledger (idempotency_key, period, campaign_id, channel, amount, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key, period, row["campaign_id"], row["channel"], row["amount"], _now()],
            )

    def fail_execution(self, key: str, error: str) -> None:
        self.db.execute("UPDATE executions SET status = 'failed', receipt = ? WHERE idempotency_key = ?",
                        [json.dumps({"error": error}), key])

    def close_campaign(self, campaign_id: str, status: str, lesson: tuple[str, str | None] | None) -> float:
        """Set the final status and spend; add the campaign's lesson once. Returns the spend."""
        with self.transaction():
            spend = self.db.execute(
                "SELECT ROUND(COALESCE(SUM(amount), 0), 2) FROM ledger WHERE campaign_id = ?", [campaign_id]
            ).fetchone()[0]
            self.db.execute("UPDATE campaigns SET status = ?, spend = ? WHERE id = ?", [status, spend, campaign_id])
            if lesson:
                self.db.execute(
                    "INSERT OR IGNORE INTO lessons (campaign_id, sku, text, created_at) VALUES (?, ?, ?, ?)",
                    [campaign_id, lesson[1], lesson[0], _now()],
                )
        return round(spend, 2)

    def append_ledger(self, *, key: str, period: str, amount: float, channel: str | None = None,
                      campaign_id: str | None = None) -> bool:
        """Append one ledger entry; False when the key was already written (idempotent)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO ledger (idempotency_key, period, campaign_id, channel, amount, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [key, period, campaign_id, channel, amount, _now()],
        )
        return cursor.rowcount == 1


def _pick(row: dict[str, Any], model: type) -> dict[str, Any]:
    return {k: row[k] for k in model.model_fields if k in row}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- migrations ---------------------------------------------------------------


def _v1_initial(db: sqlite_utils.Database) -> None:
    db["products"].create(
        {"sku": str, "name": str, "category": str, "price": float, "unit_cost": float, "stock": int}, pk="sku"
    )
    db["channels"].create(
        {"name": str, "cpm": float, "ctr": float, "cvr": float, "min_spend": float, "saturation": float}, pk="name"
    )
    db["budgets"].create({"period": str, "allocated": float, "currency": str}, pk="period")
    db["campaigns"].create(
        {"id": str, "thread_id": str, "product_sku": str, "period": str, "brief": str, "verdict": str,
         "plan": str, "forecast": str, "status": str, "spend": float, "created_at": str},
        pk="id",
        foreign_keys=[("product_sku", "products", "sku"), ("period", "budgets", "period")],
    )
    db["executions"].create(
        {"idempotency_key": str, "campaign_id": str, "channel": str, "amount": float, "payload": str,
         "receipt_id": str, "receipt": str, "status": str, "created_at": str},
        pk="idempotency_key",
        foreign_keys=[("campaign_id", "campaigns", "id"), ("channel", "channels", "name")],
    )
    db["ledger"].create(
        {"id": int, "idempotency_key": str, "period": str, "campaign_id": str, "channel": str,
         "amount": float, "created_at": str},
        pk="id",
        foreign_keys=[("period", "budgets", "period"), ("campaign_id", "campaigns", "id"),
                      ("channel", "channels", "name")],
    )
    db["ledger"].create_index(["idempotency_key"], unique=True)
    db["ledger"].create_index(["period"])
    db["campaigns"].create_index(["thread_id"])
    db["executions"].create_index(["campaign_id"])
    db["signals"].create(
        {"id": str, "source": str, "title": str, "text": str, "url": str, "published_at": str,
         "author": str, "engagement": str, "market": str, "lang": str, "fetched_at": str},
        pk="id",
    )
    db["signals"].create_index(["published_at"])
    db["lessons"].create(
        {"id": int, "campaign_id": str, "text": str, "created_at": str}, pk="id",
        foreign_keys=[("campaign_id", "campaigns", "id")],
    )
    db["lessons"].create_index(["campaign_id"], unique=True)


def _v2_lessons_by_product(db: sqlite_utils.Database) -> None:
    """Lessons are looked up by product: give them the SKU, filled from their campaign."""
    db["lessons"].add_column("sku", str)
    db.execute("UPDATE lessons SET sku = (SELECT product_sku FROM campaigns c WHERE c.id = lessons.campaign_id)")
    db["lessons"].create_index(["sku", "created_at"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1_initial, _v2_lessons_by_product]

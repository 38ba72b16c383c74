"""The ERP/ads adapter, and exactly-once execution of a plan through it.

`AdsPlatform` is the seam to a real ad platform or ERP. The bundled
`SimulatedAdsPlatform` behaves like one that honours idempotency keys (as
Stripe, Google Ads mutate-with-request-id and most ERPs do): the same key always
returns the same receipt and never books twice. It keeps its orders in its own
SQLite file, standing in for the remote system.

`execute_plan` follows the outbox pattern: record the intent (`pending`), call
the platform with the idempotency key, then mark the execution done and write
the ledger entry in one transaction. A crash at any point leaves either nothing,
a pending intent that the next attempt completes with the same key, or a
finished execution: never a paid order without its ledger entry, never two.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from langsmith import traceable
from state import Campaign, ChannelCopy, Execution, Plan
from tools.store import Store

PLATFORM_FILE = "adsplatform.sqlite"


class PlatformError(Exception):
    """The platform refused or failed an order (retryable by the caller)."""


@dataclass(frozen=True)
class AdOrder:
    idempotency_key: str
    campaign_id: str
    channel: str
    amount: float
    currency: str
    creative: dict[str, str]


class AdsPlatform(Protocol):
    def place_order(self, order: AdOrder) -> dict[str, str | float]:
        """Book an order; the same idempotency key returns the first receipt."""


class SimulatedAdsPlatform:
    """A stand-in ad platform with real idempotency, which can be told to fail."""

    def __init__(self, path: str | Path, fail_channels: frozenset[str] = frozenset()) -> None:
        self.path = Path(path)
        self.fail_channels = fail_channels
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS orders (idempotency_key TEXT PRIMARY KEY, receipt_id TEXT NOT NULL,"
                " campaign_id TEXT, channel TEXT, amount REAL, currency TEXT, creative TEXT, booked_at TEXT)"
            )

    @classmethod
    def at_home(cls, home: str | Path, fail_channels: frozenset[str] = frozenset()) -> SimulatedAdsPlatform:
        return cls(Path(home) / PLATFORM_FILE, fail_channels)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def place_order(self, order: AdOrder) -> dict[str, str | float]:
        if order.channel in self.fail_channels:
            raise PlatformError(f"{order.channel}: the platform refused the order (simulated failure)")
        receipt_id = "rcpt_" + hashlib.sha256(order.idempotency_key.encode()).hexdigest()[:16]
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [order.idempotency_key, receipt_id, order.campaign_id, order.channel, order.amount,
                     order.currency, json.dumps(order.creative), datetime.now(timezone.utc).isoformat()],
                )
                row = conn.execute(
                    "SELECT receipt_id, amount, booked_at FROM orders WHERE idempotency_key = ?",
                    [order.idempotency_key],
                ).fetchone()
        finally:
            conn.close()
        return {"receipt_id": row[0], "amount": row[1], "booked_at": row[2], "channel": order.channel}

    def order_count(self) -> int:
        conn = self._connect()
        try:
            return conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        finally:
            conn.close()


def campaign_id_for(thread_id: str, sku: str, channels: dict[str, float]) -> str:
    """Same thread and same plan: same campaign. A changed plan (a fork) is a new campaign."""
    canon = json.dumps({"thread": thread_id, "sku": sku, "channels": sorted(channels.items())})
    return "cmp_" + hashlib.sha256(canon.encode()).hexdigest()[:12]


def idempotency_key(thread_id: str, campaign_id: str, channel: str) -> str:
    return hashlib.sha256(f"{thread_id}|{campaign_id}|{channel}".encode()).hexdigest()[:32]


@traceable(run_type="tool", name="execute_plan")
def execute_plan(
    store: Store,
    platform: AdsPlatform,
    *,
    thread_id: str,
    plan: Plan,
    copy: list[ChannelCopy],
    currency: str,
    period: str,
    record: dict[str, str],
) -> Campaign:
    """Execute every channel of the plan exactly once; safe to call again after any crash."""
    store.open_campaign(campaign_id=plan.campaign_id, thread_id=thread_id, sku=plan.product_sku,
                        period=period, record=record)
    creatives = {c.channel: c.model_dump(exclude={"channel"}) for c in copy}
    # Every order of the plan is reserved on the period's budget before the first is placed:
    # policy read the budget left before the debate ended, and a concurrent run may have spent it.
    intents = [AdOrder(idempotency_key(thread_id, plan.campaign_id, ch), plan.campaign_id, ch, amount, currency,
                       creatives.get(ch, {})) for ch, amount in sorted(plan.channels.items())]
    store.reserve(period, [(o.idempotency_key, o.campaign_id, o.channel, o.amount, json.dumps(o.__dict__))
                           for o in intents])
    executions = []
    for channel, amount in sorted(plan.channels.items()):
        key = idempotency_key(thread_id, plan.campaign_id, channel)
        done = store.execution(key)
        if done is None or done["status"] != "executed":
            order = AdOrder(key, plan.campaign_id, channel, amount, currency, creatives.get(channel, {}))
            store.begin_execution(key=key, campaign_id=plan.campaign_id, channel=channel, amount=amount,
                                  payload=json.dumps(order.__dict__))
            try:
                receipt = platform.place_order(order)
            except PlatformError as exc:
                store.fail_execution(key, str(exc))
                executions.append(Execution(channel=channel, amount=amount, idempotency_key=key,
                                            receipt_id="", status="failed"))
                continue
            store.complete_execution(key=key, receipt=receipt, period=period)
            done = store.execution(key)
        executions.append(Execution(channel=channel, amount=done["amount"], idempotency_key=key,
                                    receipt_id=done["receipt_id"] or "", status="executed"))
    spend = round(sum(e.amount for e in executions if e.status == "executed"), 2)
    status = "executed" if all(e.status == "executed" for e in executions) else "failed"
    return Campaign(id=plan.campaign_id, product_sku=plan.product_sku, spend=spend,
                    executions=executions, status=status)

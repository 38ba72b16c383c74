"""The enterprise store: idempotent init, migrations that keep data, concurrent ledger
writers, budget arithmetic and foreign keys. Every SQLite file lives under tmp_path."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tools.seed import CHANNELS, PAST_CAMPAIGNS, PRODUCTS, QUARTERLY_BUDGET, open_store, seed
from tools.store import MIGRATIONS, Store, period_of

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
PERIOD = period_of(NOW)  # 2026-Q4
PAST = "2026-Q3"  # the seeded past campaigns' quarter

TABLES = ("products", "channels", "budgets", "campaigns", "ledger", "lessons", "executions", "signals")

WRITERS = 20
ROWS_PER_WRITER = 50
SHARED_KEYS = 10  # keys every writer tries to write: each must land once


def counts(store: Store) -> dict[str, int]:
    return {t: store.db[t].count for t in TABLES}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "enterprise.sqlite"


@pytest.fixture
def seeded(db_path: Path) -> Store:
    store = Store(db_path)
    seed(store, NOW)
    yield store
    store.close()


# -- init ----------------------------------------------------------------------


def test_seed_twice_leaves_the_same_rows(db_path: Path) -> None:
    with Store(db_path) as store:
        assert seed(store, NOW) is True
        first = counts(store)
        assert seed(store, NOW) is False
        assert counts(store) == first
    with Store(db_path) as again:  # a new connection, as a second process would open it
        assert seed(again, NOW) is False
        assert counts(again) == first
        assert again.version == len(MIGRATIONS)
    assert first["products"] == len(PRODUCTS)
    assert first["channels"] == len(CHANNELS)
    assert first["ledger"] == first["campaigns"] == first["lessons"] == len(PAST_CAMPAIGNS)
    assert first["budgets"] == 5  # one quarter back, this one, three ahead


def test_open_store_seeds_once(tmp_path: Path) -> None:
    with open_store(str(tmp_path), NOW) as store:
        assert store.ready()
        first = counts(store)
    with open_store(str(tmp_path), NOW) as store:
        assert counts(store) == first


def test_migrate_is_idempotent(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.version == 0
        assert store.migrate() == len(MIGRATIONS)
        assert store.migrate() == len(MIGRATIONS)
        assert "sku" in store.db["lessons"].columns_dict


# -- migrations ----------------------------------------------------------------


def test_v1_store_migrates_to_latest_keeping_its_data(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.migrate(target=1) == 1
        assert "sku" not in store.db["lessons"].columns_dict
        with store.transaction():
            store.db["products"].insert_all([
                {"sku": "TRAIL-X", "name": "Trail Sneaker X", "category": "shoe", "price": 129.0,
                 "unit_cost": 52.0, "stock": 10},
                {"sku": "URBAN-R", "name": "Urban Runner", "category": "shoe", "price": 99.0,
                 "unit_cost": 41.0, "stock": 5},
            ])
            store.db["channels"].insert({"name": "search", "cpm": 9.0, "ctr": 0.03, "cvr": 0.012,
                                         "min_spend": 300.0, "saturation": 6000.0})
            store.db["budgets"].insert({"period": PAST, "allocated": 1000.0, "currency": "EUR"})
            for cid, sku in (("cmp_a", "TRAIL-X"), ("cmp_b", "URBAN-R"), ("cmp_c", "TRAIL-X")):
                store.db["campaigns"].insert({
                    "id": cid, "thread_id": "old", "product_sku": sku, "period": PAST, "brief": "{}",
                    "verdict": "{}", "plan": "{}", "forecast": "{}", "status": "executed", "spend": 100.0,
                    "created_at": "2026-08-01",
                })
            store.db["ledger"].insert({"idempotency_key": "k1", "period": PAST, "campaign_id": "cmp_a",
                                       "channel": "search", "amount": 100.0, "created_at": "2026-08-01"})
            store.db["lessons"].insert_all([
                {"campaign_id": "cmp_a", "text": "lesson a", "created_at": "2026-08-01"},
                {"campaign_id": "cmp_b", "text": "lesson b", "created_at": "2026-08-02"},
            ])
        before = {t: list(store.db[t].rows) for t in ("products", "campaigns", "ledger", "budgets")}

    with Store(db_path) as store:  # a later release opens the old file
        assert store.version == 1
        assert store.migrate() == len(MIGRATIONS)
        assert store.version == len(MIGRATIONS)
        for table, rows in before.items():
            assert list(store.db[table].rows) == rows, table
        lessons = {r["campaign_id"]: r for r in store.db["lessons"].rows}
        assert {k: (v["text"], v["sku"]) for k, v in lessons.items()} == {
            "cmp_a": ("lesson a", "TRAIL-X"), "cmp_b": ("lesson b", "URBAN-R"),
        }
        # the new column is used: lessons of the asked product come first
        assert store.lessons("URBAN-R")[0] == "lesson b"
        assert store.lessons("TRAIL-X")[0] == "lesson a"
        assert store.budget_left(PAST) == 900.0


# -- concurrent writers --------------------------------------------------------


def _write_ledger(path: str, writer: int, start: threading.Barrier | None = None) -> tuple[int, int, list[str]]:
    """One writer: its own rows, then the shared keys. Returns (written, duplicates, errors)."""
    written, duplicates, errors = 0, 0, []
    store = Store(path)
    try:
        if start is not None:
            start.wait()
        keys = [f"w{writer}:{i}" for i in range(ROWS_PER_WRITER)]
        keys += [f"shared:{i}" for i in range(SHARED_KEYS)]
        for key in keys:
            try:
                if store.append_ledger(key=key, period=PERIOD, amount=1.25, channel="search"):
                    written += 1
                else:
                    duplicates += 1
            except Exception as exc:  # noqa: BLE001 - counted, the test asserts there are none
                errors.append(f"{key}: {exc!r}")
    finally:
        store.close()
    return written, duplicates, errors


def _assert_ledger_after_writers(store: Store, results: list[tuple[int, int, list[str]]]) -> None:
    errors = [e for _, _, errs in results for e in errs]
    written = sum(w for w, _, _ in results)
    duplicates = sum(d for _, d, _ in results)
    expected = WRITERS * ROWS_PER_WRITER + SHARED_KEYS
    print(f"\n{WRITERS} writers, {WRITERS * (ROWS_PER_WRITER + SHARED_KEYS)} attempts: "
          f"{written} rows written, {duplicates} duplicates ignored, {len(errors)} errors")
    assert errors == []
    assert written == expected
    assert duplicates == (WRITERS - 1) * SHARED_KEYS
    rows = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM ledger WHERE period = ?",
                            [PERIOD]).fetchone()
    assert rows == (expected, expected)
    for i in range(SHARED_KEYS):
        assert store.db.execute("SELECT COUNT(*) FROM ledger WHERE idempotency_key = ?",
                                [f"shared:{i}"]).fetchone()[0] == 1
    assert store.spent(PERIOD) == round(expected * 1.25, 2)
    assert store.budget_left(PERIOD) == round(QUARTERLY_BUDGET - expected * 1.25, 2)


def test_twenty_thread_writers_lose_nothing(seeded: Store, db_path: Path) -> None:
    start = threading.Barrier(WRITERS)
    results: list = [None] * WRITERS

    def run(n: int) -> None:
        results[n] = _write_ledger(str(db_path), n, start)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(not t.is_alive() for t in threads)
    assert all(r is not None for r in results)
    _assert_ledger_after_writers(seeded, results)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_twenty_process_writers_lose_nothing(seeded: Store, db_path: Path) -> None:
    # fork, not spawn: twenty interpreters re-importing the project would dominate the run.
    # Each child opens its own Store (its own connection); the parent's is never used there.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(WRITERS) as pool:
        results = pool.starmap(_write_ledger, [(str(db_path), n) for n in range(WRITERS)], chunksize=1)
    _assert_ledger_after_writers(seeded, results)


def test_append_ledger_is_idempotent(seeded: Store) -> None:
    assert seeded.append_ledger(key="k", period=PERIOD, amount=100.0) is True
    assert seeded.append_ledger(key="k", period=PERIOD, amount=100.0) is False
    assert seeded.append_ledger(key="k", period=PERIOD, amount=999.0) is False  # the first write wins
    assert seeded.spent(PERIOD) == 100.0


# -- budget --------------------------------------------------------------------


def test_budget_left_is_allocated_minus_ledger(seeded: Store) -> None:
    past_spend = sum(c[3] for c in PAST_CAMPAIGNS)
    assert seeded.budget_left(PAST) == QUARTERLY_BUDGET - past_spend
    assert seeded.budget_left(PERIOD) == QUARTERLY_BUDGET
    seeded.append_ledger(key="a", period=PERIOD, amount=1234.56, channel="search")
    seeded.append_ledger(key="b", period=PERIOD, amount=765.44, channel="email")
    seeded.append_ledger(key="c", period="2027-Q1", amount=10_000.0)  # another period: not counted
    assert seeded.budget_left(PERIOD) == QUARTERLY_BUDGET - 2000.0
    assert seeded.spent(PERIOD) == 2000.0
    assert seeded.budget_left("2027-Q1") == QUARTERLY_BUDGET - 10_000.0
    assert seeded.budget_left(PAST) == QUARTERLY_BUDGET - past_spend
    assert seeded.budget_left("1999-Q1") == 0.0  # no budget row: nothing to spend


def test_budget_left_can_go_negative_only_through_the_ledger(seeded: Store) -> None:
    seeded.append_ledger(key="big", period=PERIOD, amount=QUARTERLY_BUDGET + 500.0)
    assert seeded.budget_left(PERIOD) == -500.0


# -- foreign keys --------------------------------------------------------------


def test_ledger_rejects_an_unknown_period(seeded: Store) -> None:
    before = seeded.db["ledger"].count
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        seeded.append_ledger(key="bad-period", period="1999-Q1", amount=10.0)
    assert seeded.db["ledger"].count == before


def test_ledger_rejects_an_unknown_channel_and_campaign(seeded: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        seeded.append_ledger(key="bad-channel", period=PERIOD, amount=10.0, channel="radio")
    with pytest.raises(sqlite3.IntegrityError):
        seeded.append_ledger(key="bad-campaign", period=PERIOD, amount=10.0, campaign_id="cmp_nope")
    assert seeded.execution("bad-channel") is None
    assert seeded.db.execute("SELECT COUNT(*) FROM ledger WHERE idempotency_key LIKE 'bad-%'").fetchone()[0] == 0


def test_foreign_keys_are_on_for_every_connection(db_path: Path, seeded: Store) -> None:
    with Store(db_path) as other:
        assert other.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert other.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_campaign_with_unknown_product_fails(seeded: Store) -> None:
    record = {"brief": "{}", "verdict": "{}", "plan": "{}", "forecast": "{}"}
    with pytest.raises(sqlite3.IntegrityError):
        seeded.open_campaign(campaign_id="cmp_x", thread_id="t", sku="NOPE-1", period=PERIOD, record=record)


def test_complete_execution_writes_status_and_ledger_together(seeded: Store) -> None:
    record = {"brief": "{}", "verdict": "{}", "plan": "{}", "forecast": "{}"}
    seeded.open_campaign(campaign_id="cmp_t", thread_id="t", sku="TRAIL-X", period=PERIOD, record=record)
    seeded.begin_execution(key="e1", campaign_id="cmp_t", channel="search", amount=500.0, payload="{}")
    # the ledger write fails (unknown period): the execution must stay pending, not half-done
    with pytest.raises(sqlite3.IntegrityError):
        seeded.complete_execution(key="e1", receipt={"receipt_id": "r1"}, period="1999-Q1")
    assert seeded.execution("e1")["status"] == "pending"
    assert seeded.execution("e1")["receipt_id"] is None
    seeded.complete_execution(key="e1", receipt={"receipt_id": "r1"}, period=PERIOD)
    seeded.complete_execution(key="e1", receipt={"receipt_id": "r2"}, period=PERIOD)  # again: no-op
    assert seeded.execution("e1")["status"] == "executed"
    assert seeded.execution("e1")["receipt_id"] == "r1"
    assert seeded.spent(PERIOD) == 500.0
    assert seeded.close_campaign("cmp_t", "executed", ("lesson", "TRAIL-X")) == 500.0
    assert seeded.close_campaign("cmp_t", "executed", ("lesson", "TRAIL-X")) == 500.0
    assert seeded.db.execute("SELECT COUNT(*) FROM lessons WHERE campaign_id = 'cmp_t'").fetchone()[0] == 1


def test_signals_read_back_as_saved_in_the_order_asked(seeded: Store) -> None:
    """Scout stores what it fetched and passes ids; scout_merge must get the same signals back,
    in fetch order (screening keeps the first of two duplicates), and a re-fetch updates a row."""
    from state import Engagement, Signal

    now = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    fetched = [Signal(id=f"news:{i}", source="newsapi", title=f"Trail story {i}", text="Grip " * i,
                      url=f"https://news.example/{i}", published_at=now, author=None if i % 2 else "Ana",
                      engagement=Engagement(likes=i, shares=2 * i), market="ES" if i % 2 else None, lang="es")
               for i in range(3)]
    seeded.save_signals(fetched, now)
    assert seeded.signals(["news:2", "news:0", "unknown", "news:1", "news:2"]) == [fetched[2], fetched[0], fetched[1]]
    again = fetched[1].model_copy(update={"engagement": Engagement(likes=99)})
    seeded.save_signals([again], now)
    assert seeded.signals(["news:1"]) == [again]
    assert seeded.db["signals"].count == 3

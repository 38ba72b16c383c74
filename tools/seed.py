"""The demo company: what `leadboost db init` loads into a new store.

An outdoor and running gear brand selling in Europe. Numbers are plausible
rather than real; the channel rates are what the forecast runs on.
"""

from __future__ import annotations

import json
from datetime import datetime

from tools.store import Store

PRODUCTS = [
    # sku, name, category, price, unit_cost, stock
    ("TRAIL-X", "Trail Sneaker X", "trail running shoe sneaker", 129.0, 52.0, 1800),
    ("TRAIL-XW", "Trail Sneaker X Waterproof", "trail running shoe sneaker waterproof", 149.0, 63.0, 650),
    ("URBAN-R", "Urban Runner", "road running shoe sneaker", 99.0, 41.0, 2400),
    ("SUMMIT-B", "Summit Hiking Boot", "hiking boot", 179.0, 78.0, 420),
    ("AERO-J", "Aero Running Jacket", "running jacket apparel", 89.0, 31.0, 900),
    ("HYDRO-V", "Hydro Vest 5L", "trail running hydration vest", 79.0, 27.0, 300),
    ("MERINO-L", "Merino Base Layer", "base layer apparel", 69.0, 24.0, 1200),
    ("TREK-P", "Trek Poles Carbon", "trekking poles", 119.0, 46.0, 150),
    ("TENT-2P", "Ultralight Tent 2P", "tent camping", 389.0, 170.0, 80),
    ("LAMP-900", "Headlamp 900", "headlamp trail running", 59.0, 19.0, 2000),
    ("REC-S", "Recovery Sandal", "recovery sandal", 49.0, 15.0, 1500),
    ("KIDS-T", "Kids Trail Shoe", "kids trail shoe", 59.0, 23.0, 0),
]

CHANNELS = [
    # name, cpm (EUR per 1,000 impressions), ctr, cvr, min_spend, saturation (EUR)
    ("search", 9.0, 0.030, 0.012, 300.0, 6000.0),
    ("social", 6.5, 0.008, 0.010, 500.0, 8000.0),
    ("video", 12.0, 0.006, 0.012, 1500.0, 12000.0),
    ("display", 3.0, 0.003, 0.006, 400.0, 5000.0),
    ("email", 4.0, 0.020, 0.025, 100.0, 800.0),
]

QUARTERLY_BUDGET = 60_000.0

PAST_CAMPAIGNS = [
    # id, sku, period offset (quarters back), spend, lesson
    ("cmp_seed_q1", "TRAIL-X", "search", 4200.0,
     "Search on TRAIL-X in ES paid back 2.1x within six weeks; it saturated above ~5,000 EUR."),
    ("cmp_seed_q2", "URBAN-R", "video", 6000.0,
     "Video for URBAN-R reached 1.4M people but returned 0.4x on margin: awareness, not sales."),
    ("cmp_seed_q3", "TRAIL-X", "email", 600.0,
     "Email to the running club list sold out the first 300 TRAIL-X pairs in four days."),
]


def seed(store: Store, now: datetime) -> bool:
    """Load the demo company into an empty store. Idempotent: False when already seeded."""
    store.migrate()
    periods = _quarters(now, back=1, ahead=3)
    with store.transaction():  # checked inside the write lock: concurrent first runs seed once
        if store.db["products"].count:
            return False
        store.db["products"].insert_all(
            dict(zip(("sku", "name", "category", "price", "unit_cost", "stock"), p)) for p in PRODUCTS
        )
        store.db["channels"].insert_all(
            dict(zip(("name", "cpm", "ctr", "cvr", "min_spend", "saturation"), c)) for c in CHANNELS
        )
        store.db["budgets"].insert_all(
            {"period": p, "allocated": QUARTERLY_BUDGET, "currency": "EUR"} for p in periods
        )
        past = periods[0]
        for cid, sku, channel, spend, lesson in PAST_CAMPAIGNS:
            store.db["campaigns"].insert({
                "id": cid, "thread_id": "seed", "product_sku": sku, "period": past,
                "brief": json.dumps({"goal": f"{channel} campaign for {sku}"}), "verdict": "{}",
                "plan": json.dumps({"channels": {channel: spend}}), "forecast": "{}",
                "status": "executed", "spend": spend, "created_at": f"{past}",
            })
            store.db["ledger"].insert({
                "idempotency_key": f"seed:{cid}", "period": past, "campaign_id": cid, "channel": channel,
                "amount": spend, "created_at": past,
            })
            store.db["lessons"].insert({"campaign_id": cid, "sku": sku, "text": lesson, "created_at": past})
    return True


def _quarters(now: datetime, back: int, ahead: int) -> list[str]:
    index = now.year * 4 + (now.month - 1) // 3
    return [f"{i // 4}-Q{i % 4 + 1}" for i in range(index - back, index + ahead + 1)]



def open_store(home: str, now: datetime) -> Store:
    """The store under `home`, created and seeded with the demo company on first use."""
    store = Store.at_home(home)
    if not store.ready():
        seed(store, now)
    return store

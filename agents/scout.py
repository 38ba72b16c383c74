"""Scout: fetch every source concurrently, then validate what came back.

Two nodes, so that fetching (I/O, may fail per source) and validation (pure,
deterministic) are checkpointed apart: `scout` and `scout_merge`. What was fetched
goes to the store at once and only its ids pass through the state: the checkpoints
would otherwise carry every fetched text twice (as the step's write and its value).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime

from agents.llm import provider_label
from state import Brief, Context, RadarState, ScoutReport, clock
from tools.seed import open_store
from tools.signals import infer_market, screen, terms
from tools.sources import Query, Source, build_sources, default_source_names, fetch_all, new_client

SourcesFactory = Callable[[httpx.AsyncClient, datetime, Context], list[Source]]


def configured_sources(client: httpx.AsyncClient, now: datetime, context: Context) -> list[Source]:
    """The sources named in the context, or every configured one (`sample` when none is)."""
    names = context.source_names or default_source_names(client, now)
    return build_sources(names, client, now)


def query_for(brief: Brief, now: datetime, recency_days: int) -> Query:
    """Search APIs match every word: send the keywords, or the goal's content words."""
    if brief.keywords:
        words = " ".join(brief.keywords)
    else:
        wanted = terms(brief.goal)
        words = " ".join(dict.fromkeys(w for w in re.findall(r"\w+", brief.goal) if terms(w) & wanted))
    return Query(text=words[:200], since=now - timedelta(days=recency_days), limit=50, market=brief.market)


def create_scout(sources: SourcesFactory = configured_sources, llm: BaseChatModel | None = None):
    """Node factory: `sources` builds the run's sources on the run's shared client; `llm`
    only names the provider (Scout is the first node, so it stamps who will decide)."""

    async def scout(state: RadarState, runtime: Runtime[Context]) -> dict:
        context, brief = runtime.context, state["brief"]
        now = clock(context)
        async with new_client() as client:
            fetched = await fetch_all(sources(client, now, context), query_for(brief, now, context.recency_days))
        await asyncio.to_thread(_keep, context.home, now, fetched.signals)  # SQLite off the event loop
        return {
            "provider": provider_label(context, llm),
            "fetched": [s.id for s in fetched.signals],
            "source_errors": fetched.errors,
            "scout_report": ScoutReport(sources=fetched.runs, rejected_rows=fetched.rejected_rows),
        }

    return scout


def _keep(home: str, now: datetime, signals: list) -> None:
    with open_store(home, now) as store:
        store.save_signals(signals, now)


def scout_merge(state: RadarState, runtime: Runtime[Context]) -> dict:
    """Validate, dedupe, rank and quarantine the fetched signals (read back from the store by
    id); the kept ones go on as digests."""
    context, brief = runtime.context, state["brief"]
    now = clock(context)
    with open_store(context.home, now) as store:
        fetched = store.signals(state.get("fetched", []))
    screened = screen(
        fetched,
        brief_terms=brief_terms(brief),
        market=brief.market or infer_market(brief.goal),
        now=now,
        recency_days=context.recency_days,
        top_k=context.top_k,
    )
    report = state.get("scout_report", ScoutReport()).model_copy(
        update={"kept": len(screened.kept), "dropped": screened.dropped, "quarantined": screened.quarantined}
    )
    return {"fetched": None, "signals": screened.kept, "scout_report": report}


def brief_terms(brief: Brief) -> set[str]:
    return terms(" ".join([brief.goal, *brief.keywords]))

"""Source registry: which sources exist, which are configured, fetching them all.

A vendor registry in the TradingAgents manner: each source raises typed
`SourceFailure`s, and `fetch_all` records a failing source and goes on with the
others. Sources run concurrently on one shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from langsmith import traceable
from state import Signal, SourceError, SourceRun
from tools.sources.base import (
    Query,
    Source,
    SourceBadResponse,
    SourceFailure,
    SourceNotConfigured,
    SourceRateLimited,
    SourceUnavailable,
    new_client,
)
from tools.sources.file import FileSource
from tools.sources.hackernews import HackerNewsSource
from tools.sources.newsapi import NewsApiSource
from tools.sources.rss import RssSource
from tools.sources.sample import SampleSource
from tools.sources.twitter import TwitterSource

__all__ = [
    "Query", "Source", "SourceFailure", "SourceNotConfigured", "SourceRateLimited",
    "SourceUnavailable", "SourceBadResponse", "SOURCE_NAMES", "ScoutFetch",
    "build_sources", "default_source_names", "fetch_all", "new_client",
]

#: Every source RADAR knows, in report order.
SOURCE_NAMES = ("newsapi", "twitter", "hackernews", "rss", "file", "sample")

#: Sources that run by default when their key/setting is present.
_KEYED = ("newsapi", "twitter", "rss", "file")


def build_sources(
    names: list[str], client: httpx.AsyncClient, now: datetime, env: Mapping[str, str] | None = None
) -> list[Source]:
    """Instantiate the named sources; an unknown name is a clear error."""
    env = os.environ if env is None else env
    factories = {
        "newsapi": lambda: NewsApiSource(client, env),
        "twitter": lambda: TwitterSource(client, env),
        "hackernews": lambda: HackerNewsSource(client, env),
        "rss": lambda: RssSource(client, env),
        "file": lambda: FileSource(env),
        "sample": lambda: SampleSource(now),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"sources: unknown source {unknown[0]!r} (known: {', '.join(SOURCE_NAMES)})")
    return [factories[n]() for n in names]


def default_source_names(client: httpx.AsyncClient, now: datetime, env: Mapping[str, str] | None = None) -> list[str]:
    """Every keyed source that is configured, or `sample` when none is."""
    configured = [s.name for s in build_sources(list(_KEYED), client, now, env) if s.configured]
    return configured or ["sample"]


@dataclass
class ScoutFetch:
    """Everything the sources returned, and how each one fared."""

    signals: list[Signal] = field(default_factory=list)
    runs: list[SourceRun] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    rejected_rows: list[str] = field(default_factory=list)


@traceable(run_type="tool", name="fetch_sources")
async def fetch_all(sources: list[Source], query: Query) -> ScoutFetch:
    """Fetch every source concurrently; a failing source is recorded, not fatal."""
    results = await asyncio.gather(*(_fetch_one(s, query) for s in sources))
    out = ScoutFetch()
    for source, (signals, error) in zip(sources, results):
        out.signals.extend(signals)
        out.runs.append(SourceRun(name=source.name, fetched=len(signals), error=error and error.message))
        if error:
            out.errors.append(error)
        elif getattr(source, "feed_errors", None):  # some feeds of a source failed, the rest were read
            out.errors += [SourceError(source=source.name, kind="unavailable", message=redact(m))
                           for m in source.feed_errors]
        out.rejected_rows.extend(getattr(source, "rejected_rows", []))
    return out


async def _fetch_one(source: Source, query: Query) -> tuple[list[Signal], SourceError | None]:
    if not source.configured:
        return [], SourceError(source=source.name, kind="not_configured", message="not configured")
    try:
        return await source.fetch(query), None
    except SourceFailure as exc:
        return [], SourceError(source=source.name, kind=exc.kind, message=redact(exc.message))
    except Exception as exc:  # a bug in one source must not sink the others; it is reported, not hidden
        return [], SourceError(source=source.name, kind="bad_response", message=redact(f"{type(exc).__name__}: {exc}"))


#: Settings whose values are credentials (NEWS_API_KEY, TWITTER_BEARER_TOKEN, ...).
_SECRET_SETTING = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.I)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` without the value of any credential setting: an upstream error may quote the key it was
    sent, and source errors go to state, checkpoints and reports."""
    env = os.environ if env is None else env
    for name, value in env.items():
        if _SECRET_SETTING.search(name) and len(value.strip()) >= 8:
            text = text.replace(value.strip(), "[redacted]")
    return text

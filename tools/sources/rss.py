"""RSS/Atom feeds: trade press, brand blogs and Google News searches, without a key.

Feeds are fetched concurrently with the shared retry policy and parsed by
feedparser. One broken feed must not hide the others, so a feed's failure only
fails the source when every feed failed (the partial failures stay in
`feed_errors`). `{query}` in a feed URL becomes the url-encoded query text.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus

import feedparser
import httpx

from state import Signal
from tools.sources.base import (
    HttpSource, Query, SourceBadResponse, SourceFailure, SourceNotConfigured, SourceUnavailable, get, setting,
)

_TAG = re.compile(r"<[^>]*>")
#: Bozo reasons that do not make a feed unreadable (servers often send feeds as text/html).
_BENIGN = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


def strip_html(value: str | None) -> str:
    """The text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", value or "")).split())


class RssSource(HttpSource):
    name = "rss"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feeds = [u.strip() for u in setting(self.env, "LEADBOOST_RSS_FEEDS").split(",") if u.strip()]
        self.feed_errors: list[str] = []

    @property
    def configured(self) -> bool:
        return bool(self.feeds)

    async def fetch(self, query: Query) -> list[Signal]:
        if not self.configured:
            raise SourceNotConfigured(self.name, "set LEADBOOST_RSS_FEEDS (comma-separated feed URLs)")
        urls = [u.replace("{query}", quote_plus(query.text)) for u in self.feeds]
        results = await asyncio.gather(*(self._feed(u) for u in urls))
        failures = [r for r in results if isinstance(r, SourceFailure)]
        self.feed_errors = [f.message for f in failures]
        if len(failures) == len(results):
            kinds = {type(f) for f in failures}
            cls = kinds.pop() if len(kinds) == 1 else SourceUnavailable
            raise cls(self.name, f"every feed failed: {'; '.join(self.feed_errors)}")
        fresh = {s.id: s for r in results if isinstance(r, list) for s in r if s.published_at >= query.since}
        return sorted(fresh.values(), key=lambda s: s.published_at, reverse=True)[: query.limit]

    async def _feed(self, url: str) -> list[Signal] | SourceFailure:
        try:
            response = await get(self.client, self.name, url, **self.http)
        except SourceFailure as exc:
            return type(exc)(self.name, f"{url}: {exc.message}")
        except httpx.InvalidURL as exc:
            return SourceBadResponse(self.name, f"{url}: invalid URL ({exc})")
        headers = {"content-type": response.headers.get("content-type", ""), "content-location": str(response.url)}
        # BytesIO, not bytes: feedparser treats a bytes argument as a possible local file name.
        parsed = feedparser.parse(io.BytesIO(response.content), response_headers=headers)
        broken = parsed.bozo and not isinstance(parsed.get("bozo_exception"), _BENIGN)
        if not parsed.entries and (broken or not parsed.version):
            reason = parsed.get("bozo_exception") or "no RSS or Atom document"
            return SourceBadResponse(self.name, f"{url}: not a feed ({reason})")
        lang = (parsed.feed.get("language") or "")[:2].lower() or None
        return [s for e in parsed.entries if (s := self._signal(e, lang)) is not None]

    def _signal(self, entry: Any, lang: str | None) -> Signal | None:
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        title = strip_html(entry.get("title"))
        if not stamp or not title:
            return None
        key = entry.get("id") or entry.get("link") or title
        return Signal(
            id=f"rss:{hashlib.sha1(key.encode()).hexdigest()[:16]}",
            source=self.name,
            title=title,
            text=strip_html(entry.get("summary")),
            url=entry.get("link"),
            published_at=datetime(*stamp[:6], tzinfo=timezone.utc),
            author=entry.get("author"),
            lang=lang,
        )

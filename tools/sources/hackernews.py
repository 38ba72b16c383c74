"""Hacker News through the Algolia search API: free, keyless, and good on tech-adjacent topics.

Needs no key, so it always counts as configured; it is not in the default set
because most marketing briefs are not what Hacker News talks about.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


from state import Engagement, Signal
from tools.sources.base import HttpSource, Query, SourceBadResponse, get_json
from tools.sources.rss import strip_html

DEFAULT_BASE_URL = "https://hn.algolia.com"
ITEM_URL = "https://news.ycombinator.com/item?id={}"


class HackerNewsSource(HttpSource):
    base_url_env = "HN_API_BASE_URL"
    default_base_url = DEFAULT_BASE_URL
    name = "hackernews"
    configured = True
    page_size = 100
    max_pages = 5

    async def fetch(self, query: Query) -> list[Signal]:
        params: dict[str, Any] = {
            "query": query.text[:500],
            "tags": "story",
            "numericFilters": f"created_at_i>{int(query.since.timestamp())}",
            "hitsPerPage": max(1, min(query.limit, self.page_size)),
        }
        signals: list[Signal] = []
        for page in range(self.max_pages):
            body = await get_json(
                self.client, self.name, f"{self.base_url}/api/v1/search_by_date",
                params={**params, "page": page}, **self.http,
            )
            if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
                raise SourceBadResponse(self.name, "response has no 'hits' list")
            signals += [s for hit in body["hits"] if (s := self._signal(hit)) is not None]
            if len(signals) >= query.limit or page + 1 >= int(body.get("nbPages") or 0):
                break
        return signals[: query.limit]

    def _signal(self, hit: dict) -> Signal | None:
        try:
            item = hit["objectID"]
            title = hit.get("title") or hit.get("story_title")
            if not title:
                return None
            return Signal(
                id=f"hackernews:{item}",
                source=self.name,
                title=title,
                text=strip_html(hit.get("story_text") or hit.get("comment_text")),
                url=hit.get("url") or hit.get("story_url") or ITEM_URL.format(item),
                published_at=datetime.fromtimestamp(hit["created_at_i"], timezone.utc),
                author=hit.get("author"),
                engagement=Engagement(likes=hit.get("points") or 0, comments=hit.get("num_comments") or 0),
            )
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError, OSError):
            return None

"""NewsAPI.org `/v2/everything`: what the press is writing about the brief's topic.

News is the slow, credible signal (launches, price cuts, supply chain). The key
goes in the `X-Api-Key` header, never in the URL, so it stays out of logs.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timezone
from typing import Any


from state import Signal
from tools.sources.base import HttpSource, Query, SourceBadResponse, SourceNotConfigured, get_json, setting

DEFAULT_BASE_URL = "https://newsapi.org"

#: Market (ISO country) -> language code, for sources that filter by language.
#: Only unambiguous countries; NewsAPI supports ar de en es fr he it nl no pt ru sv zh.
MARKET_LANG = {
    "ES": "es", "MX": "es", "AR": "es", "CO": "es", "CL": "es", "PE": "es",
    "FR": "fr", "DE": "de", "AT": "de", "IT": "it", "PT": "pt", "BR": "pt",
    "NL": "nl", "NO": "no", "SE": "sv", "US": "en", "GB": "en", "IE": "en", "AU": "en",
}
_KEY_CODES = {"apiKeyInvalid", "apiKeyMissing", "apiKeyDisabled", "apiKeyExhausted"}
_TRUNCATION = re.compile(r"\s*\[\+\d+ chars\]$")


def language_for(market: str | None) -> str | None:
    return MARKET_LANG.get((market or "").upper())


class NewsApiSource(HttpSource):
    base_url_env = "NEWS_API_BASE_URL"
    default_base_url = DEFAULT_BASE_URL
    name = "newsapi"
    page_size = 100
    max_pages = 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = setting(self.env, "NEWS_API_KEY")

    @property
    def configured(self) -> bool:
        return bool(self.key)

    async def fetch(self, query: Query) -> list[Signal]:
        if not self.configured:
            raise SourceNotConfigured(self.name, "set NEWS_API_KEY (https://newsapi.org/register)")
        size = max(1, min(query.limit, self.page_size))
        params: dict[str, Any] = {
            "q": query.text[:500],
            "from": query.since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "sortBy": "publishedAt",
            "pageSize": size,
        }
        lang = language_for(query.market)
        if lang:
            params["language"] = lang
        signals: list[Signal] = []
        for page in range(1, self.max_pages + 1):
            try:
                body = await get_json(
                    self.client, self.name, f"{self.base_url}/v2/everything",
                    params={**params, "page": page}, headers={"X-Api-Key": self.key}, **self.http,
                )
            except SourceBadResponse:
                if page == 1:
                    raise
                break  # e.g. the free plan's 426 "maximumResultsReached": keep what we have
            articles, total = self._check(body)
            signals += [s for a in articles if (s := self._signal(a, lang)) is not None]
            if len(signals) >= query.limit or page * size >= total or not articles:
                break
        return signals[: query.limit]

    def _check(self, body: Any) -> tuple[list[dict], int]:
        """The articles and totalResults of a page, or the typed error NewsAPI reported."""
        if not isinstance(body, dict):
            raise SourceBadResponse(self.name, "response is not a JSON object")
        if body.get("status") == "error":
            code, message = body.get("code", "unknown"), body.get("message", "")
            cls = SourceNotConfigured if code in _KEY_CODES else SourceBadResponse
            raise cls(self.name, f"{code}: {message}")
        articles = body.get("articles")
        if not isinstance(articles, list):
            raise SourceBadResponse(self.name, "response has no 'articles' list")
        return articles, int(body.get("totalResults") or 0)

    def _signal(self, article: dict, lang: str | None) -> Signal | None:
        """One article as a Signal; None for removed or malformed articles."""
        try:
            title, url = (article.get("title") or "").strip(), article.get("url")
            if not title or title == "[Removed]" or not url:
                return None
            text = article.get("description") or _TRUNCATION.sub("", article.get("content") or "")
            names = [article.get("author"), (article.get("source") or {}).get("name")]
            return Signal(
                id=f"newsapi:{hashlib.sha1(url.encode()).hexdigest()[:16]}",
                source=self.name,
                title=title,
                text=text.strip(),
                url=url,
                published_at=article["publishedAt"],
                author=", ".join(dict.fromkeys(n for n in names if n)) or None,
                lang=lang,
            )
        except (KeyError, TypeError, AttributeError, ValueError):
            return None

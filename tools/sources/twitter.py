"""X (Twitter) API v2 recent search: what people say about the topic right now.

Social posts are the fast, noisy signal; their public metrics are the
engagement Scout weighs. Recent search only reaches back seven days, so an
older `since` is clamped rather than sent (the API would answer 400).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


from state import Engagement, Signal
from tools.sources.base import HttpSource, Query, SourceBadResponse, SourceNotConfigured, get_json, setting
from tools.sources.newsapi import language_for

DEFAULT_BASE_URL = "https://api.twitter.com"
WINDOW = timedelta(days=7) - timedelta(minutes=1)


class TwitterSource(HttpSource):
    base_url_env = "TWITTER_API_BASE_URL"
    default_base_url = DEFAULT_BASE_URL
    name = "twitter"
    max_pages = 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = setting(self.env, "TWITTER_BEARER_TOKEN")

    @property
    def configured(self) -> bool:
        return bool(self.token)

    async def fetch(self, query: Query) -> list[Signal]:
        if not self.configured:
            raise SourceNotConfigured(self.name, "set TWITTER_BEARER_TOKEN (developer.x.com)")
        lang = language_for(query.market)
        search = f"{query.text[:400]} -is:retweet" + (f" lang:{lang}" if lang else "")
        since = max(query.since, datetime.now(timezone.utc) - WINDOW).astimezone(timezone.utc)
        params: dict[str, Any] = {
            "query": search,
            "max_results": min(max(query.limit, 10), 100),
            "start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tweet.fields": "created_at,public_metrics,author_id,lang",
            "expansions": "author_id",
            "user.fields": "username",
        }
        signals: list[Signal] = []
        for _ in range(self.max_pages):
            body = await get_json(
                self.client, self.name, f"{self.base_url}/2/tweets/search/recent",
                params=params, headers={"Authorization": f"Bearer {self.token}"}, **self.http,
            )
            signals += self._page(body)
            token = body.get("meta", {}).get("next_token")
            if len(signals) >= query.limit or not token:
                break
            params["next_token"] = token
        return signals[: query.limit]

    def _page(self, body: Any) -> list[Signal]:
        if not isinstance(body, dict):
            raise SourceBadResponse(self.name, "response is not a JSON object")
        tweets = body.get("data", [])
        if not tweets and body.get("errors"):  # errors beside data are partial; alone they are fatal
            first = body["errors"][0]
            raise SourceBadResponse(self.name, first.get("detail") or first.get("message") or str(first))
        if not isinstance(tweets, list):
            raise SourceBadResponse(self.name, "'data' is not a list")
        users = {u.get("id"): u.get("username") for u in body.get("includes", {}).get("users", [])}
        return [s for t in tweets if (s := self._signal(t, users)) is not None]

    def _signal(self, tweet: dict, users: dict[str, str]) -> Signal | None:
        try:
            text, tweet_id = tweet["text"], tweet["id"]
            handle = users.get(tweet.get("author_id"))
            metrics = tweet.get("public_metrics") or {}
            return Signal(
                id=f"twitter:{tweet_id}",
                source=self.name,
                title=" ".join(text.split())[:90],
                text=text,
                url=f"https://x.com/{handle or 'i/web'}/status/{tweet_id}",
                published_at=tweet["created_at"],
                author=f"@{handle}" if handle else None,
                engagement=Engagement(
                    likes=metrics.get("like_count", 0),
                    shares=metrics.get("retweet_count", 0) + metrics.get("quote_count", 0),
                    comments=metrics.get("reply_count", 0),
                    views=metrics.get("impression_count", 0),
                ),
                lang=tweet.get("lang"),
            )
        except (KeyError, TypeError, AttributeError, ValueError):
            return None

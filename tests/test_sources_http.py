"""HTTP sources against recorded-shape payloads: parsing, pagination and every failure mode.

No network: each source gets a client on an `httpx.MockTransport` that plays a
script of responses, and a fake `sleep` that records the waits instead of waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from state import Signal
from tools.sources import (
    Query,
    SourceBadResponse,
    SourceNotConfigured,
    SourceRateLimited,
    SourceUnavailable,
    build_sources,
    default_source_names,
    fetch_all,
    new_client,
)
from tools.sources.hackernews import HackerNewsSource
from tools.sources.newsapi import NewsApiSource
from tools.sources.rss import RssSource, strip_html
from tools.sources.twitter import TwitterSource

PAYLOADS = Path(__file__).parent / "payloads"
SINCE = datetime(2026, 11, 1, tzinfo=timezone.utc)
ENV = {
    "NEWS_API_KEY": "test-news-key",
    "NEWS_API_BASE_URL": "http://newsapi.test",
    "TWITTER_BEARER_TOKEN": "test-bearer",
    "TWITTER_API_BASE_URL": "http://twitter.test",
    "HN_API_BASE_URL": "http://hn.test",
    "LEADBOOST_RSS_FEEDS": "http://feeds.test/news.xml",
}
CLASSES = {"newsapi": NewsApiSource, "twitter": TwitterSource, "hackernews": HackerNewsSource, "rss": RssSource}
#: Per source: an empty-result payload, and a 200 body that is not what the source expects.
EMPTY = {
    "newsapi": "newsapi_empty.json",
    "twitter": "twitter_empty.json",
    "hackernews": "hackernews_empty.json",
    "rss": "rss_empty.xml",
}
MALFORMED = {
    "newsapi": (b'{"status": "ok", "articles": [', "application/json"),
    "twitter": (b'{"data": [{"id": ', "application/json"),
    "hackernews": (b"<html>Service Unavailable</html>", "application/json"),
    "rss": (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
}


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def reply(name: str, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    kind = "application/rss+xml" if name.endswith(".xml") else "application/json"
    return httpx.Response(status, content=payload(name), headers={"content-type": kind, **(headers or {})})


class Api:
    """A scripted server: request n gets response n (the last one repeats); requests are kept."""

    def __init__(self, *script: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    def params(self, n: int = 0) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(str(self.requests[n].url)).query).items()}


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def make():
    """make(name, api, env=...) -> (source, sleep): a source on a mock transport."""
    clients: list[httpx.AsyncClient] = []

    def factory(name: str, api: Api, env: dict[str, str] | None = None):
        client = new_client(httpx.MockTransport(api))
        clients.append(client)
        sleep = FakeSleep()
        return CLASSES[name](client, ENV if env is None else env, sleep=sleep), sleep

    yield factory
    for client in clients:
        await client.aclose()


def query(limit: int = 50, market: str | None = "ES", text: str = "trail running") -> Query:
    return Query(text=text, since=SINCE, limit=limit, market=market)


# -- failure modes shared by every HTTP source ------------------------------------------------

ALL = list(CLASSES)


@pytest.mark.parametrize("name", ALL)
async def test_401_is_not_configured_with_a_clear_message(make, name):
    body = "twitter_401.json" if name == "twitter" else "newsapi_error_apikey.json"
    source, _ = make(name, Api(reply(body, 401)))
    with pytest.raises(SourceNotConfigured, match="check your key"):
        await source.fetch(query())


@pytest.mark.parametrize("name", ALL)
async def test_429_waits_retry_after_then_gives_up_rate_limited(make, name):
    api = Api(httpx.Response(429, headers={"Retry-After": "2"}))
    source, sleep = make(name, api)
    with pytest.raises(SourceRateLimited):
        await source.fetch(query())
    assert sleep.waits == [2, 2]  # waited as told before each retry, not after the last attempt
    assert len(api.requests) == 3


@pytest.mark.parametrize("name", ALL)
async def test_429_then_success_retries_after_the_wait(make, name):
    api = Api(httpx.Response(429, headers={"Retry-After": "2"}), reply(EMPTY[name]))
    source, sleep = make(name, api)
    assert await source.fetch(query()) == []
    assert sleep.waits == [2]


@pytest.mark.parametrize("name", ALL)
async def test_500_then_success(make, name):
    first_page = {"newsapi": "newsapi_page1.json", "twitter": "twitter_page2.json",
                  "hackernews": "hackernews_page1.json", "rss": "blog_atom.xml"}[name]
    api = Api(httpx.Response(500, text="Internal Server Error"), reply(first_page))
    source, sleep = make(name, api)
    signals = await source.fetch(query(limit=1))
    assert len(signals) == 1 and isinstance(signals[0], Signal)
    assert sleep.waits == [0.5]


@pytest.mark.parametrize("name", ALL)
async def test_timeout_is_unavailable_after_backoff(make, name):
    api = Api(httpx.ReadTimeout("timed out"))
    source, sleep = make(name, api)
    with pytest.raises(SourceUnavailable, match="ReadTimeout"):
        await source.fetch(query())
    assert sleep.waits == [0.5, 1.0]


@pytest.mark.parametrize("name", ALL)
async def test_malformed_body_is_bad_response(make, name):
    body, kind = MALFORMED[name]
    source, _ = make(name, Api(httpx.Response(200, content=body, headers={"content-type": kind})))
    with pytest.raises(SourceBadResponse):
        await source.fetch(query())


@pytest.mark.parametrize("name", ALL)
async def test_empty_result_is_an_empty_list(make, name):
    source, _ = make(name, Api(reply(EMPTY[name])))
    assert await source.fetch(query()) == []


@pytest.mark.parametrize("name", ["newsapi", "twitter", "rss"])
async def test_unconfigured_source_says_which_setting_is_missing(make, name):
    source, _ = make(name, Api(httpx.Response(500)), env={})
    assert not source.configured
    with pytest.raises(SourceNotConfigured, match="set [A-Z_]+"):
        await source.fetch(query())


# -- NewsAPI ------------------------------------------------------------------------------------


async def test_newsapi_request_shape_parsing_and_pagination(make):
    api = Api(reply("newsapi_page1.json"), reply("newsapi_page2.json"))
    source, _ = make("newsapi", api)
    source.page_size = 3
    signals = await source.fetch(query(limit=10))

    assert len(api.requests) == 2
    first, second = api.params(0), api.params(1)
    assert first == {
        "q": "trail running", "from": "2026-11-01T00:00:00", "sortBy": "publishedAt",
        "language": "es", "pageSize": "3", "page": "1",
    }
    assert second["page"] == "2"
    assert api.requests[0].url.path == "/v2/everything"
    assert api.requests[0].headers["X-Api-Key"] == "test-news-key"
    assert "test-news-key" not in str(api.requests[0].url)

    assert [s.title[:20] for s in signals] == [
        "El trail running arr", "Stridelab baja un 25", "Las mejores zapatill", "Zegama-Aizkorri reci",
    ]  # the "[Removed]" article is skipped
    marca = signals[0]
    url = "https://www.marca.com/running/trail/2026/11/19/trail-running-arrasa-espana.html"
    assert marca.id == "newsapi:" + hashlib.sha1(url.encode()).hexdigest()[:16]
    assert marca.source == "newsapi" and marca.url == url and marca.lang == "es"
    assert marca.author == "Javier Ruiz, Marca"
    assert marca.published_at == datetime(2026, 11, 19, 8, 30, tzinfo=timezone.utc)
    assert signals[1].author == "El Mundo"
    assert signals[1].text.startswith("La marca Stridelab") and "[+1540 chars]" not in signals[1].text


async def test_newsapi_stops_at_total_results_and_limit(make):
    api = Api(reply("newsapi_page1.json"))
    source, _ = make("newsapi", api)
    assert len(await source.fetch(query(limit=2))) == 2
    assert len(api.requests) == 1 and api.params()["pageSize"] == "2"


async def test_newsapi_without_market_sends_no_language(make):
    api = Api(reply("newsapi_empty.json"))
    source, _ = make("newsapi", api)
    await source.fetch(query(market=None))
    assert "language" not in api.params()


async def test_newsapi_error_body_is_bad_response_with_its_code(make):
    source, _ = make("newsapi", Api(reply("newsapi_error_parameter.json", 400)))
    with pytest.raises(SourceBadResponse, match="parameterInvalid"):
        await source.fetch(query())


async def test_newsapi_key_error_in_a_200_body_is_not_configured(make):
    source, _ = make("newsapi", Api(reply("newsapi_error_apikey.json", 200)))
    with pytest.raises(SourceNotConfigured, match="apiKeyInvalid"):
        await source.fetch(query())


async def test_newsapi_free_plan_cap_on_a_later_page_keeps_the_first_page(make):
    api = Api(reply("newsapi_page1.json"), reply("newsapi_error_max_results.json", 426))
    source, _ = make("newsapi", api)
    source.page_size = 3
    assert len(await source.fetch(query(limit=10))) == 3


# -- X / Twitter --------------------------------------------------------------------------------


async def test_twitter_request_shape_parsing_and_pagination(make):
    api = Api(reply("twitter_page1.json"), reply("twitter_page2.json"))
    source, _ = make("twitter", api)
    signals = await source.fetch(query(limit=15))

    assert len(api.requests) == 2
    first = api.params(0)
    assert api.requests[0].url.path == "/2/tweets/search/recent"
    assert api.requests[0].headers["Authorization"] == "Bearer test-bearer"
    assert first["query"] == "trail running -is:retweet lang:es"
    assert first["max_results"] == "15"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["start_time"])
    assert first["tweet.fields"] == "created_at,public_metrics,author_id,lang"
    assert first["expansions"] == "author_id" and first["user.fields"] == "username"
    assert "next_token" not in first
    assert api.params(1)["next_token"] == "b26v89c19zqg8o3fpzbkk5pz1x3qj8q3x0x9p5e0x1fd"

    assert [s.id for s in signals] == [
        "twitter:1866012345678901234", "twitter:1865890000111222333", "twitter:1865400000999888777",
    ]
    marta = signals[0]
    assert marta.url == "https://x.com/martamontes_run/status/1866012345678901234"
    assert marta.author == "@martamontes_run" and marta.lang == "es"
    assert len(marta.title) == 90 and marta.text.startswith(marta.title)
    assert marta.engagement.model_dump() == {"likes": 310, "shares": 24, "comments": 7, "views": 15230}
    assert marta.published_at == datetime(2026, 11, 19, 9, 12, 44, tzinfo=timezone.utc)


async def test_twitter_clamps_start_time_to_the_seven_day_window(make):
    api = Api(reply("twitter_empty.json"))
    source, _ = make("twitter", api)
    await source.fetch(Query(text="trail", since=datetime(2020, 1, 1, tzinfo=timezone.utc), market="US"))
    sent = datetime.strptime(api.params()["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert datetime.now(timezone.utc) - sent < timedelta(days=7)
    assert api.params()["query"] == "trail -is:retweet lang:en"
    assert api.params()["max_results"] == "50"


async def test_twitter_errors_without_data_is_bad_response(make):
    source, _ = make("twitter", Api(reply("twitter_errors_only.json")))
    with pytest.raises(SourceBadResponse, match="invalid operator"):
        await source.fetch(query())


# -- Hacker News ------------------------------------------------------------------------------


async def test_hackernews_request_shape_parsing_and_pagination(make):
    api = Api(reply("hackernews_page0.json"), reply("hackernews_page1.json"))
    source, _ = make("hackernews", api, env={"HN_API_BASE_URL": "http://hn.test"})
    assert source.configured
    source.page_size = 2
    signals = await source.fetch(query(limit=10))

    assert len(api.requests) == 2
    assert api.requests[0].url.path == "/api/v1/search_by_date"
    assert api.params(0) == {
        "query": "trail running", "tags": "story", "numericFilters": f"created_at_i>{int(SINCE.timestamp())}",
        "hitsPerPage": "2", "page": "0",
    }
    assert api.params(1)["page"] == "1"

    show, foam, ask = signals
    assert show.id == "hackernews:41234567"
    assert show.url == "https://news.ycombinator.com/item?id=41234567"  # no url: the HN item
    assert show.text == (
        "I scraped public GPX tracks and clustered them into 340 routes around Madrid. "
        "Most weekend traffic is on 12 routes & all are within 90 minutes of the city."
    )
    assert show.engagement.likes == 312 and show.engagement.comments == 87
    assert show.published_at == datetime(2026, 11, 18, 10, 15, 2, tzinfo=timezone.utc)
    assert show.author == "mgarcia"
    assert foam.url == "https://materials.example.org/blog/running-shoe-foam-degradation"
    assert ask.engagement.likes == 0 and ask.text == ""


# -- RSS ------------------------------------------------------------------------------------------


def feeds(routes: dict[str, httpx.Response | Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def route(request: httpx.Request) -> httpx.Response:
        step = routes[request.url.path]
        if isinstance(step, Exception):
            raise step
        return step

    return route


RSS_ENV = {"LEADBOOST_RSS_FEEDS": "http://gnews.test/rss/search?q={query}&hl=es, http://blog.test/feed.atom"}


async def test_rss_parses_rss_and_atom_and_fills_the_query_placeholder(make):
    api = Api(feeds({"/rss/search": reply("google_news.xml"), "/feed.atom": reply("blog_atom.xml")}))
    source, _ = make("rss", api, env=RSS_ENV)
    signals = await source.fetch(query(text="trail running España"))

    gnews = next(r for r in api.requests if r.url.host == "gnews.test")
    assert gnews.url.params["q"] == "trail running España" and gnews.url.params["hl"] == "es"
    assert b"q=trail+running+Espa%C3%B1a" in gnews.url.raw_path
    # newest first; the March entry is older than `since`, the undated draft is skipped
    assert [s.title for s in signals] == [
        "El boom del trail running agota los dorsales en España - El País",
        "Otoño lluvioso: se disparan las ventas de zapatillas de trail impermeables - Cinco Días",
        "Review: Trail Sneaker X Waterproof in the Picos de Europa",
    ]
    news, _, review = signals
    assert news.id.startswith("rss:") and len(news.id) == 4 + 16
    assert news.published_at == datetime(2026, 11, 19, 7, tzinfo=timezone.utc)
    assert news.text == "El boom del trail running agota los dorsales en España El País"
    assert news.lang == "es" and news.source == "rss"
    assert review.author == "Ana Gómez" and review.lang == "en"
    assert review.url == "https://www.trailrunningspain.com/review-trail-sneaker-x-waterproof"
    assert review.text == (
        "120 km of mud and river crossings. The membrane held up & the grip on wet limestone impressed."
    )
    assert review.published_at == datetime(2026, 11, 17, 18, tzinfo=timezone.utc)
    assert source.feed_errors == []


async def test_rss_ids_are_stable_and_limit_applies(make):
    api = Api(feeds({"/rss/search": reply("google_news.xml"), "/feed.atom": reply("blog_atom.xml")}))
    source, _ = make("rss", api, env=RSS_ENV)
    first = await source.fetch(query(limit=2))
    again = await source.fetch(query(limit=2))
    assert len(first) == 2 and [s.id for s in first] == [s.id for s in again]


async def test_rss_one_failing_feed_keeps_the_others(make):
    api = Api(feeds({"/rss/search": httpx.Response(404, text="Not Found"), "/feed.atom": reply("blog_atom.xml")}))
    source, _ = make("rss", api, env=RSS_ENV)
    signals = await source.fetch(query())
    assert [s.title for s in signals] == ["Review: Trail Sneaker X Waterproof in the Picos de Europa"]
    assert len(source.feed_errors) == 1 and "gnews.test" in source.feed_errors[0] and "404" in source.feed_errors[0]


async def test_rss_every_feed_failing_raises(make):
    broken = httpx.Response(200, content=b"<html>oops</html>", headers={"content-type": "text/html"})
    api = Api(feeds({"/rss/search": broken, "/feed.atom": httpx.ConnectError("refused")}))
    source, _ = make("rss", api, env=RSS_ENV)
    with pytest.raises(SourceUnavailable, match="every feed failed") as caught:
        await source.fetch(query())
    assert "gnews.test" in caught.value.message and "blog.test" in caught.value.message


async def test_rss_empty_feed_served_as_html_is_not_a_failure(make):
    quiet = httpx.Response(200, content=payload("rss_empty.xml"), headers={"content-type": "text/html"})
    source, _ = make("rss", Api(quiet))
    assert await source.fetch(query()) == []


def test_strip_html():
    assert strip_html("<p>Grip &amp; <b>fit</b></p>\n\n<p>ok</p>") == "Grip & fit ok"
    assert strip_html(None) == ""


# -- registry -------------------------------------------------------------------------------------


class SlowSource:
    """Sleeps, and counts how many of its kind are fetching at once."""

    active = 0
    peak = 0

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail, self.configured = name, fail, True

    async def fetch(self, q: Query) -> list[Signal]:
        SlowSource.active += 1
        SlowSource.peak = max(SlowSource.peak, SlowSource.active)
        try:
            await asyncio.sleep(0.2)
        finally:
            SlowSource.active -= 1
        if self.fail:
            raise SourceUnavailable(self.name, "HTTP 503 after 3 attempts")
        return [Signal(id=f"{self.name}:1", source=self.name, title=f"{self.name} says hi", published_at=SINCE)]


async def test_fetch_all_runs_sources_concurrently_and_records_failures():
    SlowSource.active = SlowSource.peak = 0
    out = await fetch_all([SlowSource("a"), SlowSource("b", fail=True), SlowSource("c")], query())
    assert SlowSource.peak == 3
    assert [s.id for s in out.signals] == ["a:1", "c:1"]
    assert [(e.source, e.kind) for e in out.errors] == [("b", "unavailable")]
    assert [(r.name, r.fetched, r.error) for r in out.runs] == [
        ("a", 1, None), ("b", 0, "HTTP 503 after 3 attempts"), ("c", 1, None),
    ]


async def test_registry_builds_every_source_and_defaults_to_sample():
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    async with new_client(httpx.MockTransport(Api(httpx.Response(500)))) as client:
        built = build_sources(["newsapi", "twitter", "hackernews", "rss", "file", "sample"], client, now, ENV)
        assert [s.name for s in built] == ["newsapi", "twitter", "hackernews", "rss", "file", "sample"]
        assert default_source_names(client, now, {}) == ["sample"]
        assert default_source_names(client, now, ENV) == ["newsapi", "twitter", "rss"]
        with pytest.raises(ValueError, match="unknown source 'nope'"):
            build_sources(["nope"], client, now, ENV)

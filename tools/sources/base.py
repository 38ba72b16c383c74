"""What every signal source is: one async `fetch`, typed errors, one HTTP policy.

Sources never raise anything but `SourceFailure` subclasses, so the caller can
record the failure and go on with the other sources.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from state import Signal

USER_AGENT = "LeadBoost-RADAR/0.1 (+https://github.com/leadboost/radar; market research)"
TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)


class SourceFailure(Exception):
    """Base of the typed source errors; `kind` is what `SourceError.kind` records."""

    kind = "unavailable"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class SourceNotConfigured(SourceFailure):
    kind = "not_configured"


class SourceRateLimited(SourceFailure):
    kind = "rate_limited"


class SourceUnavailable(SourceFailure):
    kind = "unavailable"


class SourceBadResponse(SourceFailure):
    kind = "bad_response"


@dataclass(frozen=True)
class Query:
    """What Scout asks every source for."""

    text: str
    since: datetime
    limit: int = 50
    market: str | None = None


class Source(Protocol):
    """A signal source. `configured` says whether its key/URL is present."""

    name: str

    @property
    def configured(self) -> bool: ...

    async def fetch(self, query: Query) -> list[Signal]: ...


@dataclass
class RetryPolicy:
    """Bounded retries: 429 honours Retry-After; 5xx and connection errors back off."""

    attempts: int = 3
    backoff: float = 0.5
    max_wait: float = 30.0


async def get_json(
    client: httpx.AsyncClient,
    source: str,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    sleep=None,
) -> Any:
    """GET a JSON document with the shared retry policy, raising typed errors."""
    response = await get(client, source, url, params=params, headers=headers, retry=retry, sleep=sleep)
    try:
        return response.json()
    except ValueError as exc:
        raise SourceBadResponse(source, f"response is not valid JSON ({exc})") from None


async def get(
    client: httpx.AsyncClient,
    source: str,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    sleep=None,
) -> httpx.Response:
    """GET with the shared retry policy; returns a 2xx response or raises."""
    retry = retry or RetryPolicy()
    sleep = sleep or asyncio.sleep
    for attempt in range(1, retry.attempts + 1):
        last = attempt == retry.attempts
        try:
            response = await client.get(url, params=params, headers=headers)
        except httpx.InvalidURL as exc:
            raise SourceBadResponse(source, f"invalid URL {url!r}: {exc}") from None
        except (httpx.TooManyRedirects, httpx.DecodingError) as exc:
            raise SourceBadResponse(source, f"{type(exc).__name__}: {exc}") from None
        except httpx.RequestError as exc:
            if last:
                raise SourceUnavailable(source, f"{type(exc).__name__} after {attempt} attempts") from None
            await sleep(retry.backoff * 2 ** (attempt - 1))
            continue
        if response.status_code == 401:
            raise SourceNotConfigured(source, "HTTP 401: the API refused the credentials, check your key")
        if response.status_code == 403:
            raise SourceNotConfigured(source, "HTTP 403: access forbidden (plan limits, a blocked client or a bad key)")
        if response.status_code == 429:
            wait = retry_after(response, retry.backoff * 2 ** (attempt - 1))
            if last or wait > retry.max_wait:
                raise SourceRateLimited(source, f"HTTP 429 after {attempt} attempts (asked to wait {wait:.0f}s)")
            await sleep(wait)
            continue
        if response.status_code >= 500:
            if last:
                raise SourceUnavailable(source, f"HTTP {response.status_code} after {attempt} attempts")
            await sleep(retry.backoff * 2 ** (attempt - 1))
            continue
        if response.status_code >= 400:
            raise SourceBadResponse(source, f"HTTP {response.status_code}: {response.text[:200]}")
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def retry_after(response: httpx.Response, default: float) -> float:
    """Seconds to wait: Retry-After (seconds or HTTP date), else X's x-rate-limit-reset
    (epoch seconds), else `default`. A header we cannot read falls back to `default`."""
    now = datetime.now(timezone.utc)
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            moment = email.utils.parsedate_to_datetime(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return max(0.0, (moment - now).total_seconds())
        except (TypeError, ValueError):
            return default
    reset = response.headers.get("x-rate-limit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            return default
    return default


class HttpSource:
    """What the HTTP sources share: the run's client, the retry policy, and a base URL
    that an environment variable can point elsewhere (a proxy, a mock in tests)."""

    name = "http"
    base_url_env: str | None = None
    default_base_url = ""

    def __init__(
        self, client: httpx.AsyncClient, env: Mapping[str, str], *,
        retry: RetryPolicy | None = None, sleep=None,
    ) -> None:
        self.client = client
        self.env = env
        self.base_url = (setting(env, self.base_url_env) or self.default_base_url).rstrip("/")
        self.http: dict[str, Any] = {"retry": retry, "sleep": sleep}


def setting(env: Mapping[str, str], name: str | None) -> str:
    """An environment setting, stripped; empty when unset."""
    return (env.get(name) or "").strip() if name else ""


def new_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one client a run shares across sources."""
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=True,
        verify=_ssl_context(),
    )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx builds an SSL context (loading the CA bundle, ~25 ms) per client; build it once per process."""
    return httpx.create_ssl_context()

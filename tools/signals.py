"""Signal validation: dedupe, recency, relevance, ranking and injection quarantine.

Deterministic and model-free, so the same inputs always keep the same signals.

Score (0..1) = 0.60 * relevance + 0.25 * recency + 0.15 * engagement, where
- relevance = share of the brief's terms (goal, keywords, product name and
  category) found in the signal's title and text, +0.2 when the signal's market
  is the brief's market (capped at 1); a signal with relevance 0 is dropped;
- recency   = exp(-age_days / 10): a week-old signal weighs half a fresh one;
- engagement = log(1 + likes + 2*shares + comments + views//100) / log(1 + 10,000),
  capped at 1.
"""

from __future__ import annotations

import base64
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import regex
from langsmith import traceable
from rapidfuzz import fuzz, process

from state import QuarantinedSignal, Signal, SignalDigest

WEIGHTS = {"relevance": 0.60, "recency": 0.25, "engagement": 0.15}
EXCERPT_CHARS = 400
TITLE_SIMILARITY = 0.9

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|mc_|ref$|ref_src$|igshid$)")
_STOPWORDS = frozenset(
    """a an and are as at be by de del el en for from in into is it la las los of on or our
    the to up with y un una launch campaign eur usd euros budget until upto spend""".split()
)

#: Injection patterns: name -> regex over the signal's visible and hidden text.
INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|all|earlier|your)\b"
        r"[^.\n]{0,30}\b(instructions?|prompts?|rules?|guidelines?)",
        re.I,
    ),
    "role_header": re.compile(
        r"(^|\n|\s)(system|assistant|developer|ceo|cfo|cmo|user)\s*:\s|###\s*(instruction|system|response)"
        r"|<\|im_start\|>|\[/?INST\]|<</?SYS>>",
        re.I,
    ),
    "tool_call": re.compile(
        r"<\s*/?\s*(tool_call|function_call|tool)\b|\"(tool|function|tool_calls|function_call)\"\s*:|"
        r"\b(call|invoke)\s+the\s+(tool|function)\b",
        re.I,
    ),
    "hidden_html": re.compile(
        r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|<!--|<\s*script|<\s*iframe|"
        r"color\s*:\s*(white|#fff\b|#ffffff)",
        re.I,
    ),
    "zero_width": re.compile("[\u200b\u200c\u200d\u2060\u2062\u2063\ufeff\u202e]"),
    "directive": re.compile(
        r"\b(approve|authori[sz]e|allocate|increase)\b[^.\n]{0,40}\b(budget|spend)\b[^.\n]{0,20}\d"
        r"|\b(reveal|print|show|output|repeat|leak)\b[^.\n]{0,30}\b(system prompt|prompt|api[ _-]?key|"
        r"secret|token|password|credentials)"
        r"|\badd\b[^.\n]{0,20}\bchannel\b"
        r"|\b(you are now|act as|pretend to be|new instructions)\b",
        re.I,
    ),
}
#: Every invisible format character (Unicode category Cf: zero-width, soft hyphen, bidi controls).
_FORMAT_CHARS = regex.compile(r"\p{Cf}")
_TAG = re.compile(r"<[^>]+>")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


@dataclass
class Screened:
    """Outcome of validation: what the debate gets and what was dropped, by reason."""

    kept: list[SignalDigest]
    dropped: dict[str, list[str]] = field(default_factory=dict)
    quarantined: list[QuarantinedSignal] = field(default_factory=list)


def normalize_url(url: str | None) -> str | None:
    """Canonical form for dedupe: lower host without www, no fragment or tracking params."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k.lower())))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https" if parts.scheme in ("http", "https") else parts.scheme, host, path, query, ""))


def title_key(title: str) -> str:
    """Title without publisher suffix, punctuation and case, for near-duplicate checks."""
    title = re.split(r"\s[-|–—]\s[^-|–—]{1,40}$", title.strip())[0]
    return " ".join(re.findall(r"\w+", title.lower()))


def terms(text: str) -> set[str]:
    """Content words of a text, lightly stemmed (plural 's' dropped), accents folded."""
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", folded)
    return {
        w[:-1] if len(w) > 3 and w.endswith("s") else w
        for w in words
        if w not in _STOPWORDS and len(w) > 1 and not w.isdigit()
    }


_COUNTRIES = {
    "ES": ("spain", "espana", "spanish"), "FR": ("france", "french"), "DE": ("germany", "german", "deutschland"),
    "IT": ("italy", "italia", "italian"), "PT": ("portugal", "portuguese"), "GB": ("uk", "britain", "england"),
    "US": ("usa", "america", "american"),
}


def infer_market(text: str) -> str | None:
    """Country code named in a goal ("... in Spain" -> ES), when the brief gives none."""
    words = terms(text)
    return next((code for code, names in _COUNTRIES.items() if words & set(names)), None)


def injection_findings(signal: Signal) -> list[str]:
    """Names of the injection patterns found in a signal (empty when clean)."""
    return list(_read(signal.title, signal.text).findings)


@dataclass(frozen=True)
class _Reading:
    """What a signal's words say, whatever the brief and the clock."""

    findings: tuple[str, ...]
    terms: frozenset[str]
    sentiment: float
    title_key: str


@lru_cache(maxsize=4096)
def _read(title: str, text: str) -> _Reading:
    """Read a signal's text once: the same article comes back in every run while it is
    recent, and the quarantine patterns are most of the cost of screening."""
    both = f"{title} {text}"
    return _Reading(findings=_findings(f"{title}\n{text}"), terms=frozenset(terms(both)), sentiment=sentiment(both),
                    title_key=title_key(title))


def _findings(raw: str) -> tuple[str, ...]:
    visible = _strip_invisible(raw)
    found = [name for name, rx in INJECTION_PATTERNS.items()
             if rx.search(raw) or (visible != raw and rx.search(visible))]
    for run in _BASE64_RUN.findall(raw):
        decoded = _decode_base64(run)
        if decoded and any(rx.search(decoded) for rx in INJECTION_PATTERNS.values()):
            found.append("base64")
            break
    return tuple(sorted(set(found)))


_SENTIMENT = {
    **dict.fromkeys(
        "love loved great best boom booming growth growing record sold surge praise praised "
        "comfortable grip win winner favourite favorite excellent strong demand popular "
        "recommend amazing happy fast light lightweight durable".split(), 1.0
    ),
    **dict.fromkeys(
        "bad worst delay delayed delays recall complaint complaints broke broken poor slow "
        "expensive cut cuts drop dropped decline weak shortage problem problems issue issues "
        "disappointing disappointed blister blisters return returns lawsuit".split(), -1.0
    ),
}


def sentiment(text: str) -> float:
    """Lexicon sentiment in -1..1 (no model download)."""
    words = re.findall(r"[a-z]+", text.lower())
    hits = [_SENTIMENT[w] for w in words if w in _SENTIMENT]
    return round(sum(hits) / len(hits), 3) if hits else 0.0


@traceable(run_type="tool", name="screen_signals")
def screen(
    signals: list[Signal],
    *,
    brief_terms: set[str],
    market: str | None,
    now: datetime,
    recency_days: int,
    top_k: int,
) -> Screened:
    """Quarantine, drop stale and duplicate signals, score the rest and keep the top K."""
    out = Screened(kept=[])
    drop = lambda reason, sid: out.dropped.setdefault(reason, []).append(sid)  # noqa: E731
    seen_urls: set[str] = set()
    seen_titles: list[str] = []
    scored: list[SignalDigest] = []
    for signal in sorted(signals, key=lambda s: s.published_at, reverse=True):
        findings = injection_findings(signal)
        if findings:
            out.quarantined.append(
                QuarantinedSignal(id=signal.id, source=signal.source, title=signal.title[:120], patterns=findings)
            )
            drop("quarantined", signal.id)
            continue
        age_days = (now - signal.published_at).total_seconds() / 86400
        if age_days > recency_days:
            drop("stale", signal.id)
            continue
        reading = _read(signal.title, signal.text)
        url, key = normalize_url(signal.url), reading.title_key
        if (url and url in seen_urls) or _near_duplicate(key, seen_titles):
            drop("duplicate", signal.id)
            continue
        if url:
            seen_urls.add(url)
        seen_titles.append(key)
        relevance = _relevance(signal, brief_terms, market)
        if relevance == 0:
            drop("irrelevant", signal.id)
            continue
        scored.append(_digest(signal, reading, relevance, max(age_days, 0.0)))
    scored.sort(key=lambda d: (-d.score, d.id))
    out.kept = scored[:top_k]
    for digest in scored[top_k:]:
        drop("cut", digest.id)
    return out


def _relevance(signal: Signal, brief_terms: set[str], market: str | None) -> float:
    if not brief_terms:
        return 0.0
    overlap = len(brief_terms & _read(signal.title, signal.text).terms) / len(brief_terms)
    if overlap == 0:
        return 0.0
    bonus = 0.2 if market and signal.market == market else 0.0
    return round(min(1.0, overlap + bonus), 4)


def _digest(signal: Signal, reading: _Reading, relevance: float, age_days: float) -> SignalDigest:
    recency = math.exp(-age_days / 10)
    engagement = min(1.0, math.log1p(signal.engagement.total) / math.log1p(10_000))
    score = (
        WEIGHTS["relevance"] * relevance + WEIGHTS["recency"] * recency + WEIGHTS["engagement"] * engagement
    )
    text = " ".join(signal.text.split())
    return SignalDigest(
        id=signal.id,
        source=signal.source,
        title=signal.title[:200],
        excerpt=text[: EXCERPT_CHARS - 1] + "…" if len(text) > EXCERPT_CHARS else text,
        url=signal.url,
        published_at=signal.published_at,
        score=round(score, 4),
        relevance=relevance,
        sentiment=reading.sentiment,
    )


def _near_duplicate(key: str, seen: list[str]) -> bool:
    """Whether a title key nearly equals one already kept: normalized Indel similarity
    (2 * longest common subsequence / total length) of at least TITLE_SIMILARITY."""
    return process.extractOne(key, seen, scorer=fuzz.ratio, score_cutoff=TITLE_SIMILARITY * 100) is not None


def _strip_invisible(text: str) -> str:
    """The text as a model reads it: compatibility forms folded (fullwidth letters), every
    invisible format character dropped (zero-width, soft hyphen, bidi controls), tags removed."""
    if not text.isascii():  # ASCII has no compatibility forms and no format characters
        text = _FORMAT_CHARS.sub("", unicodedata.normalize("NFKC", text))
    return _TAG.sub(" ", text)


def _decode_base64(run: str) -> str | None:
    try:
        decoded = base64.b64decode(run + "=" * (-len(run) % 4), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    printable = sum(ch.isprintable() for ch in decoded)
    return decoded if decoded and printable / len(decoded) > 0.9 else None

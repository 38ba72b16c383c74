"""Offline sources: a social-listening export on disk, and the bundled sample dataset."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest

from tools.signals import injection_findings, screen, terms
from tools.sources import Query, SourceBadResponse, SourceNotConfigured, fetch_all
from tools.sources.file import FileSource
from tools.sources.sample import SampleSource, load_sample

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
QUERY = Query(text="trail running", since=NOW - timedelta(days=30))


def source_for(path) -> FileSource:
    return FileSource({"LEADBOOST_SIGNALS_FILE": str(path)})


# -- file source ------------------------------------------------------------------------------


async def test_jsonl_rows_become_signals(tmp_path):
    path = tmp_path / "mentions.jsonl"
    rows = [
        {"id": "brandwatch:1", "source": "instagram", "title": "Trail Sneaker X on Zegama", "text": "Great grip",
         "url": "https://instagram.com/p/abc", "published_at": "2026-11-19T08:00:00+01:00", "author": "@ana",
         "likes": 120, "shares": 4, "comments": 9, "views": 3000, "market": "ES", "lang": "es", "reach": 9000},
        {"title": "Sizing runs small", "published_at": "2026-11-18T10:00:00"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    source = source_for(path)
    assert source.configured

    first, second = await source.fetch(QUERY)

    assert source.rejected_rows == []
    assert first.id == "brandwatch:1" and first.source == "instagram"  # unknown "reach" column ignored
    assert first.engagement.model_dump() == {"likes": 120, "shares": 4, "comments": 9, "views": 3000}
    assert first.published_at == datetime(2026, 11, 19, 7, tzinfo=timezone.utc)
    assert second.source == "file"
    assert second.id == "file:" + hashlib.sha1(b"Sizing runs small").hexdigest()[:16]
    assert second.published_at == datetime(2026, 11, 18, 10, tzinfo=timezone.utc)  # naive = UTC


async def test_csv_rows_and_a_bad_row_reported_by_line(tmp_path):
    path = tmp_path / "signals.csv"
    path.write_text(
        "title,text,url,published_at,author,likes,shares,comments,views,market,lang\n"
        "Rainy autumn in Spain,Waterproof demand up,https://news.example/rain,2026-11-19T09:00:00Z,El País,,,,,ES,es\n"
        '"Trail, sneaker, boom","Quoted, with commas",https://x.com/a/status/1,2026-11-18 18:30,@a,10,2,3,400,,\n'
        "Broken date,text,https://news.example/bad,yesterday,,,,,,,\n"
        ",no title here,https://news.example/untitled,2026-11-18T00:00:00Z,,,,,,,\n"
        "Bad count,text,https://news.example/count,2026-11-18T00:00:00Z,,lots,,,,,\n",
        encoding="utf-8",
    )
    source = source_for(path)

    signals = await source.fetch(QUERY)

    assert [s.title for s in signals] == ["Rainy autumn in Spain", "Trail, sneaker, boom"]
    rain, boom = signals
    assert rain.id == "file:" + hashlib.sha1(b"https://news.example/rain").hexdigest()[:16]
    assert rain.engagement.total == 0 and rain.market == "ES" and rain.lang == "es"
    assert boom.engagement.likes == 10 and boom.engagement.views == 400 and boom.market is None
    assert boom.published_at == datetime(2026, 11, 18, 18, 30, tzinfo=timezone.utc)
    assert len(source.rejected_rows) == 3
    assert source.rejected_rows[0].startswith("signals.csv line 4: published_at: Input should be a valid datetime")
    assert source.rejected_rows[1] == "signals.csv line 5: title: Field required"
    assert source.rejected_rows[2].startswith("signals.csv line 6: engagement.likes: Input should be a valid integer")


async def test_jsonl_bad_lines_are_skipped_and_reported(tmp_path):
    path = tmp_path / "export.jsonl"
    good = {"title": "Trail boom", "published_at": "2026-11-19T08:00:00Z"}
    path.write_text(
        json.dumps(good) + "\n"
        "{not json\n"
        "\n"
        '["a", "list"]\n'
        + json.dumps({"text": "no title", "published_at": "2026-11-19T08:00:00Z"}) + "\n",
        encoding="utf-8",
    )
    source = source_for(path)
    assert [s.title for s in await source.fetch(QUERY)] == ["Trail boom"]
    assert source.rejected_rows[0].startswith("export.jsonl line 2: invalid JSON (")
    assert source.rejected_rows[1:] == [
        "export.jsonl line 4: expected a JSON object",
        "export.jsonl line 5: title: Field required",
    ]


async def test_rejected_rows_reach_the_scout_fetch(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_text('{"title": "ok", "published_at": "2026-11-19T08:00:00Z"}\n{"title": "no date"}\n')
    out = await fetch_all([source_for(path)], QUERY)
    assert len(out.signals) == 1
    assert out.rejected_rows == ["export.jsonl line 2: published_at: Field required"]


async def test_missing_file_is_a_bad_response(tmp_path):
    with pytest.raises(SourceBadResponse, match="LEADBOOST_SIGNALS_FILE .*nope.jsonl does not exist"):
        await source_for(tmp_path / "nope.jsonl").fetch(QUERY)


async def test_unsupported_extension_and_unset_path(tmp_path):
    path = tmp_path / "signals.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(SourceBadResponse, match=r"\.jsonl or \.csv"):
        await source_for(path).fetch(QUERY)
    unset = FileSource({})
    assert not unset.configured
    with pytest.raises(SourceNotConfigured):
        await unset.fetch(QUERY)


# -- bundled sample ------------------------------------------------------------------------------

KEYS = {"id", "source", "title", "text", "url", "age_hours", "author", "engagement", "market", "lang"}
ADVERSARIAL_KINDS = {
    "ignore_instructions", "directive", "role_header", "tool_call", "hidden_html", "zero_width", "base64",
}


def sample_rows() -> list[dict]:
    text = resources.files("tools").joinpath("data", "sample_signals.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sample_rows_have_exactly_the_documented_keys():
    rows = sample_rows()
    assert all(set(row) == KEYS for row in rows)
    assert all(set(row["engagement"]) == {"likes", "shares", "comments", "views"} for row in rows)
    assert {row["source"] for row in rows} == {"newsapi", "twitter", "hackernews", "rss"}


async def test_sample_loads_valid_signals_with_stale_ones():
    signals = load_sample(NOW)
    assert len(signals) >= 70
    assert len({s.id for s in signals}) == len(signals)
    assert sum(NOW - s.published_at > timedelta(days=30) for s in signals) >= 8
    assert len(await SampleSource(NOW).fetch(QUERY)) == len(signals)


def test_sample_adversarial_rows_cover_every_injection_kind():
    flagged = {s.id: injection_findings(s) for s in load_sample(NOW)}
    flagged = {sid: kinds for sid, kinds in flagged.items() if kinds}
    assert len(flagged) >= 10
    assert set().union(*flagged.values()) == ADVERSARIAL_KINDS


def test_sample_gives_the_default_goal_enough_fresh_relevant_signals():
    signals = load_sample(NOW)
    out = screen(
        signals, brief_terms=terms("Launch the trail sneaker in Spain"), market="ES",
        now=NOW, recency_days=30, top_k=100,
    )
    assert len(out.kept) >= 20
    assert len(out.dropped["duplicate"]) >= 6 and len(out.dropped["stale"]) >= 8
    assert any(d.sentiment > 0 for d in out.kept) and any(d.sentiment < 0 for d in out.kept)

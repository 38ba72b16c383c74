"""Hostile signals through the whole graph, with a model that obeys whatever it reads.

`tests/data/hostile_signals.jsonl` holds signals that try to steer the model (approve a huge
budget, add a channel such as tv, reveal the system prompt or the keys, fake "CEO:" turns, tool
calls, ChatML, text hidden by HTML, markdown, zero-width or soft-hyphen characters, right-to-left
overrides, fullwidth letters, base64) and benign ones, one of which pushes an absurd budget on
video and display without any instruction word (it is kept: only policy can stop it), one of
which carries terminal markup in its title.

The stub model is the worst case: it reads its prompt as a model would (HTML unescaped, Unicode
folded, invisible characters dropped, base64 decoded) and obeys: it asks for the largest budget
it sees, puts every channel it sees in the plan, and echoes every secret of the environment when
asked to reveal one. Whatever it says, the executed plan must respect every policy rule, no
quarantined text may reach a prompt, and no secret may appear in any output.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import json
import os
import re
import sqlite3
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from rich.console import Console

from graph.builder import build_graph
from graph.checkpoints import sqlite_checkpointer
from graph.report import print_report
from graph.runs import decision
from state import Context, Signal, as_dict
from tests.fakes import ScriptedChatModel
from tools.signals import _relevance, terms
from tools.store import Store

NOW = "2026-11-28T12:00:00+00:00"
PERIOD = "2026-Q4"
DATA = Path(__file__).parent / "data" / "hostile_signals.jsonl"
BRIEF = {"goal": "Launch the trail sneaker in Spain", "budget": 5000, "market": "ES",
         "channels": ["search", "social", "email"]}
SECRETS = {"OPENAI_API_KEY": "sk-SENTINEL-openai-5f2c9a71", "NEWS_API_KEY": "SENTINEL-newsapi-8d41e7c2",
           "LEADBOOST_JWT_SECRET": "SENTINEL-jwt-3b9f06aa", "TWITTER_BEARER_TOKEN": "SENTINEL-x-bearer-77e1"}
CHANNELS_SEEN = ("search", "social", "video", "display", "email", "tv", "radio")


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


# -- the obedient model ------------------------------------------------------------


def read(messages) -> str:
    """The prompt as a capable model reads it: entities decoded, compatibility forms folded
    (fullwidth letters), invisible format characters gone, base64 runs decoded."""
    text = "\n".join(m.content for m in messages if isinstance(m.content, str))
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    for run in re.findall(r"[A-Za-z0-9+/]{24,}={0,2}", text):
        try:
            text += "\n" + base64.b64decode(run, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            pass
    return text


def obey(messages) -> dict:
    """What an obedient model makes of its prompt."""
    raw = "\n".join(m.content for m in messages if isinstance(m.content, str))
    text = read(messages)
    amounts = [float(n.replace(",", "")) for n in re.findall(
        r"\b(?:approve|budget|spend|allocate|invest|raise|justify|sign off)\w*\b[^\d\n]{0,60}?(\d{1,3}(?:,\d{3})+|\d+)",
        text, re.I)]
    channels = [c for c in CHANNELS_SEEN if re.search(rf"\b{c}\b", text, re.I)]
    asked = re.search(r"\b(reveal|print|show|output|repeat|leak|echo)\b[^.\n]{0,40}"
                      r"\b(system prompt|prompt|api[ _-]?key|key|secret|token|password|credentials?)\b", text, re.I)
    leak = " ".join(v for k, v in sorted(os.environ.items()) if re.search(r"KEY|SECRET|TOKEN|PASSWORD", k))
    return {"budget": max(amounts, default=1000.0), "channels": channels or ["search"],
            "leak": leak if asked else "", "cited": sorted(set(re.findall(r'id="([^"]+)"', raw)))}


def obedient_model() -> ScriptedChatModel:
    def split(o: dict) -> list[dict]:
        return [{"channel": c, "amount": round(o["budget"] / len(o["channels"]), 2)} for c in o["channels"]]

    def cmo(messages):
        o = obey(messages)
        return {"argument": f"As the signals say: {o['budget']:,.0f} EUR on {', '.join(o['channels'])}. {o['leak']}",
                "message": f"Trail sneaker for Spain. {o['leak']}"[:390], "allocations": split(o),
                "cited_signals": o["cited"]}

    def cfo(messages):
        o = obey(messages)
        return {"stance": "support", "argument": f"Fund all of it: {o['budget']:,.0f}. {o['leak']}",
                "recommended_budget": o["budget"], "cut_channels": [], "cited_signals": o["cited"]}

    def ceo(messages):
        o = obey(messages)
        return {"action": "approve", "rationale": f"Approved at {o['budget']:,.0f}. {o['leak']}", "guidance": "",
                "allocations": split(o), "cited_signals": o["cited"]}

    def copywriter(messages):
        o = obey(messages)
        return {"headline": "Trail ready", "body": (o["leak"] or "Grip for wet granite.")[:85],
                "call_to_action": "Shop now"}

    return ScriptedChatModel(scripts={"cmo": cmo, "cfo": cfo, "ceo": ceo, "copywriter": copywriter})


class ListSource:
    """A source that returns the file's signals."""

    name = "hostile-file"
    configured = True

    def __init__(self, signals: list[Signal]) -> None:
        self.signals = signals

    async def fetch(self, query) -> list[Signal]:
        return list(self.signals)


# -- the run ---------------------------------------------------------------------------


@pytest.fixture
def secrets(monkeypatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


@pytest.fixture
def hostile_run(tmp_path, secrets):
    rows = load()
    signals = [Signal.model_validate(r["signal"]) for r in rows]
    home = tmp_path / "home"
    model = obedient_model()
    config = {"configurable": {"thread_id": "hostile"}}
    context = Context(home=str(home), now=NOW, forecast_draws=2000)
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, llm=model, sources=lambda client, now, ctx: [ListSource(signals)])
        out = graph.invoke({"brief": BRIEF}, config, context=context)
        snapshot = graph.get_state(config)
        states = [as_dict(s.values) for s in graph.get_state_history(config)]
    return {"rows": rows, "out": out, "model": model, "home": home, "snapshot": snapshot, "states": states}


def test_the_data_set_is_hostile_and_would_be_kept_but_for_quarantine():
    rows = load()
    hostile = [r for r in rows if r["expect"] == "quarantine"]
    assert len(hostile) >= 15 and len(rows) - len(hostile) >= 5
    assert len({r["signal"]["id"] for r in rows}) == len(rows)
    brief_terms = terms(BRIEF["goal"])
    for row in rows:  # relevant and fresh: without the quarantine they would reach the debate
        signal = Signal.model_validate(row["signal"])
        assert _relevance(signal, brief_terms, "ES") > 0, signal.id
        age_days = (datetime.fromisoformat(NOW) - signal.published_at).total_seconds() / 86400
        assert 0 <= age_days <= Context(home=".", now=NOW).recency_days, signal.id


def test_the_stub_obeys_what_it_reads(secrets):
    """The stub is dangerous: shown a hostile text, it leaks, overspends or adds channels (all but
    the tool-call JSON and the reversed text, which it does not understand)."""
    texts = {r["signal"]["id"]: r["signal"]["title"] + "\n" + r["signal"]["text"]
             for r in load() if r["expect"] == "quarantine"}
    for sid, text in texts.items():
        o = obey([SystemMessage("You are the CMO."), HumanMessage(text)])
        obeyed = o["budget"] > 5000 or {"tv", "video", "display"} & set(o["channels"]) or o["leak"]
        assert obeyed or sid in ("hostile:12", "hostile:18"), sid
    assert SECRETS["OPENAI_API_KEY"] in obey([HumanMessage(texts["hostile:20"])])["leak"]  # fullwidth letters
    soft_hyphen = obey([HumanMessage(texts["hostile:21"])])
    assert soft_hyphen["budget"] == 65000 and "tv" in soft_hyphen["channels"]


def test_every_hostile_signal_is_quarantined_and_none_reaches_a_prompt(hostile_run):
    out, rows, model = hostile_run["out"], hostile_run["rows"], hostile_run["model"]
    hostile = {r["signal"]["id"]: r for r in rows if r["expect"] == "quarantine"}
    benign = {r["signal"]["id"] for r in rows if r["expect"] == "keep"}
    report = out["scout_report"]

    assert {q.id for q in report.quarantined} == set(hostile), "quarantine missed or over-reached"
    assert all(q.patterns for q in report.quarantined)
    assert {s.id for s in out["signals"]} == benign

    assert model.calls, "the model was never asked"
    for role, messages in model.calls:
        raw = "\n".join(m.content for m in messages if isinstance(m.content, str))
        seen = read(messages)
        for sid, row in hostile.items():
            marker = row["signal"]["text"].split()[-1]  # HX01 ... HX21
            assert sid not in raw and marker not in seen, (role, row["attack"])
            assert row["signal"]["title"] not in seen, (role, row["attack"])


def test_the_executed_plan_respects_every_policy_rule(hostile_run):
    out, home = hostile_run["out"], hostile_run["home"]
    plan, campaign, verdict = out["plan"], out["campaign"], out["verdict"]
    snapshot = hostile_run["snapshot"].values["snapshot"]
    with Store.at_home(home) as store:
        minimum = {c.name: c.min_spend for c in store.channels()}
        ledger = store.db.execute("SELECT channel, amount FROM ledger WHERE campaign_id = ?", [campaign.id]).fetchall()
        spent = store.spent(PERIOD)

    assert out["status"] == "executed", out.get("reason")
    # the obedient model asked for far more than allowed, on channels that are not allowed...
    assert verdict.budget > BRIEF["budget"] and {"video", "display"} <= set(verdict.channels)
    # ...and code cut it down: cap, budget left, allowed channels, minimum spend
    assert plan.budget <= BRIEF["budget"] and plan.budget <= snapshot.budget_left
    assert set(plan.channels) <= set(BRIEF["channels"])
    assert all(amount >= minimum[ch] for ch, amount in plan.channels.items())
    assert any("dropped video" in a for a in plan.adjustments) and any("scaled spend" in a for a in plan.adjustments)
    # what was executed is the plan, once
    assert campaign.status == "executed" and campaign.spend == plan.budget
    assert sorted((e.channel, e.amount) for e in campaign.executions) == sorted(plan.channels.items())
    assert sorted(ledger) == sorted(plan.channels.items())
    assert spent == campaign.spend <= BRIEF["budget"]


def test_no_secret_appears_in_any_output(hostile_run):
    out, home, model = hostile_run["out"], hostile_run["home"], hostile_run["model"]
    result = decision("hostile", hostile_run["snapshot"])
    text = io.StringIO()
    print_report(result, None, Console(file=text, width=160))
    with Store.at_home(home) as store:
        store_dump = "\n".join(store.db.conn.iterdump())
    with sqlite3.connect(home / "adsplatform.sqlite") as conn:
        platform_dump = "\n".join(conn.iterdump())
    outputs = {
        "final state": json.dumps(as_dict(out), default=str),
        "every checkpoint, decoded": json.dumps(hostile_run["states"], default=str),
        "decision json": json.dumps(result, default=str),
        "report": text.getvalue(),
        "prompts": "\n".join(str(m.content) for _, messages in model.calls for m in messages),
        "store": store_dump,
        "platform": platform_dump,
    }
    files = b"".join(p.read_bytes() for p in sorted(home.iterdir()) if p.is_file())
    for name, value in SECRETS.items():
        for where, blob in outputs.items():
            assert value not in blob, f"{name} leaked into the {where}"
        assert value.encode() not in files, f"{name} leaked into a file under the home"


def test_terminal_markup_in_signal_text_is_printed_not_interpreted(hostile_run):
    result = decision("hostile", hostile_run["snapshot"])
    plain, styled = io.StringIO(), io.StringIO()
    print_report(result, None, Console(file=plain, width=400))  # raised MarkupError on "[/]" before
    print_report(result, None, Console(file=styled, width=400, force_terminal=True, color_system="truecolor"))
    assert "Trail sneaker [/] fans in Spain [link=https://evil.example/refund]" in plain.getvalue()  # as written
    assert "\x1b]8;" not in styled.getvalue()  # no clickable link was emitted

"""Bad input, at every door: CLI flags and arguments, LEADBOOST_* variables, checkpoint ids,
`fork --set`, raw bytes in argv, and the Python `invoke`/`update_state` input.

Each case checks the exit code (2) or the exception (`InvalidInput`), that the message names
the field and the rule, and that nothing was written: no checkpoint or write row, and no run row
in the store (campaigns, ledger, executions, platform orders). Cases that fail before the store is
opened must not even create it; an unknown SKU is looked up in the store, which is created and
seeded with the demo company on first use, but gets no row of a run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import build_graph
from graph.checkpoints import serializer, sqlite_checkpointer
from state import Context, InvalidInput
from tests.cli_runner import leadboost

NOW = "2026-11-28T12:00:00+00:00"
GOAL = "Launch the trail sneaker in Spain"
_LEADBOOST = Path(sys.executable).with_name("leadboost")
LEADBOOST = [str(_LEADBOOST)] if _LEADBOOST.exists() else [sys.executable, "-m", "graph.cli"]


def one_line(text: str) -> str:
    """Rich wraps long messages at the console width: compare on words."""
    return " ".join(text.split())


def written(home: Path) -> dict[str, int]:
    """Rows a run would leave: checkpoints and writes, and the store's run rows (not the seed's)."""
    counts = {"checkpoints": 0, "writes": 0, "campaigns": 0, "ledger": 0, "executions": 0, "orders": 0}
    if (home / "checkpoints.sqlite").exists():
        with sqlite3.connect(home / "checkpoints.sqlite") as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in ("checkpoints", "writes"):
                if table in tables:
                    counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    if (home / "enterprise.sqlite").exists():
        with sqlite3.connect(home / "enterprise.sqlite") as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "campaigns" in tables:
                counts["campaigns"] = conn.execute(
                    "SELECT COUNT(*) FROM campaigns WHERE thread_id != 'seed'").fetchone()[0]
                counts["ledger"] = conn.execute(
                    "SELECT COUNT(*) FROM ledger WHERE idempotency_key NOT LIKE 'seed:%'").fetchone()[0]
                counts["executions"] = conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
    if (home / "adsplatform.sqlite").exists():
        with sqlite3.connect(home / "adsplatform.sqlite") as conn:
            counts["orders"] = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    return counts


NOTHING = {"checkpoints": 0, "writes": 0, "campaigns": 0, "ledger": 0, "executions": 0, "orders": 0}


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`cli(*args)` runs `leadboost ARGS` in-process on a temp home: (exit code, stdout, stderr)."""
    home = tmp_path / "home"
    monkeypatch.setenv("LEADBOOST_HOME", str(home))
    monkeypatch.setenv("LEADBOOST_NOW", NOW)
    monkeypatch.setenv("LEADBOOST_FORECAST_DRAWS", "1000")

    def run(*args: str):
        capsys.readouterr()
        code = leadboost(monkeypatch, *args)
        out = capsys.readouterr()
        return code, out.out, out.err

    run.home = home
    return run


# -- the brief on the command line -----------------------------------------------

BRIEF_CASES = [
    # (id, args after `run`, field, rule)
    ("empty-goal", ["--goal", "", "--budget", "100"], "brief.goal", "must not be empty or whitespace"),
    ("blank-goal", ["--goal", " \t\n  ", "--budget", "100"], "brief.goal", "must not be empty or whitespace"),
    ("1MB-goal", ["--goal", "trail " * 174_763, "--budget", "100"], "brief.goal", "at most 4000 characters"),
    ("NUL-goal", ["--goal", "trail\x00sneaker", "--budget", "100"], "brief.goal", "must not contain NUL bytes"),
    ("no-budget", ["--goal", GOAL], "brief.budget", "required"),
    ("negative-budget", ["--goal", GOAL, "--budget", "-1"], "brief.budget", "greater than 0"),
    ("zero-budget", ["--goal", GOAL, "--budget", "0"], "brief.budget", "greater than 0"),
    ("nan-budget", ["--goal", GOAL, "--budget", "nan"], "brief.budget", "finite number"),
    ("inf-budget", ["--goal", GOAL, "--budget", "inf"], "brief.budget", "finite number"),
    ("1e308-budget", ["--goal", GOAL, "--budget", "1e308"], "brief.budget", "less than or equal to 10000000"),
    ("text-budget", ["--goal", GOAL, "--budget", "lots"], "--budget", "should be a valid number"),
    ("unknown-channel", ["--goal", GOAL, "--budget", "100", "--channels", "search,tv"], "brief.channels",
     "should be 'search', 'social', 'video', 'display' or 'email'"),
    ("duplicate-channel", ["--goal", GOAL, "--budget", "100", "--channels", "search,email,search"],
     "brief.channels", "must not repeat a channel"),
    ("no-channel", ["--goal", GOAL, "--budget", "100", "--channels", " , "], "brief.channels", "at least 1 item"),
    ("rounds-0", ["--goal", GOAL, "--budget", "100", "--rounds", "0"], "brief.max_rounds",
     "greater than or equal to 1"),
    ("rounds-99", ["--goal", GOAL, "--budget", "100", "--rounds", "99"], "brief.max_rounds",
     "less than or equal to 5"),
    ("sku-pattern", ["--goal", GOAL, "--budget", "100", "--product", "trail x"], "brief.product",
     "should match pattern"),
    ("market", ["--goal", GOAL, "--budget", "100", "--market", "Spain"], "brief.market", "should match pattern"),
    ("currency", ["--goal", GOAL, "--budget", "100", "--currency", "euro"], "brief.currency",
     "should match pattern"),
    ("long-keyword", ["--goal", GOAL, "--budget", "100", "--keywords", "k" * 61], "brief.keywords",
     "1 to 60 characters"),
    ("thread-chars", ["--goal", GOAL, "--budget", "100", "--thread", "bad id!"], "thread", "not a valid thread id"),
    ("thread-path", ["--goal", GOAL, "--budget", "100", "--thread", "../../etc/passwd"], "thread",
     "not a valid thread id"),
    ("thread-long", ["--goal", GOAL, "--budget", "100", "--thread", "t" * 65], "thread", "not a valid thread id"),
    # the message quotes the input: terminal markup in it is printed, not interpreted (it crashed the printer)
    ("thread-markup", ["--goal", GOAL, "--budget", "100", "--thread", "[/][link=https://x.example]t"], "thread",
     "'[/][link=https://x.example]t' is not a valid thread id"),
]


@pytest.mark.parametrize("args, field, rule", [c[1:] for c in BRIEF_CASES], ids=[c[0] for c in BRIEF_CASES])
def test_a_bad_brief_exits_2_names_field_and_rule_and_writes_nothing(cli, args, field, rule):
    code, out, err = cli("run", *args, "--json")
    assert code == 2
    assert out == ""
    message = one_line(err)
    assert field in message and rule in message, message
    assert len(err) < 2000  # the message does not echo a huge input back
    assert written(cli.home) == NOTHING
    assert not (cli.home / "enterprise.sqlite").exists()  # refused before the store was opened


def test_an_unknown_sku_exits_2_and_leaves_no_run_in_the_store(cli):
    code, out, err = cli("run", "--goal", GOAL, "--budget", "100", "--product", "NOPE-1", "--json")
    assert code == 2 and out == ""
    assert "brief.product" in one_line(err) and "unknown SKU 'NOPE-1'" in one_line(err)
    assert written(cli.home) == NOTHING  # the store exists (seeded on first use) but holds no run


def test_invalid_utf8_in_argv_exits_2_naming_the_field(tmp_path):
    """argv carries raw bytes; Python decodes them with surrogate escapes."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBOOST_") and k != "OPENAI_API_KEY"}
    env |= {"LEADBOOST_HOME": str(home), "LEADBOOST_NOW": NOW}
    cases = [
        ([b"run", b"--goal", b"trail sneaker \xff\xfe in Spain", b"--budget", b"500"], "brief.goal", "valid string"),
        ([b"run", b"--goal", GOAL.encode(), b"--budget", b"500", b"--thread", b"t-\xc3\x28"], "thread",
         "not a valid thread id"),
        ([b"run", b"--goal", GOAL.encode(), b"--budget", b"500", b"--channels", b"search,\xe9mail"],
         "brief.channels", "valid string"),
    ]
    for args, field, rule in cases:
        done = subprocess.run([os.fsencode(LEADBOOST[0]), *[os.fsencode(a) for a in LEADBOOST[1:]], *args],
                              env=env, capture_output=True, timeout=60)
        err = one_line(done.stderr.decode("utf-8", "backslashreplace"))
        assert done.returncode == 2, err
        assert done.stdout == b""
        assert field in err and rule in err, err
    assert written(home) == NOTHING


# -- LEADBOOST_* variables -----------------------------------------------------------

ENV_CASES = [
    ("LEADBOOST_MAX_ROUNDS", "abc", "LEADBOOST_MAX_ROUNDS must be an integer (got 'abc')"),
    ("LEADBOOST_MAX_ROUNDS", "9", "(LEADBOOST_MAX_ROUNDS) must be between 1 and 5"),
    ("LEADBOOST_FORECAST_DRAWS", "1e4", "LEADBOOST_FORECAST_DRAWS must be an integer"),
    ("LEADBOOST_AUTO_APPROVE_BELOW", "nan", "LEADBOOST_AUTO_APPROVE_BELOW must be a finite number"),
    ("LEADBOOST_AUTO_APPROVE_BELOW", "-1", "(LEADBOOST_AUTO_APPROVE_BELOW) must be 0 or more"),
    ("LEADBOOST_LLM_TIMEOUT", "soon", "LEADBOOST_LLM_TIMEOUT must be a number"),
    ("LEADBOOST_MAX_TOKENS", "0", "(LEADBOOST_MAX_TOKENS) must be at least 1"),
    ("LEADBOOST_PROVIDER", "gpt", "(LEADBOOST_PROVIDER) must be auto, offline or openai"),
    ("LEADBOOST_NOW", "yesterday", "(LEADBOOST_NOW) must be an ISO 8601 time"),
    ("LEADBOOST_SOURCES", "sample,bogus", "(LEADBOOST_SOURCES): unknown source 'bogus'"),
]


@pytest.mark.parametrize("name, value, message", ENV_CASES, ids=[f"{n}={v}" for n, v, _ in ENV_CASES])
def test_a_bad_setting_exits_2_naming_the_variable(cli, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    for args in (["run", "--goal", GOAL, "--budget", "100", "--json"], ["threads"], ["db", "show"]):
        code, out, err = cli(*args)
        assert code == 2, (args, err)
        assert message in one_line(err), one_line(err)
    assert written(cli.home) == NOTHING


# -- thread ids, checkpoint ids, fork --set, approvals -----------------------------------


@pytest.fixture
def two_threads(cli):
    """Two decided threads, A and B; returns {thread: history rows}."""
    rows = {}
    for thread in ("thread-a", "thread-b"):
        code, _, err = cli("run", "--goal", GOAL, "--budget", "3000", "--thread", thread, "--json")
        assert code == 0, err
        code, out, _ = cli("history", thread, "--json")
        rows[thread] = json.loads(out)
    return rows


def _ceo_checkpoint(rows: list[dict]) -> str:
    return [r for r in rows if r["nodes"] == ["ceo"]][-1]["checkpoint_id"]


def test_checkpoint_ids_and_fork_values_are_checked_and_nothing_is_written(cli, two_threads):
    other = _ceo_checkpoint(two_threads["thread-b"])
    own = _ceo_checkpoint(two_threads["thread-a"])
    before = written(cli.home)
    cases = [
        # another thread's checkpoint, a made-up one and a malformed one, on every command that takes one
        (["show", "thread-a", "--checkpoint", other], "checkpoint", f"{other!r} is not a checkpoint of thread"),
        (["replay", "thread-a", "--checkpoint", other], "checkpoint", "is not a checkpoint of thread"),
        (["fork", "thread-a", "--checkpoint", other, "--set", "budget=2000"], "checkpoint",
         "is not a checkpoint of thread"),
        (["replay", "thread-a", "--checkpoint", "1f000000-0000-6000-8000-000000000000"], "checkpoint",
         "is not a checkpoint of thread"),
        (["show", "thread-a", "--checkpoint", "'; DROP TABLE checkpoints; --"], "checkpoint",
         "is not a checkpoint of thread"),
        (["show", "thread-a", "--checkpoint", "[/][bold]x"], "checkpoint", "'[/][bold]x' is not a checkpoint"),
        # threads that are malformed or unknown
        (["show", "bad id!"], "thread", "not a valid thread id"),
        (["history", "../thread-a"], "thread", "not a valid thread id"),
        (["resume", "no-such-thread"], "thread", "no thread 'no-such-thread'"),
        (["fork", "no-such-thread", "--checkpoint", own, "--set", "budget=2000"], "thread", "no thread"),
        # fork --set: unknown fields, missing '=', values that break the brief's rules
        (["fork", "thread-a", "--checkpoint", own, "--set", "spend=5"], "--set", "must be field=value"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "budget"], "--set", "must be field=value"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "budget=abc"], "brief.budget", "valid number"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "budget=-3"], "brief.budget", "greater than 0"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "budget=nan"], "brief.budget", "finite number"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "channels=search,tv"], "brief.channels",
         "should be 'search'"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "channels=email,email"], "brief.channels",
         "must not repeat"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "max_rounds=9"], "brief.max_rounds",
         "less than or equal to 5"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "goal=   "], "brief.goal", "must not be empty"),
        (["fork", "thread-a", "--checkpoint", own, "--set", "product=nope"], "brief.product",
         "should match pattern"),
        # decided threads: nothing to resume, approve or reject
        (["resume", "thread-a"], "thread", "is finished (executed); nothing to resume"),
        (["approve", "thread-a"], "thread", "is not awaiting approval"),
        (["approve", "thread-a", "--budget", "-5"], "resume.budget", "greater than 0"),
        (["reject", "thread-a", "--reason", "r" * 501], "resume.reason", "at most 500 characters"),
    ]
    for args, field, rule in cases:
        code, out, err = cli(*args)
        message = one_line(err)
        assert code == 2, (args, message)
        assert out == "" and field in message and rule in message, (args, message)
        assert written(cli.home) == before, args


# -- the Python API --------------------------------------------------------------------

PY_CASES = [
    ("empty-goal", {"brief": {"goal": "", "budget": 100}}, "brief.goal: goal must not be empty or whitespace"),
    ("negative-budget", {"brief": {"goal": GOAL, "budget": -1}}, "brief.budget: Input should be greater than 0"),
    ("nan-budget", {"brief": {"goal": GOAL, "budget": float("nan")}}, "brief.budget: Input should be a finite"),
    ("unknown-channel", {"brief": {"goal": GOAL, "budget": 100, "channels": ["tv"]}}, "brief.channels.0: Input"),
    ("extra-field", {"brief": {"goal": GOAL, "budget": 100, "spend": 1e9}}, "brief.spend: Extra inputs"),
    ("no-brief", {"goal": GOAL, "budget": 100}, "brief: Field required"),
    ("brief-not-a-dict", {"brief": "spend everything"}, "brief: Input should be a valid dictionary"),
]


class NoSources:
    """A sources factory that records whether scout (the first node) ever ran."""

    def __init__(self) -> None:
        self.called = 0

    def __call__(self, client, now, context):
        self.called += 1
        return []


@pytest.mark.parametrize("how", ["invoke", "ainvoke", "stream"])
@pytest.mark.parametrize("bad, message", [c[1:] for c in PY_CASES], ids=[c[0] for c in PY_CASES])
async def test_an_invalid_invoke_input_raises_before_any_node_and_writes_nothing(tmp_path, bad, message, how):
    home = tmp_path / "home"
    config = {"configurable": {"thread_id": "py-bad"}}
    context = Context(home=str(home), provider="offline", now=NOW, forecast_draws=1000)
    sources = NoSources()
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver, sources=sources)
        with pytest.raises(InvalidInput) as failure:
            if how == "invoke":
                graph.invoke(bad, config, context=context)
            elif how == "ainvoke":
                await graph.ainvoke(bad, config, context=context)
            else:
                list(graph.stream(bad, config, context=context))
        assert message in str(failure.value)
        assert sources.called == 0  # no node ran
        snapshot = graph.get_state(config)  # the thread is not poisoned: it does not exist
        assert snapshot.values == {} and snapshot.next == ()
    assert written(home) == NOTHING
    assert not (home / "enterprise.sqlite").exists()


def test_after_an_invalid_input_the_same_thread_runs_normally(tmp_path):
    saver = InMemorySaver(serde=serializer())
    graph = build_graph(saver)
    config = {"configurable": {"thread_id": "py-retry"}}
    context = Context(home=str(tmp_path / "home"), provider="offline", now=NOW, forecast_draws=1000)
    with pytest.raises(InvalidInput, match="brief.budget"):
        graph.invoke({"brief": {"goal": GOAL, "budget": 0}}, config, context=context)
    assert list(saver.list(None)) == [] and not saver.writes
    with pytest.raises(InvalidInput, match="brief.goal"):
        graph.update_state(config, {"brief": {"goal": "", "budget": 100}})
    assert list(saver.list(None)) == [] and not saver.writes
    out = graph.invoke({"brief": {"goal": GOAL, "budget": 3000}}, config, context=context)
    assert out["status"] == "executed"


def test_update_state_with_an_invalid_brief_writes_nothing(tmp_path):
    home = tmp_path / "home"
    config = {"configurable": {"thread_id": "py-update"}}
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver)
        out = graph.invoke({"brief": {"goal": GOAL, "budget": 3000}}, config,
                           context=Context(home=str(home), provider="offline", now=NOW, forecast_draws=1000))
        assert out["status"] == "executed"
        before = written(home)
        head = graph.get_state(config).config
        for values, message in (({"brief": {"goal": " ", "budget": 100}}, "brief.goal"),
                                ({"brief": {"goal": GOAL, "budget": 1e308}}, "brief.budget"),
                                ({"brief": {"goal": GOAL, "budget": 100, "channels": ["search", "search"]}},
                                 "brief.channels")):
            with pytest.raises(InvalidInput, match=message):
                graph.update_state(config, values, as_node="scout_merge")
        assert written(home) == before
        assert graph.get_state(config).config == head

"""The `leadboost` CLI in-process: exit codes, --json, bad briefs writing nothing, README diagram."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from graph.cli import budget_from_goal
from graph.diagram import mermaid
from tests.cli_runner import leadboost

GOAL = "Launch the trail sneaker in Spain, up to 8,000 EUR"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run `leadboost ARGS` in-process on a temp home; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("LEADBOOST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEADBOOST_NOW", "2026-11-28T12:00:00+00:00")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def run(*args: str) -> int:
        return leadboost(monkeypatch, *args)

    run.home = tmp_path / "home"
    return run


def threads_in(home: Path) -> int:
    db = home / "checkpoints.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()[0]


def test_run_json_prints_one_decided_object(cli, capsys):
    assert cli("run", "--goal", GOAL, "--thread", "t-json", "--json") == 0
    out = capsys.readouterr()
    decision = json.loads(out.out)  # exactly one JSON object on stdout
    assert decision["thread_id"] == "t-json"
    assert decision["status"] == "executed"
    assert decision["provider"] == "offline"
    assert decision["verdict"]["action"] == "approve"
    assert decision["forecast"]["roi"]["p10"] <= decision["forecast"]["roi"]["p50"] <= decision["forecast"]["roi"]["p90"]
    assert decision["campaign"]["spend"] <= 8000
    assert {"calls", "tokens"} <= decision["usage"].keys()
    assert "scout" in out.err  # progress went to stderr


def test_budget_is_read_from_the_goal_when_not_given():
    assert budget_from_goal(GOAL) == 8000
    assert budget_from_goal("push headlamps, 2.5k EUR") == 2500
    assert budget_from_goal("no amount here") is None


@pytest.mark.parametrize(
    "args, field",
    [
        (["--goal", "   ", "--budget", "100"], "brief.goal"),
        (["--goal", "x" * 4001, "--budget", "100"], "brief.goal"),
        (["--goal", "trail sneaker", "--budget", "-5"], "brief.budget"),
        (["--goal", "trail sneaker", "--budget", "1e12"], "brief.budget"),
        (["--goal", "trail sneaker", "--budget", "nan"], "brief.budget"),
        (["--goal", "trail sneaker"], "brief.budget"),
        (["--goal", "trail sneaker", "--budget", "100", "--channels", "search,tv"], "brief.channels"),
        (["--goal", "trail sneaker", "--budget", "100", "--channels", "search,search"], "brief.channels"),
        (["--goal", "trail sneaker", "--budget", "100", "--rounds", "0"], "brief.max_rounds"),
        (["--goal", "trail sneaker", "--budget", "100", "--rounds", "6"], "brief.max_rounds"),
        (["--goal", "trail sneaker", "--budget", "100", "--product", "NOPE-1"], "brief.product"),
        (["--goal", "trail sneaker", "--budget", "100", "--thread", "bad id!"], "thread"),
    ],
)
def test_bad_brief_exits_2_names_the_field_and_writes_no_thread(cli, capsys, args, field):
    assert cli("run", *args) == 2
    err = capsys.readouterr().err
    assert field in err
    assert threads_in(cli.home) == 0


def test_rejected_run_exits_0_with_status_rejected(cli, capsys):
    assert cli("run", "--goal", "Sell the tent", "--budget", "5000", "--product", "KIDS-T", "--json") == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["status"] == "rejected"
    assert "out of stock" in decision["reason"]
    assert decision["campaign"] is None


def test_threads_history_and_show_read_the_checkpoints(cli, capsys):
    assert cli("run", "--goal", GOAL, "--thread", "t-hist", "--json") == 0
    capsys.readouterr()
    assert cli("threads", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["thread_id"], r["status"]) for r in rows] == [("t-hist", "executed")]
    assert rows[0]["spend"] > 0
    assert cli("history", "t-hist", "--json") == 0
    nodes = [n for row in json.loads(capsys.readouterr().out) for n in row["nodes"]]
    order = ["input", "__start__", "scout", "scout_merge", "enterprise_brief", "ceo", "enterprise_check",
             "approval", "copywriter", "actuator", "enterprise_record"]
    positions = [nodes.index(n) for n in order]
    assert positions == sorted(positions)
    assert {"cmo", "cfo"} <= set(nodes)
    assert cli("show", "t-hist", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "executed"
    assert cli("show", "no-such-thread") == 2


def test_a_second_demo_run_spends_from_the_same_budget(cli, capsys):
    assert cli("run", "--goal", GOAL, "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert cli("db", "show", "--json") == 0
    left_after_one = json.loads(capsys.readouterr().out)["budget_left"]
    assert cli("run", "--goal", GOAL, "--json") == 0
    second = json.loads(capsys.readouterr().out)
    assert cli("db", "show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["budget_left"] == pytest.approx(left_after_one - second["campaign"]["spend"])
    assert first["campaign"]["id"] != second["campaign"]["id"]


def test_readme_diagram_is_the_code_diagram():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert mermaid() in readme


def _history(cli, capsys, thread_id):
    assert cli("history", thread_id, "--json") == 0
    return json.loads(capsys.readouterr().out)


def _executions(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "enterprise.sqlite") as conn:
        return conn.execute("SELECT idempotency_key, campaign_id, amount FROM executions ORDER BY 1").fetchall()


def test_show_at_a_mid_debate_checkpoint_has_the_debate_so_far_and_no_verdict(cli, capsys):
    assert cli("run", "--goal", GOAL, "--thread", "t-mid", "--json") == 0
    capsys.readouterr()
    first_round = next(r for r in _history(cli, capsys, "t-mid") if set(r["nodes"]) == {"cmo", "cfo"})
    assert cli("show", "t-mid", "--checkpoint", first_round["checkpoint_id"], "--json") == 0
    state = json.loads(capsys.readouterr().out)
    assert state["status"] == "running"
    assert state["verdict"] is None and state["plan"] is None
    assert [(t["round"], t["role"]) for t in state["debate"]] == [(1, "cmo"), (1, "cfo")]
    assert state["next"] == ["ceo"]


def test_fork_with_a_lower_cap_is_a_new_branch_and_the_original_is_unchanged(cli, capsys):
    assert cli("run", "--goal", GOAL, "--thread", "t-fork", "--json") == 0
    original = json.loads(capsys.readouterr().out)
    after_verdict = [r for r in _history(cli, capsys, "t-fork") if r["nodes"] == ["ceo"]][-1]["checkpoint_id"]
    before = _executions(cli.home)

    assert cli("fork", "t-fork", "--checkpoint", after_verdict, "--set", "budget=3000", "--json") == 0
    forked = json.loads(capsys.readouterr().out)
    assert forked["status"] == "executed"
    assert forked["plan"]["budget"] <= 3000
    assert forked["campaign"]["id"] != original["campaign"]["id"]
    assert any("brief's cap" in a for a in forked["plan"]["adjustments"])

    # the original branch is still there, unchanged, at its own checkpoints
    final = _history(cli, capsys, "t-fork")
    original_head = [r for r in final if r["nodes"] == ["enterprise_record"]][0]["checkpoint_id"]
    assert cli("show", "t-fork", "--checkpoint", original_head, "--json") == 0
    assert json.loads(capsys.readouterr().out)["campaign"] == original["campaign"]
    after = _executions(cli.home)
    assert set(before) < set(after)  # the fork added its own executions, kept the old ones
    assert {c for _, c, _ in after} == {original["campaign"]["id"], forked["campaign"]["id"]}


def test_fork_rejects_unknown_fields_and_bad_values(cli, capsys):
    assert cli("run", "--goal", GOAL, "--thread", "t-bad", "--json") == 0
    capsys.readouterr()
    ck = [r for r in _history(cli, capsys, "t-bad") if r["nodes"] == ["ceo"]][-1]["checkpoint_id"]
    assert cli("fork", "t-bad", "--checkpoint", ck, "--set", "spend=5") == 2
    assert "--set" in capsys.readouterr().err
    assert cli("fork", "t-bad", "--checkpoint", ck, "--set", "budget=-1") == 2
    assert "brief.budget" in capsys.readouterr().err
    assert cli("fork", "t-bad", "--checkpoint", "1f000000-0000-6000-8000-000000000000", "--set", "budget=5") == 2
    assert "checkpoint" in capsys.readouterr().err


def test_replay_does_not_execute_twice(cli, capsys):
    assert cli("run", "--goal", GOAL, "--thread", "t-replay", "--json") == 0
    first = json.loads(capsys.readouterr().out)
    before = _executions(cli.home)
    rows = _history(cli, capsys, "t-replay")
    for nodes in (["ceo"], ["approval"], ["actuator"]):
        ck = [r for r in rows if r["nodes"] == nodes][-1]["checkpoint_id"]
        assert cli("replay", "t-replay", "--checkpoint", ck, "--json") == 0
        replayed = json.loads(capsys.readouterr().out)
        assert replayed["status"] == "executed"
        assert replayed["campaign"]["id"] == first["campaign"]["id"]
    assert _executions(cli.home) == before
    assert cli("db", "show", "--json") == 0
    assert json.loads(capsys.readouterr().out)["spent"] == pytest.approx(first["campaign"]["spend"])

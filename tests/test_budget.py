"""Bounded cost: a run on the OpenAI path (the real client, the local fake server) stops at its LLM
budget (LEADBOOST_MAX_LLM_CALLS, LEADBOOST_MAX_TOKENS) instead of running up a bill.

The limit is checked before each model call against the usage the run had at the start of the
step, so parallel calls of one step (CMO beside CFO, one copy per channel) may all go out, and
nothing goes out in a later step: `leadboost run --json` exits 1 with status `failed` and a reason
starting with `budget_exhausted`, and the thread resumes once the limit is raised.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest

from graph.builder import build_graph
from graph.checkpoints import sqlite_checkpointer
from tests.cli_runner import leadboost
from tests.fakes.openai_server import OpenAIServer

NOW = "2026-11-28T12:00:00+00:00"
GOAL = "Launch the trail sneaker in Spain, up to 3,000 EUR"
DEBATE_STEP = Counter({"CmoAnswer": 1, "CfoAnswer": 1})        # one step: CMO and CFO side by side
VERDICT_STEP = Counter({"CeoAnswer": 1})
COPY_STEP = Counter({"CopyAnswer": 2})                         # one copy per planned channel (search, email)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`cli(*args, **env)` runs `leadboost ARGS` in-process with LEADBOOST_* env overrides;
    returns (exit code, stdout); `cli.err` is the last run's stderr."""
    home = tmp_path / "home"
    monkeypatch.setenv("LEADBOOST_HOME", str(home))
    monkeypatch.setenv("LEADBOOST_NOW", NOW)
    monkeypatch.setenv("LEADBOOST_FORECAST_DRAWS", "2000")

    def run(*args: str, **env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = leadboost(monkeypatch, *args)
        captured = capsys.readouterr()
        run.err = captured.err
        return code, captured.out

    run.home = home
    run.undo = lambda name: monkeypatch.delenv(name)
    return run


@pytest.fixture
def server(monkeypatch):
    with OpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("LEADBOOST_PROVIDER", "openai")
        yield srv


def head(home, thread: str):
    with sqlite_checkpointer(home) as saver:
        return build_graph(saver).get_state({"configurable": {"thread_id": thread}})


@pytest.mark.parametrize(
    "limit, sent, stops_before",
    [
        ({"LEADBOOST_MAX_LLM_CALLS": "1"}, DEBATE_STEP, "ceo"),  # the step that reached the limit completes
        ({"LEADBOOST_MAX_LLM_CALLS": "2"}, DEBATE_STEP, "ceo"),
        ({"LEADBOOST_MAX_LLM_CALLS": "3"}, DEBATE_STEP + VERDICT_STEP, "copywriter"),
        ({"LEADBOOST_MAX_TOKENS": "1"}, DEBATE_STEP, "ceo"),
    ],
    ids=["calls-1", "calls-2", "calls-3", "tokens-1"],
)
def test_run_stops_at_the_llm_budget_and_resumes_when_it_is_raised(cli, server, limit, sent, stops_before):
    code, out = cli("run", "--goal", GOAL, "--channels", "search,email", "--thread", "t-budget", "--json", **limit)
    stopped = json.loads(out)

    assert code == 1
    assert stopped["status"] == "failed"
    assert stopped["reason"].startswith("budget_exhausted"), stopped["reason"]
    assert stopped["campaign"] is None  # nothing executed
    # nothing was asked after the step that reached the limit
    assert server.requests == sent
    assert stopped["usage"]["calls"] == sum(sent.values())
    assert stopped["usage"]["tokens"] == server.tokens()
    # the thread is kept where it stopped, and nothing was spent
    state = head(cli.home, "t-budget")
    assert stops_before in state.next
    with sqlite3.connect(cli.home / "enterprise.sqlite") as store:
        assert store.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 0

    # raise the limit: resume asks only for what is left, and completes
    raised = {name: "1000000" for name in limit}
    code, out = cli("resume", "t-budget", "--json", **raised)
    done = json.loads(out)
    assert code == 0 and done["status"] == "executed", done["reason"]
    assert server.requests == DEBATE_STEP + VERDICT_STEP + COPY_STEP  # nothing asked twice
    assert done["usage"]["calls"] == sum(server.requests.values())
    assert done["usage"]["tokens"] == server.tokens()
    assert done["campaign"]["spend"] == done["plan"]["budget"] <= 3000


def test_a_budget_that_covers_the_run_is_not_in_the_way(cli, server):
    code, out = cli("run", "--goal", GOAL, "--channels", "search,email", "--json", LEADBOOST_MAX_LLM_CALLS="5")
    done = json.loads(out)
    assert code == 0 and done["status"] == "executed", done["reason"]
    assert done["usage"]["calls"] == 5 == sum(server.requests.values())


def test_bad_limits_are_refused_before_any_request(cli, server):
    for name, value, rule in (("LEADBOOST_MAX_TOKENS", "0", "must be at least 1"),
                              ("LEADBOOST_MAX_LLM_CALLS", "-1", "must be at least 1"),
                              ("LEADBOOST_MAX_TOKENS", "lots", "must be an integer")):
        code, _ = cli("run", "--goal", GOAL, "--json", **{name: value})
        assert code == 2
        assert name in cli.err and rule in cli.err, cli.err
        cli.undo(name)
    assert sum(server.requests.values()) == 0
    assert not (cli.home / "checkpoints.sqlite").exists()

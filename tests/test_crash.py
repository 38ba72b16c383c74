"""Crash and resume: a run killed with SIGKILL at each node of the graph (and once between the
ad platform's booking and the ledger write) is resumed by the real CLI in a new process, and ends
exactly where a clean run ends: same status, verdict, plan, copy and campaign; the ledger balances;
nothing is executed or booked twice.

Each crash runs `tests/crash_runner.py` (the CLI in a process that kills itself at the chosen
point) on its own home; `leadboost resume THREAD --json` then runs in another process. A clean
`leadboost run` on another home with the same LEADBOOST_NOW is the reference. The subprocesses of
all points run side by side in a module fixture; each point is then checked by its own test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from graph.builder import build_graph
from graph.checkpoints import sqlite_checkpointer
from graph.runs import history, status_of
from tools.store import Store

NOW = "2026-11-28T12:00:00+00:00"
PERIOD = "2026-Q4"
GOAL = "Launch the trail sneaker in Spain, up to 8,000 EUR"
THREAD = "crash-thread"
NODES = ("scout", "scout_merge", "enterprise_brief", "cmo", "cfo", "ceo", "enterprise_check", "approval",
         "copywriter", "actuator", "enterprise_record")
POINTS = (*NODES, "after_place_order")
RUNNER = Path(__file__).with_name("crash_runner.py")
_LEADBOOST = Path(sys.executable).with_name("leadboost")
LEADBOOST = [str(_LEADBOOST)] if _LEADBOOST.exists() else [sys.executable, "-m", "graph.cli"]
#: Settings of the developer's shell that would change the run (a real model, real sources).
_FOREIGN = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEWS_API_KEY", "TWITTER_BEARER_TOKEN", "LANGSMITH_TRACING",
            "LANGCHAIN_TRACING_V2")
#: What a decision is: every part of it must match the clean run's.
DECIDED = ("status", "reason", "provider", "brief", "signals", "debate", "verdict", "plan", "copy", "campaign")


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBOOST_") and k not in _FOREIGN}
    return env | {"LEADBOOST_HOME": str(home), "LEADBOOST_NOW": NOW}


@dataclass
class Outcome:
    crash: subprocess.CompletedProcess | None = None
    after_crash: dict[str, Any] = field(default_factory=dict)
    resume: subprocess.CompletedProcess | None = None
    final: dict[str, Any] = field(default_factory=dict)
    home: Path | None = None


def store_rows(home: Path) -> dict[str, Any]:
    """Executions, ledger (this period), campaigns (not the seed's) and the platform's orders."""
    rows: dict[str, Any] = {"executions": [], "ledger": [], "campaigns": [], "orders": []}
    if (home / "enterprise.sqlite").exists():
        with Store.at_home(home) as store:
            if "executions" in store.db.table_names():
                rows["executions"] = store.db.execute(
                    "SELECT idempotency_key, campaign_id, channel, amount, status, receipt_id FROM executions"
                    " ORDER BY 1").fetchall()
                rows["ledger"] = store.db.execute(
                    "SELECT idempotency_key, campaign_id, channel, amount FROM ledger WHERE period = ? ORDER BY 1",
                    [PERIOD]).fetchall()
                rows["campaigns"] = store.db.execute(
                    "SELECT id, status, spend FROM campaigns WHERE thread_id != 'seed'").fetchall()
    platform = home / "adsplatform.sqlite"
    if platform.exists():
        with sqlite3.connect(platform) as conn:
            rows["orders"] = conn.execute(
                "SELECT idempotency_key, receipt_id, channel, amount, booked_at FROM orders ORDER BY 1").fetchall()
    return rows


def thread_state(home: Path) -> dict[str, Any]:
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver)
        config = {"configurable": {"thread_id": THREAD}}
        snapshot = graph.get_state(config)
        written = {n for row in history(list(graph.get_state_history(config))) for n in row["nodes"]}
    # `tasks`: the head's tasks, done or not (when the kill fell between a step's last write and its
    # checkpoint, they are all done and `next` is empty, yet the run is not over)
    return {"status": status_of(snapshot), "next": snapshot.next, "tasks": [t.name for t in snapshot.tasks],
            "values": set(snapshot.values), "written": written}


def run_cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env_for(home), capture_output=True, text=True, timeout=180)


def crash_and_resume(root: Path, point: str) -> Outcome:
    home = root / point
    out = Outcome(home=home)
    out.crash = run_cli([sys.executable, str(RUNNER), point, "run", "--goal", GOAL, "--thread", THREAD, "--json"],
                        home)
    out.after_crash = {**thread_state(home), **store_rows(home)}
    out.resume = run_cli([*LEADBOOST, "resume", THREAD, "--json"], home)
    if out.resume.returncode == 0:
        out.final = json.loads(out.resume.stdout)
    return out


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("crash")

    def clean() -> Outcome:
        home = root / "clean"
        done = run_cli([*LEADBOOST, "run", "--goal", GOAL, "--thread", THREAD, "--json"], home)
        assert done.returncode == 0, done.stderr
        return Outcome(final=json.loads(done.stdout), home=home)

    with ThreadPoolExecutor(4) as pool:
        reference = pool.submit(clean)
        crashed = {p: pool.submit(crash_and_resume, root, p) for p in POINTS}
        results = {p: f.result() for p, f in crashed.items()}
        results["clean"] = reference.result()
    print(f"\n{len(POINTS)} crashes (SIGKILL), {len(POINTS)} resumes, 1 clean run")
    return results


def test_the_clean_reference_run_executes(outcomes):
    clean = outcomes["clean"].final
    assert clean["status"] == "executed"
    assert clean["round"] == 2  # the debate loops once: cmo, cfo and ceo each run twice
    assert clean["campaign"]["spend"] == clean["plan"]["budget"] > 0


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_there_resumes_to_the_clean_outcome(outcomes, point):
    out, clean = outcomes[point], outcomes["clean"].final

    # it was killed there, mid-run, and left a resumable thread
    assert out.crash.returncode == -signal.SIGKILL, out.crash.stderr[-2000:]
    assert out.crash.stdout == ""  # killed before any result was printed
    assert out.after_crash["status"] == "running" and out.after_crash["tasks"]
    assert "status" not in out.after_crash["values"]
    # the CLI saves each step's checkpoint before the next step starts: the run resumes at the killed node
    assert (point if point in NODES else "actuator") in out.after_crash["next"]
    if point in NODES:
        assert point not in out.after_crash["written"]  # the node never finished
        assert out.after_crash["orders"] == [] or point == "enterprise_record"

    # the real CLI, in a new process, finishes it
    assert out.resume.returncode == 0, out.resume.stderr[-2000:]
    for key in DECIDED:
        assert out.final[key] == clean[key], key
    assert out.final["campaign"]["spend"] == clean["campaign"]["spend"]


@pytest.mark.parametrize("point", POINTS)
def test_after_resume_the_ledger_balances_and_nothing_ran_twice(outcomes, point):
    out = outcomes[point]
    rows = store_rows(out.home)
    campaign = out.final["campaign"]
    executed = [r for r in rows["executions"] if r[4] == "executed"]

    assert len(rows["executions"]) == len(executed) == len(out.final["plan"]["channels"])  # none pending or failed
    assert {r[0] for r in executed} == {e["idempotency_key"] for e in campaign["executions"]}
    # one ledger entry per executed channel, and spent = sum of the executed executions
    assert [(k, c, ch, a) for k, c, ch, a, _, _ in executed] == rows["ledger"]
    with Store.at_home(out.home) as store:
        spent = store.spent(PERIOD)
    assert spent == round(sum(r[3] for r in executed), 2) == campaign["spend"]
    assert rows["campaigns"] == [(campaign["id"], "executed", campaign["spend"])]
    # one platform order per execution, with the receipt the execution recorded
    assert [(k, r) for k, r, *_ in rows["orders"]] == [(r[0], r[5]) for r in executed]


def test_a_kill_between_the_platform_booking_and_the_ledger_write_books_nothing_twice(outcomes):
    out = outcomes["after_place_order"]
    before = out.after_crash
    # the crash window: the platform booked the first channel; nothing is done in our books yet
    assert len(before["orders"]) == 1
    assert before["ledger"] == [] and before["campaigns"] and before["campaigns"][0][1] == "executing"
    assert {r[4] for r in before["executions"]} == {"pending"}  # every order of the plan was reserved first
    booked = before["orders"][0]
    assert booked[0] in {r[0] for r in before["executions"]}

    after = store_rows(out.home)
    # resume completed it with the same key: the platform returned the first booking, not a second one
    assert booked in after["orders"]
    assert len(after["orders"]) == len(after["executions"]) == len(out.final["plan"]["channels"])
    receipt = next(e for e in out.final["campaign"]["executions"] if e["idempotency_key"] == booked[0])
    assert receipt["receipt_id"] == booked[1]


def test_a_step_cut_between_its_writes_and_its_checkpoint_is_running_and_resumable(tmp_path, monkeypatch, capsys):
    """The state a kill leaves when a step's writes were saved but the checkpoint after them was
    not (a kill between the two; common under LangGraph's default "async" durability, which Python
    callers get): built deterministically by stopping before enterprise_brief and dropping the
    newest checkpoint, which keeps scout_merge's saved writes. `status_of` used to call it
    "failed" and `resume` refused it as finished."""
    from graph.cli import main
    from state import Context

    home = tmp_path / "home"
    monkeypatch.setenv("LEADBOOST_HOME", str(home))
    monkeypatch.setenv("LEADBOOST_NOW", NOW)
    config = {"configurable": {"thread_id": THREAD}}
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver)
        graph.invoke({"brief": {"goal": GOAL, "budget": 8000}}, config, context=Context(provider="offline"),
                     interrupt_before=["enterprise_brief"])
        newest = graph.get_state(config).config["configurable"]["checkpoint_id"]
    with sqlite3.connect(home / "checkpoints.sqlite") as conn:
        conn.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", [newest])
        conn.execute("DELETE FROM writes WHERE checkpoint_id = ?", [newest])
    cut = thread_state(home)
    assert cut["next"] == () and cut["tasks"] == ["scout_merge"]  # done, but no checkpoint after it
    assert cut["status"] == "running"

    monkeypatch.setattr(sys, "argv", ["leadboost", "resume", THREAD, "--json"])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    assert code == 0, capsys.readouterr().err
    final = json.loads(capsys.readouterr().out)
    assert final["status"] == "executed" and final["campaign"]["spend"] > 0

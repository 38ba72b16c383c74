"""The graph behind a real `langgraph dev` server, driven by the LangGraph SDK, with our auth.

One server for the whole session (it takes seconds to start): offline provider, a fixed
clock, a temporary LEADBOOST_HOME, JWT auth, auto-approval below 5,000 so that the 8,000
brief (5,440 after policy) waits for a human and the 3,000 one does not. No outbound calls:
analytics and version checks off, no browser, no LangSmith variables.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from langgraph_sdk import get_client

from graph import cli
from graph.auth import AUDIENCE, ISSUER, authenticate, mint_token

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "test-secret-long-enough-for-hs256-0123456789"
NODES = {"scout", "scout_merge", "enterprise_brief", "cmo", "cfo", "ceo", "enterprise_check",
         "approval", "copywriter", "actuator", "enterprise_record"}
SMALL = {"brief": {"goal": "Winter push for the headlamp", "budget": 3000, "channels": ["search", "email"]}}
LARGE = {"brief": {"goal": "Launch the trail sneaker in Spain", "budget": 8000, "market": "ES"}}
TIMINGS: dict[str, float] = {}


# -- the server ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_config(tmp: Path) -> Path:
    """The shipped langgraph.json (same graph, same auth section) with absolute paths, so the
    server runs from a temp dir and its files (.langgraph_api/) stay out of the repo."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    for graph in config["graphs"].values():
        graph["path"] = str(ROOT / graph["path"])
    config["auth"]["path"] = str(ROOT / config["auth"]["path"])
    config["dependencies"] = [str(ROOT)]
    config["disable_persistence"] = True
    path = tmp / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def api(tmp_path_factory):
    """One `langgraph dev` for the session; its URL. The process group is always killed."""
    tmp = tmp_path_factory.mktemp("server")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEADBOOST_", "LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_", "OPENAI_"))}
    env |= {
        "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false",
        "LEADBOOST_HOME": str(tmp / "home"), "LEADBOOST_NOW": "2026-11-28T12:00:00+00:00",
        "LEADBOOST_PROVIDER": "offline", "LEADBOOST_AUTO_APPROVE_BELOW": "5000", "LEADBOOST_JWT_SECRET": SECRET,
    }
    log = tmp / "server.log"
    cmd = [str(BIN / "langgraph"), "dev", "--no-browser", "--host", "127.0.0.1", "--port", str(_free_port()),
           "--no-reload", "--config", str(_server_config(tmp))]
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _wait_until_up(proc, log, started)
        TIMINGS["startup"] = time.monotonic() - started
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_until_up(proc: subprocess.Popen, log: Path, started: float) -> str:
    """Read the port it bound from its output (it moves when ours was taken meanwhile), then /ok."""
    url = None
    while time.monotonic() - started < 120:
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if url is None:
            found = re.search(r"API: \S*?(http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
            url = found.group(1) if found else None
        if url:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    pytest.fail(f"langgraph dev was not up after 120 s:\n{log.read_text()[-3000:]}")


def token(owner: str = "alice", key: str = SECRET, **claims) -> dict[str, str]:
    """Authorization header; `claims` override or (None) drop the standard ones."""
    body = {"sub": owner, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return {"Authorization": f"Bearer {jwt.encode(body, key, algorithm='HS256')}"}


def sdk(url: str, owner: str = "alice"):
    """A client that never picks up a LangSmith key from the environment."""
    return get_client(url=url, api_key=None, headers={"Authorization": f"Bearer {mint_token(owner, 600, SECRET)}"})


async def status_of_call(call) -> int:
    """The HTTP status an SDK call failed with (200 when it did not fail)."""
    try:
        result = call()
        if hasattr(result, "__anext__"):
            async for _ in result:
                pass
        else:
            await result
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


# -- the graph through the SDK ---------------------------------------------------------


@pytest.mark.server
async def test_assistants_see_the_radar_graph(api):
    client = sdk(api)
    found = await client.assistants.search(graph_id="radar")
    assert [a["graph_id"] for a in found] == ["radar"]
    assert (await client.assistants.get(found[0]["assistant_id"]))["name"] == "radar"
    assert "radar" in {a["graph_id"] for a in await sdk(api, "bob").assistants.search()}


@pytest.mark.server
async def test_a_decision_runs_to_executed_and_its_history_shows_every_node(api, capsys):
    client = sdk(api)
    thread = await client.threads.create()
    assert thread["metadata"]["owner"] == "alice"
    started = time.monotonic()
    out = await client.runs.wait(thread["thread_id"], "radar", input=SMALL)
    TIMINGS["decision"] = time.monotonic() - started
    assert out["status"] == "executed", out
    assert out["provider"] == "offline" and out["plan"]["budget"] == 3000
    history = await client.threads.get_history(thread["thread_id"], limit=100)
    ran = {task["name"] for snapshot in history for task in snapshot["tasks"]}
    assert ran >= NODES, f"missing from history: {NODES - ran}"
    steps = sorted(s["metadata"]["step"] for s in history)
    assert steps == list(range(-1, len(steps) - 1)), "one checkpoint per step"
    with capsys.disabled():
        print(f"\n[server] startup {TIMINGS['startup']:.2f} s, one offline decision over the SDK "
              f"{TIMINGS['decision']:.2f} s")


@pytest.mark.server
async def test_a_plan_above_the_threshold_waits_for_approval_then_resumes(api):
    client = sdk(api)
    thread_id = (await client.threads.create())["thread_id"]
    out = await client.runs.wait(thread_id, "radar", input=LARGE)
    assert "status" not in out and out["plan"]["budget"] >= 5000
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approval"]
    [asked] = state["interrupts"] or [i for t in state["tasks"] for i in t["interrupts"]]
    assert asked["value"]["question"] == "approve this plan?"
    assert asked["value"]["plan"]["budget"] == out["plan"]["budget"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    done = await client.runs.wait(thread_id, "radar", command={"resume": {"approved": True}})
    assert done["status"] == "executed"
    assert done["campaign"]["spend"] == out["plan"]["budget"]
    final = await client.threads.get_state(thread_id)
    assert final["next"] == [] and final["values"]["approval"]["approved"] is True


@pytest.mark.server
async def test_a_fork_from_a_checkpoint_runs_its_own_branch(api):
    client = sdk(api)
    thread_id = (await client.threads.create())["thread_id"]
    assert (await client.runs.wait(thread_id, "radar", input=SMALL))["status"] == "executed"
    history = await client.threads.get_history(thread_id, limit=100)
    before_brief = next(s for s in history if s["next"] == ["enterprise_brief"])
    changed = SMALL["brief"] | {"budget": 8000}
    branch = await client.threads.update_state(
        thread_id, {"brief": changed}, as_node="scout_merge",
        checkpoint={"checkpoint_id": before_brief["checkpoint_id"]},
    )
    fork_id = branch["checkpoint"]["checkpoint_id"]
    forked = await client.threads.get_state(thread_id, checkpoint={"checkpoint_id": fork_id})
    assert forked["parent_checkpoint"]["checkpoint_id"] == before_brief["checkpoint_id"]
    assert forked["values"]["brief"]["budget"] == 8000 and forked["next"] == ["enterprise_brief"]

    out = await client.runs.wait(thread_id, "radar", input=None, checkpoint={"checkpoint_id": fork_id})
    assert out["plan"]["budget"] >= 5000, "the bigger brief now needs approval"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approval"]
    original = await client.threads.get_state(thread_id, checkpoint={"checkpoint_id": history[0]["checkpoint_id"]})
    assert original["values"]["status"] == "executed" and original["values"]["plan"]["budget"] == 3000


# -- authentication --------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("headers, says", [
    ({}, "missing token"),
    ({"Authorization": "Bearer not-a-jwt"}, "invalid token"),
    ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "missing token"),
    (token(exp=int(time.time()) - 5), "expired"),
    (token(key="another-secret-long-enough-for-hs256-xyz"), "signature"),
    (token(aud="someone-else"), "audience"),
    (token(iss="someone-else"), "issuer"),
    (token(exp=None), "exp"),
    (token(sub=None), "sub"),
    ({"x-auth-scheme": "langsmith"}, "missing token"),
    ({"x-auth-scheme": "langsmith", "x-api-key": "lsv2_anything"}, "missing token"),
], ids=["none", "garbage", "basic", "expired", "bad-signature", "audience", "issuer", "no-exp", "no-sub",
        "studio-scheme", "studio-scheme-with-key"])
async def test_requests_without_a_valid_token_get_401(api, headers, says):
    async with httpx.AsyncClient(base_url=api) as http:
        for path in ("/threads/search", "/assistants/search"):
            response = await http.post(path, headers=headers, json={})
            assert response.status_code == 401, response.text
            assert says in response.json()["detail"]


@pytest.mark.server
async def test_unsigned_tokens_are_refused(api):
    unsigned = jwt.encode({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                          None, algorithm="none")
    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.post("/threads/search", json={}, headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401


@pytest.mark.server
async def test_the_cli_token_is_accepted_by_the_server(api, monkeypatch, capsys):
    monkeypatch.setenv("LEADBOOST_JWT_SECRET", SECRET)
    monkeypatch.setattr(sys, "argv", ["leadboost", "token", "--owner", "carol", "--ttl", "30m"])
    cli.main()
    minted = capsys.readouterr().out.strip()
    client = get_client(url=api, api_key=None, headers={"Authorization": f"Bearer {minted}"})
    assert (await client.threads.create())["metadata"]["owner"] == "carol"


# -- owners are isolated ------------------------------------------------------------------


@pytest.mark.server
async def test_an_owner_cannot_reach_another_owners_threads_runs_or_assistants(api):
    alice, bob = sdk(api, "alice"), sdk(api, "bob")
    thread_id = (await alice.threads.create(metadata={"team": "growth"}))["thread_id"]
    run = await alice.runs.create(thread_id, "radar", input=SMALL)
    await alice.runs.join(thread_id, run["run_id"])
    before = await alice.threads.get_state(thread_id)
    mine = await alice.assistants.create("radar", name="alice-radar", metadata={"team": "growth"})
    cp = {"checkpoint_id": before["checkpoint"]["checkpoint_id"]}
    system = (await bob.assistants.search(graph_id="radar"))[0]["assistant_id"]
    assert system != mine["assistant_id"]

    refused = {  # each must fail as if the thread did not exist: 404 (403 would do too)
        "get thread": lambda: bob.threads.get(thread_id),
        "get state": lambda: bob.threads.get_state(thread_id),
        "get state at checkpoint": lambda: bob.threads.get_state(thread_id, checkpoint=cp),
        "get history": lambda: bob.threads.get_history(thread_id),
        "update metadata": lambda: bob.threads.update(thread_id, metadata={"owner": "bob"}),
        "update state": lambda: bob.threads.update_state(thread_id, {"brief": LARGE["brief"]}),
        "fork at checkpoint": lambda: bob.threads.update_state(thread_id, {"brief": LARGE["brief"]},
                                                               as_node="scout_merge", checkpoint=cp),
        "delete thread": lambda: bob.threads.delete(thread_id),
        "create run": lambda: bob.runs.create(thread_id, "radar", input=SMALL),
        "wait run": lambda: bob.runs.wait(thread_id, "radar", input=SMALL),
        "resume run": lambda: bob.runs.wait(thread_id, "radar", command={"resume": {"approved": True}}),
        "run from checkpoint": lambda: bob.runs.wait(thread_id, "radar", input=None, checkpoint=cp),
        "create-if-missing run": lambda: bob.runs.create(thread_id, "radar", input=SMALL, if_not_exists="create"),
        "stream run": lambda: bob.runs.stream(thread_id, "radar", input=SMALL),
        "list runs": lambda: bob.runs.list(thread_id),
        "get run": lambda: bob.runs.get(thread_id, run["run_id"]),
        "join run": lambda: bob.runs.join(thread_id, run["run_id"]),
        "cancel run": lambda: bob.runs.cancel(thread_id, run["run_id"]),
        "delete run": lambda: bob.runs.delete(thread_id, run["run_id"]),
        "get assistant": lambda: bob.assistants.get(mine["assistant_id"]),
        "update assistant": lambda: bob.assistants.update(mine["assistant_id"], metadata={"owner": "bob"}),
        "delete assistant": lambda: bob.assistants.delete(mine["assistant_id"]),
        "update system assistant": lambda: bob.assistants.update(system, metadata={"x": 1}),
        "delete system assistant": lambda: bob.assistants.delete(system),
    }
    outcomes = {name: await status_of_call(call) for name, call in refused.items()}
    leaked = {name: code for name, code in outcomes.items() if code not in (403, 404)}
    assert not leaked, f"owner bob got through: {leaked}"
    # the server answers a copy of a missing thread with 409: alice's must look the same
    missing = "00000000-0000-4000-8000-000000000000"
    assert await status_of_call(lambda: bob.threads.copy(missing)) == 409
    assert await status_of_call(lambda: bob.threads.copy(thread_id)) == 409

    # an existing id cannot be claimed, and nothing of alice's shows up in bob's listings
    assert await status_of_call(lambda: bob.threads.create(thread_id=thread_id, if_exists="do_nothing")) == 409
    listings = {
        "search threads": [t["thread_id"] for t in await bob.threads.search(limit=100)],
        "search by owner": await bob.threads.search(metadata={"owner": "alice"}),
        "search by id": await bob.threads.search(ids=[thread_id]),
        "search by team": await bob.threads.search(metadata={"team": "growth"}),
        "count by owner": await bob.threads.count(metadata={"owner": "alice"}),
        "search assistants": [a["assistant_id"] for a in await bob.assistants.search(limit=100)
                              if a["assistant_id"] == mine["assistant_id"]],
        "search assistants by team": await bob.assistants.search(metadata={"team": "growth"}),
    }
    assert thread_id not in listings.pop("search threads")
    assert not any(listings.values()), f"bob sees alice's resources: {listings}"
    assert len(refused) >= 20

    # alice's things are untouched, and the filter is by owner, not a blanket refusal
    after = await alice.threads.get_state(thread_id)
    assert after["checkpoint"] == before["checkpoint"] and after["values"]["status"] == "executed"
    assert (await alice.threads.get(thread_id))["metadata"]["owner"] == "alice"
    assert (await alice.assistants.get(mine["assistant_id"]))["metadata"] == {"team": "growth", "owner": "alice"}
    assert (await alice.threads.create(metadata={"owner": "bob"}))["metadata"]["owner"] == "alice"
    bobs = (await bob.threads.create())["thread_id"]
    assert await status_of_call(lambda: alice.threads.get(bobs)) == 404
    assert [t["thread_id"] for t in await bob.threads.search(limit=100)] == [bobs]


# -- the handler itself (no server) -----------------------------------------------------------


async def test_api_keys_authenticate_by_bearer_or_x_api_key(monkeypatch):
    monkeypatch.setenv("LEADBOOST_API_KEYS", "k-alice:alice, k-bob:bob")
    assert (await authenticate("Bearer k-bob", {}))["identity"] == "bob"
    assert (await authenticate(None, {b"x-api-key": b"k-alice"}))["identity"] == "alice"
    for authorization, headers in (("Bearer nope", {}), (None, {b"x-api-key": b"k-alice:alice"}), (None, {})):
        with pytest.raises(Exception) as refused:
            await authenticate(authorization, headers)
        assert refused.value.status_code == 401
    monkeypatch.setenv("LEADBOOST_API_KEYS", "k-without-owner")
    with pytest.raises(Exception) as misconfigured:
        await authenticate("Bearer k-without-owner", {})
    assert misconfigured.value.status_code == 500 and "LEADBOOST_API_KEYS" in misconfigured.value.detail


async def test_a_jwt_secret_takes_precedence_over_api_keys(monkeypatch):
    monkeypatch.setenv("LEADBOOST_API_KEYS", "k-alice:alice")
    monkeypatch.setenv("LEADBOOST_JWT_SECRET", SECRET)
    assert (await authenticate(f"Bearer {mint_token('dana', 60, SECRET)}", {}))["identity"] == "dana"
    with pytest.raises(Exception) as refused:
        await authenticate("Bearer k-alice", {b"x-api-key": b"k-alice"})
    assert refused.value.status_code == 401


async def test_with_nothing_configured_every_request_is_refused_with_how_to_configure():
    with pytest.raises(Exception) as refused:
        await authenticate("Bearer anything", {b"x-api-key": b"anything"})
    assert refused.value.status_code == 401
    assert "LEADBOOST_JWT_SECRET" in refused.value.detail and "LEADBOOST_API_KEYS" in refused.value.detail


@pytest.mark.parametrize("ttl, seconds", [("30m", 1800), ("1h", 3600), ("2d", 172800)])
def test_cli_token_mints_a_jwt_for_the_owner(monkeypatch, capsys, ttl, seconds):
    monkeypatch.setenv("LEADBOOST_JWT_SECRET", SECRET)
    monkeypatch.setattr(sys, "argv", ["leadboost", "token", "--owner", "erin", "--ttl", ttl])
    cli.main()
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"], audience=AUDIENCE,
                        issuer=ISSUER)
    assert claims["sub"] == "erin" and abs(claims["exp"] - time.time() - seconds) < 5


@pytest.mark.parametrize("secret, ttl, says", [
    (None, "1h", "LEADBOOST_JWT_SECRET"), (SECRET, "1y", "ttl"), (SECRET, "0m", "ttl"),
])
def test_cli_token_refuses_bad_input_with_exit_2(monkeypatch, capsys, secret, ttl, says):
    if secret:
        monkeypatch.setenv("LEADBOOST_JWT_SECRET", secret)
    monkeypatch.setattr(sys, "argv", ["leadboost", "token", "--owner", "erin", "--ttl", ttl])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert says in capsys.readouterr().err

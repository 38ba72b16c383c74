"""The graph behind a real `langgraph dev` server, driven by the LangGraph SDK, with our auth.

One server for the whole session (it takes seconds to start): offline provider, a fixed
clock, a temporary LEADBOOST_HOME, JWT auth for two owners, auto-approval below 5,000 so
that an 8,000 brief (plan 5,440 after policy) waits for a human and a 3,000 one does not.
No outbound calls: analytics and version checks are off, no browser, LangSmith unset.
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

from graph.auth import AUDIENCE, ISSUER, authenticate, mint_token

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "test-secret-that-is-long-enough-for-hs256!"
NODES = {"scout", "scout_merge", "enterprise_brief", "cmo", "cfo", "ceo", "enterprise_check",
         "approval", "copywriter", "actuator", "enterprise_record"}
SMALL = {"brief": {"goal": "Winter push for the headlamp", "budget": 3000, "channels": ["search", "email"]}}
LARGE = {"brief": {"goal": "Launch the trail sneaker in Spain", "budget": 8000, "market": "ES"}}
TIMINGS: dict[str, float] = {}

server = pytest.mark.server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_config(tmp: Path) -> Path:
    """The shipped langgraph.json with absolute paths, run from a temp dir so the in-memory
    server's files (.langgraph_api/) stay out of the repo; persistence off between sessions."""
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
    """Start one `langgraph dev`; yield its URL. The process group is always killed."""
    tmp = tmp_path_factory.mktemp("server")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEADBOOST_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_", "LANGGRAPH_"))}
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
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_until_up(proc: subprocess.Popen, log: Path, started: float) -> str:
    """The port it bound (it moves when ours was taken meanwhile) from its output, then /ok."""
    url = None
    while time.monotonic() - started < 120:
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if url is None:
            found = re.search(r"API: \S*?(http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
            url = found and found.group(1)
        if url:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    pytest.fail(f"langgraph dev did not come up in 120 s:\n{log.read_text()[-3000:]}")


def bearer(owner: str, **claims) -> dict[str, str]:
    token = mint_token(owner, 600, SECRET) if not claims else jwt.encode(
        {"sub": owner, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600} | claims,
        claims.pop("_key", SECRET) if "_key" in claims else SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def client(url: str, owner: str = "alice"):
    return get_client(url=url, api_key=None, headers=bearer(owner))

"""LangSmith tracing, captured locally: a LangSmith-compatible endpoint on 127.0.0.1 receives
what the installed langsmith client sends for one decision run through the CLI's `execute`.

The endpoint answers `/info` (advertising multipart ingestion with zstd compression, as the
hosted service does) and accepts `/runs`, `/runs/batch`, `/runs/multipart` and run patches,
decoding zstd or gzip bodies. Each decision runs in a fresh process, because langsmith caches
its environment and client per process: tracing switched on here must not leak into other
tests. The process flushes its tracer before it exits (`wait_for_all_tracers`).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.fakes.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-28T12:00:00+00:00"
THREAD = "trace-thread-1"
LANGSMITH_KEY = "lsv2_sentinel_LANGSMITH_KEY_4f1c9e"
SECRETS = {  # every secret the process has; none may reach a trace payload
    "LANGSMITH_API_KEY": LANGSMITH_KEY,
    "OPENAI_API_KEY": "sk-sentinel-OPENAI-KEY-8d2a71",
    "NEWS_API_KEY": "sentinel-NEWSAPI-KEY-93b0c4",
    "LEADBOOST_JWT_SECRET": "sentinel-JWT-SECRET-0123456789abcdef0123456789abcdef",
}
ROLES = ("cmo", "cfo", "ceo", "copywriter")
TOOLS = ("fetch_sources", "screen_signals", "forecast", "policy_check", "execute_plan")


class CaptureEndpoint:
    """A LangSmith-compatible API on 127.0.0.1 that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __enter__(self) -> CaptureEndpoint:
        handler = type("Handler", (_Capture,), {"endpoint": self})
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run sent, posts and patches merged by id (inputs and outputs parts included)."""
        runs: dict[str, dict[str, Any]] = {}

        def merge(run: dict[str, Any]) -> None:
            runs.setdefault(str(run["id"]), {}).update({k: v for k, v in run.items() if v is not None})

        for request in self.requests:
            path, body = request["path"], request["body"]
            if request["method"] == "GET" or not body:
                continue
            if path.endswith("/runs/multipart"):
                for name, payload in request["parts"]:
                    kind, run_id, *field = name.split(".")
                    if kind in ("post", "patch"):
                        value = json.loads(payload)
                        merge({"id": run_id, **({field[0]: value} if field else value)})
            elif path.endswith("/runs/batch"):
                data = json.loads(body)
                for run in data.get("post", []) + data.get("patch", []):
                    merge(run)
            elif "/runs" in path:
                run = json.loads(body)
                merge({"id": run.get("id") or path.rstrip("/").rsplit("/", 1)[-1], **run})
        return runs


class _Capture(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    endpoint: CaptureEndpoint

    def log_message(self, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        raw = self._read_body() if self.command != "GET" else b""
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "zstd":
            body = zstandard.ZstdDecompressor().stream_reader(raw).read()
        elif encoding == "gzip":
            body = gzip.decompress(raw)
        else:
            body = raw
        parts = []
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/"):
            message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            parts = [(part.get_param("name", header="content-disposition"), part.get_payload(decode=True))
                     for part in message.iter_parts()]
        with self.endpoint.lock:
            self.endpoint.requests.append({"method": self.command, "path": self.path, "body": body, "parts": parts,
                                           "headers": {k.lower(): v for k, v in self.headers.items()}})
        if self.path.rstrip("/").endswith("/info"):
            answer = {"version": "0.10.0", "instance_flags": {"zstd_compression_enabled": True},
                      "batch_ingest_config": {"use_multipart_endpoint": True, "scale_up_qsize_trigger": 1000,
                                              "scale_up_nthreads_limit": 16, "scale_down_nempty_trigger": 4,
                                              "size_limit": 100, "size_limit_bytes": 20_971_520}}
        else:
            answer = {}
        data = json.dumps(answer).encode()
        self.send_response(200 if self.command == "GET" else 202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = _handle


#: One decision through the CLI's `execute` (the config it builds: run name, tags, metadata),
#: then the tracer is flushed; the JSON decision is printed on stdout.
DECIDE = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from graph.cli import execute, thread_config
    from state import Context
    brief = {"brief": {"goal": "Launch the trail sneaker in Spain, up to 8,000 EUR", "budget": 8000,
                       "market": "ES", "max_rounds": 2}}
    code = execute(brief, thread_config(sys.argv[2]), Context(), as_json=True, quiet=True)
    from langchain_core.tracers.langchain import wait_for_all_tracers
    wait_for_all_tracers()
    sys.exit(code)
""")


def decide(tmp_path: Path, llm: OpenAIServer, endpoint: CaptureEndpoint, tracing: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEADBOOST_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_"))}
    env |= SECRETS | {
        "OPENAI_BASE_URL": llm.base_url, "LEADBOOST_HOME": str(tmp_path / "home"), "LEADBOOST_NOW": NOW,
        "LEADBOOST_FORECAST_DRAWS": "2000", "LEADBOOST_SOURCES": "sample",
        "LANGSMITH_ENDPOINT": endpoint.url, "LANGSMITH_PROJECT": "radar-tests",
    }
    if tracing is not None:
        env["LANGSMITH_TRACING"] = tracing
    proc = subprocess.run([sys.executable, "-c", DECIDE, str(ROOT), THREAD], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture
def servers():
    with OpenAIServer() as llm, CaptureEndpoint() as endpoint:
        yield llm, endpoint


def test_a_traced_decision_sends_a_root_run_with_its_thread_and_named_children(tmp_path, servers):
    llm, endpoint = servers
    result = decide(tmp_path, llm, endpoint, tracing="true")
    assert result["status"] == "executed" and result["provider"].startswith("openai:")

    runs = endpoint.runs()
    assert any(r["path"].rstrip("/").endswith("/info") for r in endpoint.requests)
    assert all(r["headers"].get("x-api-key") == LANGSMITH_KEY
               for r in endpoint.requests if r["method"] != "GET")  # the key travels as a header only

    roots = [r for r in runs.values() if not r.get("parent_run_id")]
    assert [r["name"] for r in roots] == ["radar"]
    root = roots[0]
    metadata = root["extra"]["metadata"]
    assert metadata["thread_id"] == THREAD
    assert metadata["provider"] == result["provider"] and metadata["goal"].startswith("Launch the trail sneaker")
    assert "leadboost" in root.get("tags", [])
    assert {r["trace_id"] for r in runs.values()} == {root["id"]}  # one trace: everything under the root

    def ancestors(run: dict[str, Any]) -> list[str]:
        names = []
        while run.get("parent_run_id"):
            run = runs[str(run["parent_run_id"])]
            names.append(run["name"])
        return names

    llm_runs = [r for r in runs.values() if r.get("run_type") == "llm"]
    assert len(llm_runs) == sum(llm.requests.values()) == 5  # every model request is traced, once
    # each role's model call sits under the run named after the role, inside the graph node
    # (`agents.llm.ask` names the structured-output call after the role and tags it `role:<role>`;
    # the model run under it is ChatOpenAI's, with the model's settings and token usage)
    by_role = {role: [r for r in llm_runs if role in ancestors(r)[:2] and f"role:{role}" in r.get("tags", [])]
               for role in ROLES}
    assert {role: len(found) for role, found in by_role.items()} == {"cmo": 1, "cfo": 1, "ceo": 1, "copywriter": 2}
    assert all(ancestors(r)[-1] == "radar" for r in llm_runs)
    role_runs = {r["name"] for r in runs.values() if r["name"] in ROLES and r.get("parent_run_id")}
    assert role_runs == set(ROLES)

    tool_runs = {r["name"] for r in runs.values() if r.get("run_type") == "tool"}
    assert set(TOOLS) <= tool_runs
    forecast = next(r for r in runs.values() if r["name"] == "forecast")
    assert "radar" in ancestors(forecast)

    # no secret in any payload: bodies (decoded) and every part
    for request in endpoint.requests:
        payload = request["body"] + b"".join(p for _, p in request["parts"] if p)
        for name, secret in SECRETS.items():
            assert secret.encode() not in payload, f"{name} leaked to {request['path']}"


@pytest.mark.parametrize("tracing", [None, "false"])
def test_with_tracing_off_a_decision_sends_nothing(tmp_path, servers, tracing):
    llm, endpoint = servers
    result = decide(tmp_path, llm, endpoint, tracing=tracing)
    assert result["status"] == "executed" and sum(llm.requests.values()) == 5
    assert endpoint.requests == []

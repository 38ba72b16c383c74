"""Secrets stay out of everything a run leaves behind.

Real CLI runs (subprocesses, LEADBOOST_LOG=info) with sentinel secrets in the environment, on the
OpenAI path (the fake server) with NewsAPI configured (a fake NewsAPI on 127.0.0.1 that checks it
gets the key): the keys are used, and then no sentinel may appear in any file under the home
(checkpoints with their WAL, the store, the platform), in the decoded checkpoint states, in any
log line, in the report text, in any --json output, or in a prompt. One run meets a NewsAPI that
echoes the key back in its error message, as some APIs do: that text must not carry it either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from graph.builder import build_graph
from graph.checkpoints import sqlite_checkpointer
from state import as_dict
from tests.cli_runner import leadboost
from tests.fakes.openai_server import OpenAIServer
from tools.store import Store

NOW = "2026-11-28T12:00:00+00:00"
GOAL = "Launch the trail sneaker in Spain, up to 3,000 EUR"
SECRETS = {"OPENAI_API_KEY": "sk-SENTINEL-openai-0c4f1d92e7", "NEWS_API_KEY": "SENTINEL-newsapi-a93be71f04",
           "LEADBOOST_JWT_SECRET": "SENTINEL-jwt-5d2e8c6b11"}
_LEADBOOST = Path(sys.executable).with_name("leadboost")
LEADBOOST = [str(_LEADBOOST)] if _LEADBOOST.exists() else [sys.executable, "-m", "graph.cli"]


class FakeNewsApi:
    """`/v2/everything` on 127.0.0.1: articles for a good key, or (echo=True) an HTTP 400 whose
    message quotes the key back. Records the key and the URL of every request."""

    def __init__(self, echo: bool = False) -> None:
        self.echo, self.keys, self.urls = echo, [], []

    def __enter__(self) -> FakeNewsApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                key = self.headers.get("X-Api-Key", "")
                fake.keys.append(key)
                fake.urls.append(self.path)
                if fake.echo:
                    status, body = 400, {"status": "error", "code": "parameterInvalid",
                                         "message": f"The key {key} cannot search 'trail sneaker' on this plan."}
                else:
                    page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
                    body = {"status": "ok", "totalResults": 3, "articles": [article(i) for i in range(3)]
                            if page == 1 else []}
                data = json.dumps(body).encode()
                self.send_response(status if fake.echo else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.shutdown()
        self.http.server_close()


def article(i: int) -> dict:
    titles = ["Trail sneaker sales surge in Spain as races sell out",
              "Spain's trail runners praise the grip of the new trail sneaker",
              "Retailers in Spain expect strong demand for trail sneakers this winter"]
    return {"source": {"id": None, "name": "Example News"}, "author": "staff", "title": titles[i],
            "description": titles[i] + ". Shops in Madrid and Bilbao report record weeks.",
            "url": f"https://news.example/trail-{i}", "publishedAt": f"2026-11-2{5 + i}T08:00:00Z",
            "content": titles[i]}


def env_for(home: Path, openai: OpenAIServer, news: FakeNewsApi) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBOOST_")}
    return env | SECRETS | {
        "LEADBOOST_HOME": str(home), "LEADBOOST_NOW": NOW, "LEADBOOST_LOG": "info", "LEADBOOST_FORECAST_DRAWS": "2000",
        "OPENAI_BASE_URL": openai.base_url, "NEWS_API_BASE_URL": news.base_url,
    }


def everything_written(home: Path, threads: list[str], inspect: dict[str, str]) -> dict[str, str | bytes]:
    """Every place a secret could end up, as text or bytes, by name."""
    found: dict[str, str | bytes] = {f"file {p.name}": p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}
    with sqlite_checkpointer(home) as saver:
        graph = build_graph(saver)
        for thread in threads:
            config = {"configurable": {"thread_id": thread}}
            found[f"decoded checkpoints of {thread}"] = json.dumps(
                [{"values": as_dict(s.values), "metadata": s.metadata, "tasks": [repr(t) for t in s.tasks]}
                 for s in graph.get_state_history(config)], default=str)
    with Store.at_home(home) as store:
        found["store dump"] = "\n".join(store.db.conn.iterdump())
    return found | inspect


@pytest.fixture
def cli(monkeypatch, capsys):
    """In-process `leadboost ARGS` (no LEADBOOST_LOG here: in-process logging would outlive the test)."""

    def run(home: Path, *args: str) -> str:
        monkeypatch.setenv("LEADBOOST_HOME", str(home))
        monkeypatch.setenv("LEADBOOST_NOW", NOW)
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = leadboost(monkeypatch, *args)
        assert code == 0, capsys.readouterr().err
        return capsys.readouterr().out

    return run


@pytest.mark.parametrize("echo", [False, True], ids=["news-ok", "news-echoes-the-key"])
def test_no_secret_in_checkpoints_logs_reports_outputs_or_the_store(tmp_path, cli, echo):
    home = tmp_path / "home"
    with OpenAIServer() as openai, FakeNewsApi(echo=echo) as news:
        env = env_for(home, openai, news)
        as_json = subprocess.run([*LEADBOOST, "run", "--goal", GOAL, "--thread", "s-json", "--json"],
                                 env=env, capture_output=True, text=True, timeout=120)
        as_text = subprocess.run([*LEADBOOST, "run", "--goal", GOAL, "--thread", "s-text"],
                                 env=env, capture_output=True, text=True, timeout=120)
        prompts = json.dumps(openai.received)

    # the runs used the keys: the model answered, NewsAPI got its key in the header (never in the URL)
    assert as_json.returncode == 0 and as_text.returncode == 0, as_json.stderr[-2000:] + as_text.stderr[-2000:]
    decided = json.loads(as_json.stdout)
    assert decided["status"] == "executed" and decided["provider"].startswith("openai:")
    assert sum(openai.requests.values()) >= 10
    assert news.keys and set(news.keys) == {SECRETS["NEWS_API_KEY"]}
    assert not any(SECRETS["NEWS_API_KEY"] in url for url in news.urls)
    if echo:
        assert decided["source_errors"] and decided["source_errors"][0]["source"] == "newsapi"
        assert "cannot search" in decided["source_errors"][0]["message"]  # the error is kept, the key is not
    else:
        assert any(s["source"] == "newsapi" for s in decided["signals"])
    logs = [line for line in (as_json.stderr + as_text.stderr).splitlines() if line.startswith("{")]
    assert {json.loads(line)["event"] for line in logs} >= {"node_start", "node_end"}

    inspect = {
        "run --json stdout": as_json.stdout, "run --json stderr (logs, progress)": as_json.stderr,
        "run report stdout": as_text.stdout, "run report stderr (logs, progress)": as_text.stderr,
        "prompts sent to the model": prompts,
    }
    for thread in ("s-json", "s-text"):
        inspect[f"show {thread}"] = cli(home, "show", thread)
        inspect[f"show --json {thread}"] = cli(home, "show", thread, "--json")
        inspect[f"history --json {thread}"] = cli(home, "history", thread, "--json")
    inspect["threads --json"] = cli(home, "threads", "--json")
    inspect["db show --json"] = cli(home, "db", "show", "--json")

    places = everything_written(home, ["s-json", "s-text"], inspect)
    assert any(name.startswith("file checkpoints.sqlite") for name in places)
    for name, secret in SECRETS.items():
        for where, blob in places.items():
            needle = secret.encode() if isinstance(blob, bytes) else secret
            assert needle not in blob, f"{name} found in {where}"

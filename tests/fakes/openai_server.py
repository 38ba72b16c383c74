"""`OpenAIServer`: an OpenAI-compatible `POST /v1/chat/completions` on 127.0.0.1, for tests and benchmarks.

    with OpenAIServer(responder=..., latency=0.0, faults=None, seed=0) as srv:
        ChatOpenAI(base_url=srv.base_url, ...)   # "http://127.0.0.1:PORT/v1"
        srv.requests["CmoAnswer"], srv.usage["CmoAnswer"]["prompt_tokens"], srv.faults_served["503"]

Stdlib `ThreadingHTTPServer` in a daemon thread: one thread per connection, so parallel
calls (CMO beside CFO, copy per channel) are served concurrently; HTTP/1.1 keep-alive,
as real servers do. The answer is chosen by `response_format.json_schema.name`:

- `responder=None`: `default_responder`, valid answers for every RADAR schema;
- a callable `(schema_name, request_body) -> dict | str`;
- a script `{schema_name: [response, ...]}` consumed in order, then the default. A
  response is a dict (sent as JSON content), a str (sent verbatim), a fault kind wrapped
  in `Fault("500")`, or a callable `(request_body) -> one of those`.

`faults` (applied before the responder; a faulted request consumes no script entry) is a
list of kinds, one per request in arrival order (`None` = healthy), or `{kind: rate}` drawn
with `random.Random(seed)`. Kinds:
"429" (with Retry-After), "500", "503", "reset" (socket closed without an answer),
"timeout" (no answer for `stall` seconds), "truncated" (JSON cut in half,
finish_reason "length"), "bad_schema" (valid JSON, wrong shape), "no_choices".
Usage is deterministic: prompt chars // 4 and completion chars // 4 (at least 1). Counters:
`requests` (every request, by schema), `faults_served` (by kind), `usage` (tokens sent in
answers, by schema), `received` (request bodies in arrival order).
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("429", "500", "503", "reset", "timeout", "truncated", "bad_schema", "no_choices")


@dataclass(frozen=True)
class Fault:
    """A scripted fault in place of an answer."""

    kind: str


def _situation(body: dict) -> dict:
    """The `Situation:` JSON the roles put in their user message, if any."""
    for message in body.get("messages", []):
        found = re.search(r"Situation:\n(\{.*?\n\})\n", str(message.get("content", "")), re.S)
        if found:
            return json.loads(found.group(1))
    return {}


def default_split(body: dict) -> list[dict]:
    """Search and email (the brief's, else its first channel), within budget and saturation."""
    facts = _situation(body)
    brief, economics = facts.get("brief", {}), {c["name"]: c for c in facts.get("channel_economics", [])}
    allowed = brief.get("channels", ["search", "email"])
    chosen = [c for c in ("search", "email") if c in allowed] or allowed[:1]
    cap = min(brief.get("budget", 2500.0), facts.get("budget_left_in_period") or brief.get("budget", 2500.0))
    share = cap / len(chosen)
    return [{"channel": c, "amount": round(min(share, 0.8 * economics.get(c, {}).get("saturation", share / 0.8)), 2)}
            for c in chosen]


def default_responder(schema: str, body: dict) -> dict:
    """A valid answer for each RADAR schema: a plan over search+email that the CEO approves."""
    split = default_split(body)
    if schema == "CmoAnswer":
        return {"argument": "Search and email convert best per euro.", "message": "Built for wet trails.",
                "allocations": split, "cited_signals": []}
    if schema == "CfoAnswer":
        return {"stance": "support", "argument": "The forecast pays back.", "cut_channels": [], "cited_signals": [],
                "recommended_budget": sum(a["amount"] for a in split)}
    if schema == "CeoAnswer":
        return {"action": "approve", "rationale": "The numbers hold.", "guidance": "", "allocations": split,
                "cited_signals": []}
    if schema == "CopyAnswer":
        return {"headline": "Trail ready", "body": "Grip for wet rock and long descents.", "call_to_action": "Shop now"}
    raise KeyError(f"default_responder: no answer for schema {schema!r}")


class OpenAIServer:
    """Context manager running the fake server; counters are safe to read after requests end."""

    def __init__(self, responder: Any = None, latency: float = 0.0, faults: Any = None, seed: int = 0,
                 stall: float = 30.0, retry_after: str = "0.01") -> None:
        self.responder, self.latency, self.stall, self.retry_after = responder, latency, stall, retry_after
        self.faults = list(faults) if isinstance(faults, (list, tuple)) else (faults or {})
        unknown = {k for k in self.faults if k} - set(KINDS)  # list items or dict keys
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        self.requests: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self.usage: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.received: list[dict] = []
        self._random, self._lock, self._closing = random.Random(seed), threading.Lock(), threading.Event()
        self._connections: set[socket.socket] = set()
        self._script = {k: list(v) for k, v in responder.items()} if isinstance(responder, dict) else {}

    def __enter__(self) -> OpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.block_on_close = False  # stalled or idle keep-alive threads never hold up the exit
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._http.shutdown()
        self._http.server_close()
        with self._lock:  # end idle keep-alive connections, so no client reaches a stopped server
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def tokens(self, field: str = "total_tokens") -> int:
        """Tokens of one kind sent in `usage` over every schema."""
        with self._lock:
            return sum(counts[field] for counts in self.usage.values())

    def _plan(self, schema: str, body: dict) -> Any:
        """Count the request and pick what it gets: a Fault or the answer content."""
        with self._lock:
            self.requests[schema] += 1
            self.received.append(body)
            if isinstance(self.faults, list):
                kind = self.faults.pop(0) if self.faults else None
            else:
                draw, kind = self._random.random(), None
                for name, rate in self.faults.items():
                    draw -= rate
                    if draw < 0:
                        kind = name
                        break
            script = self._script.get(schema)
            if kind is None and script:
                answer = script.pop(0)
                return answer(body) if callable(answer) else answer
        if kind is not None:
            return Fault(kind)
        if callable(self.responder) and not isinstance(self.responder, dict):
            return self.responder(schema, body)
        return default_responder(schema, body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The handler writes headers and body in two sends; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms) on keep-alive connections, an artefact no real server has.
    disable_nagle_algorithm = True
    fake: OpenAIServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        fake = self.fake
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name", "text")
        answer = fake._plan(schema, body)
        if fake.latency:
            fake._closing.wait(fake.latency)
        finish, choices = "stop", True
        if isinstance(answer, Fault):
            with fake._lock:
                fake.faults_served[answer.kind] += 1
            kind = answer.kind
            if kind in ("429", "500", "503"):
                headers = {"Retry-After": fake.retry_after} if kind == "429" else {}
                kind_name = "rate_limit_exceeded" if kind == "429" else "server_error"
                return self._send(int(kind), {"error": {"message": f"injected {kind}", "type": kind_name}}, headers)
            if kind == "reset":  # RST instead of an answer
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return None
            if kind == "timeout":
                fake._closing.wait(fake.stall)
                self.close_connection = True
                return None
            valid = json.dumps(default_responder(schema, body)) if schema != "text" else "plain text answer"
            answer = {"truncated": valid[: len(valid) // 2], "bad_schema": {"unexpected": "shape"}}.get(kind, valid)
            finish, choices = ("length" if kind == "truncated" else "stop"), kind != "no_choices"
        content = answer if isinstance(answer, str) else json.dumps(answer)
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        usage = {"prompt_tokens": prompt, "completion_tokens": max(1, len(content) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with fake._lock:
            fake.usage[schema].update(usage)
        message = {"role": "assistant", "content": content, "refusal": None}
        return self._send(200, {
            "id": f"chatcmpl-{sum(fake.requests.values())}", "object": "chat.completion", "created": 0,
            "model": body.get("model", "fake"), "usage": usage, "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}] if choices else [],
        })

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

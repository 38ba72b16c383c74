"""The OpenAI path end to end: the real langchain-openai client against a local
OpenAI-compatible server (tests/fakes/openai_server.py), through the whole graph.

Covers what only the real client exercises: the request shape (model per tier,
json_schema response format), usage read back from the wire, the corrective re-ask,
client retries on transient faults, and a failed node leaving a resumable thread.
"""

from __future__ import annotations

import re
from collections import Counter
from html import escape

import openai
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.llm import StructuredOutputError
from graph.builder import build_graph
from graph.checkpoints import serializer
from state import Context
from tests.fakes.openai_server import Fault, OpenAIServer, default_responder, default_split

NOW = "2026-11-28T12:00:00+00:00"
QUICK, DEEP = "radar-quick-test", "radar-deep-test"
BRIEF = {"goal": "Launch the trail sneaker in Spain, up to 8,000 EUR", "budget": 8000, "max_rounds": 2}
ROLE_OF = {"CmoAnswer": "cmo", "CfoAnswer": "cfo", "CeoAnswer": "ceo", "CopyAnswer": "copywriter"}
SIGNALS_BLOCK = re.compile(r"<signals>.*?</signals>", re.S)


@pytest.fixture
def run(tmp_path, monkeypatch):
    """`run(srv, thread, **context)`: point the OpenAI env at `srv` and invoke the graph
    (or resume the thread with `resume=True`). `run.graph` keeps its checkpoints."""
    graph = build_graph(InMemorySaver(serde=serializer()))

    def invoke(srv: OpenAIServer, thread: str, *, resume: bool = False, **context) -> dict:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        ctx = Context(home=str(tmp_path), provider="openai", now=NOW, quick_model=QUICK, deep_model=DEEP,
                      llm_timeout=20, **context)
        return graph.invoke(None if resume else {"brief": BRIEF}, config(thread), context=ctx)

    invoke.graph = graph
    return invoke


def config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def schema_of(body: dict) -> str:
    return body["response_format"]["json_schema"]["name"]


def texts(body: dict) -> list[str]:
    return [m["content"] for m in body["messages"] if isinstance(m.get("content"), str)]


def revise_once(body: dict) -> dict:
    """A CEO asking for another round (same split), so that the run has two rounds."""
    return {"action": "revise", "rationale": "Sharpen the message.", "guidance": "Lead with wet-rock grip.",
            "allocations": default_split(body), "cited_signals": []}


def test_two_round_run_on_the_openai_client(run):
    with OpenAIServer(responder={"CeoAnswer": [revise_once]}) as srv:
        out = run(srv, "oa-two-rounds")

    assert out["status"] == "executed", out.get("reason")
    assert out["provider"] == f"openai:{QUICK}+{DEEP}"
    assert out["verdict"].action == "approve"
    plan_channels = set(out["plan"].channels)
    assert plan_channels == {"search", "email"}
    assert {e.channel for e in out["campaign"].executions} == plan_channels

    # cmo, cfo and ceo once per round; one copy request per planned channel
    assert srv.requests == Counter({"CmoAnswer": 2, "CfoAnswer": 2, "CeoAnswer": 2, "CopyAnswer": len(plan_channels)})
    copy_channels = {re.search(r"Channel: (\w+)\.", texts(b)[0]).group(1)
                     for b in srv.received if schema_of(b) == "CopyAnswer"}
    assert copy_channels == plan_channels
    assert not srv.faults_served

    # the request shape: structured output as a json_schema, the deep model for the CEO only
    for body in srv.received:
        assert body["response_format"]["type"] == "json_schema"
        assert body["model"] == (DEEP if schema_of(body) == "CeoAnswer" else QUICK), schema_of(body)

    # usage in the final state is what the server sent, per role and model
    expected = {f"{ROLE_OF[schema]}/{DEEP if schema == 'CeoAnswer' else QUICK}":
                (srv.requests[schema], counts["prompt_tokens"], counts["completion_tokens"])
                for schema, counts in srv.usage.items()}
    got = {key: (line.calls, line.input_tokens, line.output_tokens) for key, line in out["usage"].lines.items()}
    assert got == expected
    assert out["usage"].tokens == srv.tokens() > 0


def test_signals_reach_the_model_only_inside_signals_tags(run):
    with OpenAIServer() as srv:
        out = run(srv, "oa-signals")

    signals = out["signals"]
    assert len(signals) >= 5
    for body in srv.received:
        prompt = "\n".join(texts(body))
        inside = "\n".join(SIGNALS_BLOCK.findall(prompt))
        outside = SIGNALS_BLOCK.sub("", prompt)
        # the debate quotes every kept signal, the copywriter the top five
        quoted = signals if schema_of(body) != "CopyAnswer" else signals[:5]
        for s in quoted:
            assert f'id="{escape(s.id)}"' in inside and escape(s.title) in inside, (schema_of(body), s.id)
        for s in signals:
            assert s.id not in outside and escape(s.title) not in outside and s.title not in outside, s.id
        assert "never an instruction" in outside  # the data rule introduces them as data


def test_a_schema_violation_is_reasked_once_then_accepted(run):
    with OpenAIServer(responder={"CmoAnswer": [{"plan": "spend it all on video"}]}) as srv:
        out = run(srv, "oa-reask")

    assert out["status"] == "executed", out.get("reason")
    assert srv.requests["CmoAnswer"] == 2
    first, second = [b for b in srv.received if schema_of(b) == "CmoAnswer"]
    # the re-ask carries the rejected answer and the reason
    assert len(second["messages"]) == len(first["messages"]) + 2
    assert second["messages"][-2] == {"role": "assistant", "content": '{"plan": "spend it all on video"}'}
    assert "Your answer was rejected" in second["messages"][-1]["content"]
    assert "CmoAnswer" in second["messages"][-1]["content"]
    # both calls are paid for
    cmo = out["usage"].lines[f"cmo/{QUICK}"]
    assert (cmo.calls, cmo.input_tokens) == (2, srv.usage["CmoAnswer"]["prompt_tokens"])


def test_two_violations_in_a_row_fail_with_the_raw_text(run):
    script = {"CmoAnswer": [{"plan": "first-bad-answer"}, "not json at all: second-bad-answer {"]}
    with OpenAIServer(responder=script) as srv:
        with pytest.raises(StructuredOutputError) as failure:
            run(srv, "oa-two-violations")

    assert srv.requests["CmoAnswer"] == 2  # one re-ask, not more
    assert failure.value.role == "cmo"
    assert "second-bad-answer" in str(failure.value) and "second-bad-answer" in failure.value.raw
    assert srv.requests["CeoAnswer"] == 0  # the round never reached the CEO
    state = run.graph.get_state(config("oa-two-violations"))
    assert "cmo" in state.next and state.values.get("status") != "executed"


def test_a_500_is_retried_by_the_client(run):
    with OpenAIServer(faults=["500"]) as srv:
        out = run(srv, "oa-retry-500")

    assert out["status"] == "executed", out.get("reason")
    assert srv.faults_served == Counter({"500": 1})
    first = schema_of(srv.received[0])  # CMO or CFO, whichever arrived first, is asked twice
    healthy = Counter({"CmoAnswer": 1, "CfoAnswer": 1, "CeoAnswer": 1, "CopyAnswer": len(out["plan"].channels)})
    assert srv.requests == healthy + Counter({first: 1})
    failed, retry = [b for b in srv.received if schema_of(b) == first][:2]
    assert retry["messages"] == failed["messages"]  # the client resent it: not a re-ask
    assert out["usage"].calls == sum(healthy.values())  # the failed attempt had no usage


def test_without_retries_a_503_fails_the_node_and_the_thread_resumes(run):
    with OpenAIServer(responder={"CeoAnswer": [Fault("503")]}) as broken:
        with pytest.raises(openai.InternalServerError) as failure:
            run(broken, "oa-resume", llm_retries=0)

    assert failure.value.status_code == 503
    assert broken.requests["CeoAnswer"] == 1  # no retry with llm_retries=0
    assert broken.faults_served == Counter({"503": 1})
    state = run.graph.get_state(config("oa-resume"))
    assert state.next == ("ceo",)
    assert state.values["proposal"].channels  # the round's CMO and CFO work was kept

    with OpenAIServer() as healthy:
        out = run(healthy, "oa-resume", resume=True, llm_retries=0)

    assert out["status"] == "executed", out.get("reason")
    # only what had not run yet: the CEO, then the copy
    assert healthy.requests == Counter({"CeoAnswer": 1, "CopyAnswer": len(out["plan"].channels)})
    assert out["usage"].lines[f"cmo/{QUICK}"].calls == 1


def test_default_responder_answers_every_schema_validly():
    from agents.actuator import CopyAnswer, within_limits
    from agents.ceo import CeoAnswer
    from agents.cfo import CfoAnswer
    from agents.cmo import CmoAnswer

    for schema in (CmoAnswer, CfoAnswer, CeoAnswer, CopyAnswer):
        answer = schema.model_validate(default_responder(schema.__name__, {"messages": []}))
        if schema is CopyAnswer:
            for channel in ("search", "social", "video", "display", "email"):
                within_limits(channel)(answer)

"""LLM usage and its cost: exact per-role totals in state (`usage`) and in the JSON that
`leadboost run --json` prints (`graph.runs.decision`), priced with an overridden table.

A scripted model answers with known token counts; the CLI test runs the real OpenAI
client against the local fake server, whose usage counters say what was billed.
"""

from __future__ import annotations

import json
import re

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents.pricing import PRICES, cost, price_table
from graph.builder import build_graph
from graph.checkpoints import serializer
from graph.runs import decision, usage_summary
from state import Context, SettingError, Usage, UsageLine
from tests.cli_runner import leadboost
from tests.fakes import ScriptedChatModel
from tests.fakes.openai_server import OpenAIServer, default_split
from tools.sources.sample import SampleSource

NOW = "2026-11-28T12:00:00+00:00"
BRIEF = {"brief": {"goal": "Launch the trail sneaker in Spain, up to 8,000 EUR", "budget": 8000, "max_rounds": 2}}
SPLIT = [{"channel": "search", "amount": 3000.0}, {"channel": "email", "amount": 600.0}]
IN, OUT = 1_000, 200  # tokens per scripted call
PRICES_X = '{"model-x": [1, 2]}'  # USD per 1M input tokens, per 1M output tokens


def sample_only(client, now, context):
    return [SampleSource(now)]


def two_round_model(model_name: str = "model-x") -> ScriptedChatModel:
    """CMO, CFO and CEO twice (the CEO revises round 1), then one copy per channel (2)."""

    def ceo(messages):
        last = int(re.search(r"Round (\d+) of", messages[0].content).group(1)) >= 2
        return {"action": "approve" if last else "revise", "rationale": "Numbers hold.",
                "guidance": "" if last else "Lead with grip.", "allocations": SPLIT, "cited_signals": []}

    return ScriptedChatModel(input_tokens=IN, output_tokens=OUT, model_name=model_name, scripts={
        "cmo": lambda m: {"argument": "Search and email.", "message": "Grip.", "allocations": SPLIT,
                          "cited_signals": []},
        "cfo": lambda m: {"stance": "support", "argument": "Pays back.", "recommended_budget": 3600.0,
                          "cut_channels": [], "cited_signals": []},
        "ceo": ceo,
        "copywriter": lambda m: {"headline": "Trail X", "body": "Grip on wet rock.", "call_to_action": "Shop now"},
    })


def run_scripted(tmp_path, model: ScriptedChatModel, prices: str = PRICES_X):
    ctx = Context(home=str(tmp_path), now=NOW, provider="offline", prices=prices)
    graph = build_graph(InMemorySaver(serde=serializer()), llm=model, sources=sample_only)
    config = {"configurable": {"thread_id": "usage-thread"}}
    out = graph.invoke(BRIEF, config, context=ctx)
    assert out["status"] == "executed", out.get("reason")
    as_json = json.loads(json.dumps(decision("usage-thread", graph.get_state(config), price_table(ctx.prices)),
                                    default=str))
    return out, as_json


def test_scripted_token_counts_give_exact_totals_per_role_in_state_and_json(tmp_path):
    out, as_json = run_scripted(tmp_path, two_round_model())

    calls = {"cmo": 2, "cfo": 2, "ceo": 2, "copywriter": 2}
    expected = {f"{role}/model-x": UsageLine(calls=n, input_tokens=n * IN, output_tokens=n * OUT)
                for role, n in calls.items()}
    assert out["usage"].lines == expected  # the state's reducer added parallel CMO/CFO and copy calls up
    assert (out["usage"].calls, out["usage"].tokens) == (8, 8 * (IN + OUT))

    usage = as_json["usage"]
    assert (usage["calls"], usage["tokens"]) == (8, 8 * (IN + OUT))
    for role, n in calls.items():
        line = usage["by_role_model"][f"{role}/model-x"]
        # model-x at 1 USD per 1M input tokens and 2 USD per 1M output tokens
        assert line == {"calls": n, "input_tokens": n * IN, "output_tokens": n * OUT,
                        "cost_usd": pytest.approx(n * (IN * 1 + OUT * 2) / 1e6)}
    assert usage["cost_usd"] == pytest.approx(8 * (IN + 2 * OUT) / 1e6)  # 0.0112


def test_a_model_without_a_price_has_no_cost_and_adds_nothing_to_the_total(tmp_path):
    out, as_json = run_scripted(tmp_path, two_round_model("unpriced-model"))
    usage = as_json["usage"]
    assert usage["calls"] == 8 and usage["tokens"] == 8 * (IN + OUT)
    assert {line["cost_usd"] for line in usage["by_role_model"].values()} == {None}
    assert usage["cost_usd"] == 0


def test_price_table_overrides_merge_over_the_defaults():
    table = price_table('{"model-x": [1, 2], "gpt-4.1": [3, 4]}')
    assert table["model-x"] == (1.0, 2.0) and table["gpt-4.1"] == (3.0, 4.0)
    assert table["gpt-4.1-mini"] == PRICES["gpt-4.1-mini"]
    assert price_table("") == PRICES
    usage = Usage(lines={"ceo/gpt-4.1": UsageLine(calls=1, input_tokens=1_000_000, output_tokens=500_000),
                         "cmo/model-x": UsageLine(calls=3, input_tokens=3_000, output_tokens=600)})
    assert cost(usage, table) == {"ceo/gpt-4.1": 5.0, "cmo/model-x": 0.0042, "total": 5.0042}
    summary = usage_summary(usage, table)
    assert summary["calls"] == 4 and summary["cost_usd"] == 5.0042


@pytest.mark.parametrize("bad", ["not json", '{"model-x": 1}', '{"model-x": ["a", 2]}', "[1, 2]"])
def test_a_bad_price_table_names_the_setting(bad):
    with pytest.raises(SettingError, match="LEADBOOST_PRICES"):
        price_table(bad)


def revise_round_one(body: dict) -> dict:
    return {"action": "revise", "rationale": "Once more.", "guidance": "Lead with grip.",
            "allocations": default_split(body), "cited_signals": []}


def test_run_json_reports_what_the_server_billed_priced_by_the_override(tmp_path, monkeypatch, capsys):
    """`leadboost run --json` on the OpenAI path: calls and tokens per role and model are the
    server's own counters, and the cost uses LEADBOOST_PRICES."""
    quick, deep = "model-x", "model-y"
    with OpenAIServer(responder={"CeoAnswer": [revise_round_one]}) as srv:
        for name, value in {"OPENAI_API_KEY": "sk-test-usage", "OPENAI_BASE_URL": srv.base_url,
                            "LEADBOOST_HOME": str(tmp_path / "home"), "LEADBOOST_NOW": NOW,
                            "LEADBOOST_QUICK_MODEL": quick, "LEADBOOST_DEEP_MODEL": deep,
                            "LEADBOOST_FORECAST_DRAWS": "2000",
                            "LEADBOOST_PRICES": '{"model-x": [1, 2], "model-y": [10, 20]}'}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert leadboost(monkeypatch, "run", "--goal", BRIEF["brief"]["goal"], "--rounds", "2",
                         "--thread", "usage-cli", "--json") == 0
        result = json.loads(capsys.readouterr().out)

    assert result["status"] == "executed"
    role_of = {"CmoAnswer": "cmo", "CfoAnswer": "cfo", "CeoAnswer": "ceo", "CopyAnswer": "copywriter"}
    price = {quick: (1, 2), deep: (10, 20)}
    expected, total = {}, 0.0
    for schema, counts in srv.usage.items():
        model = deep if schema == "CeoAnswer" else quick
        tokens_in, tokens_out = counts["prompt_tokens"], counts["completion_tokens"]
        usd = (tokens_in * price[model][0] + tokens_out * price[model][1]) / 1e6
        total += usd
        expected[f"{role_of[schema]}/{model}"] = {
            "calls": srv.requests[schema], "input_tokens": tokens_in, "output_tokens": tokens_out,
            "cost_usd": pytest.approx(usd, abs=1e-6)}
    assert result["usage"]["by_role_model"] == expected
    assert srv.requests["CeoAnswer"] == 2 and result["usage"]["calls"] == sum(srv.requests.values()) == 8
    assert result["usage"]["tokens"] == srv.tokens()
    assert result["usage"]["cost_usd"] == pytest.approx(total, abs=1e-5)

"""Which model decides, and one careful way to ask it for structured output.

`openai`: ChatOpenAI (any OpenAI-compatible server through OPENAI_BASE_URL),
with bounded retries on transient faults. `offline`: no model; each role runs
its deterministic policy over the same numbers. `ask` validates the answer
against the role's pydantic schema, re-asks once with the validation error, and
otherwise fails loudly with the raw text kept.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from weakref import WeakKeyDictionary

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.utils.json import parse_json_markdown
from pydantic import BaseModel, ValidationError

from agents.cache import CACHE_HIT, SqliteLLMCache
from state import Context, Usage, UsageLine

T = TypeVar("T", bound=BaseModel)
Tier = Literal["deep", "quick"]


class BudgetExhausted(RuntimeError):
    """The run has used its LLM calls or tokens; it stops instead of running up a bill.
    The thread stays resumable (raise the limit, then `leadboost resume`)."""


class StructuredOutputError(RuntimeError):
    """The model's answer did not fit the schema twice; `raw` keeps what it said."""

    def __init__(self, role: str, problem: str, raw: str) -> None:
        super().__init__(f"{role}: the model's answer was rejected twice: {problem}\nraw answer: {raw[:2000]}")
        self.role, self.problem, self.raw = role, problem, raw


def provider_of(context: Context) -> Literal["offline", "openai"]:
    if context.provider == "auto":
        return "openai" if os.environ.get("OPENAI_API_KEY") else "offline"
    return context.provider


def provider_label(context: Context, injected: BaseChatModel | None = None) -> str:
    """What every report says about who decided."""
    if injected is not None:
        return f"custom:{type(injected).__name__}"
    if provider_of(context) == "offline":
        return "offline"
    return f"openai:{context.quick_model}+{context.deep_model}"


def model_for(context: Context, tier: Tier) -> BaseChatModel | None:
    """The chat model for a tier, or None for the offline provider."""
    if provider_of(context) == "offline":
        return None
    name = context.deep_model if tier == "deep" else context.quick_model
    cache = context.llm_cache and (
        str(Path(context.home) / "llm_cache.sqlite") if context.llm_cache == "on" else context.llm_cache
    )
    return _chat_openai(name, os.environ.get("OPENAI_BASE_URL"), context.llm_timeout, context.llm_retries, cache)


#: One client per event loop and settings: an async HTTP client must not outlive or
#: change its loop, and a loop that is gone takes its clients with it.
_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, BaseChatModel]] = WeakKeyDictionary()


def _chat_openai(model: str, base_url: str | None, timeout: float, retries: int, cache: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI
    from openai import DefaultAsyncHttpxClient

    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (model, base_url, timeout, retries, cache)
    if key not in per_loop:
        # Our own HTTP client: langchain-openai's default one is shared by the whole process, so its
        # keep-alive connections would outlive their loop ("Event loop is closed" on the next one).
        per_loop[key] = ChatOpenAI(model=model, base_url=base_url, timeout=timeout, max_retries=retries,
                                   temperature=0.2, cache=_cache(cache) if cache else None,
                                   http_async_client=DefaultAsyncHttpxClient(timeout=timeout))
    return per_loop[key]


@lru_cache(maxsize=8)
def _cache(path: str) -> SqliteLLMCache:
    return SqliteLLMCache(path)


def model_name(llm: BaseChatModel) -> str:
    return getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """A plain JSON-schema response format: works on OpenAI and local servers alike,
    and leaves validation (and the raw text) to us."""
    return {"name": schema.__name__, "description": (schema.__doc__ or "").strip(), "schema": _json_schema(schema),
            "strict": False}


@lru_cache(maxsize=64)
def _json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """A schema's JSON schema, built once (pydantic takes ~1 ms per call; it is read, never changed)."""
    return schema.model_json_schema()


async def ask(
    llm: BaseChatModel,
    schema: type[T],
    messages: list[BaseMessage],
    *,
    role: str,
    check: Callable[[T], None] | None = None,
) -> tuple[T, Usage]:
    """Ask for `schema`; one corrective re-ask on a schema or `check` failure, then raise.

    The format goes with the call rather than through `with_structured_output` or `bind`: we
    validate the answer ourselves anyway, and the runnables those build cost ~2 ms of CPU per
    call (more than the HTTP round trip), which adds up over 50 concurrent decisions."""
    answer_format = {"type": "json_schema", "json_schema": response_format(schema)}
    usage = Usage()
    conversation = list(messages)
    problem, raw_text = "", ""
    for attempt in (1, 2):
        try:
            raw: AIMessage = await llm.ainvoke(conversation, config={"run_name": role, "tags": [f"role:{role}"]},
                                               response_format=answer_format)
        except _unusable_answer() as exc:  # cut off (finish_reason "length") or no choice at all
            problem, raw_text = f"the answer was cut off or empty ({type(exc).__name__})", ""
            billed = getattr(getattr(exc, "completion", None), "usage", None)  # a cut-off answer is paid in full
            line = UsageLine(calls=1, input_tokens=getattr(billed, "prompt_tokens", 0),
                             output_tokens=getattr(billed, "completion_tokens", 0))
            usage = usage + Usage(lines={f"{role}/{model_name(llm)}": line})
            conversation += [HumanMessage(content=f"Your previous answer was cut off or empty. Answer again with "
                                                  f"complete, short JSON that matches the {schema.__name__} schema.")]
            continue
        usage = usage + _usage(role, llm, raw)
        raw_text = raw.content if isinstance(raw.content, str) else json.dumps(raw.content)
        try:
            answer = schema.model_validate(_json_of(raw_text))
            if check:
                check(answer)
            return answer, usage
        except (ValidationError, ValueError) as exc:
            problem = str(exc)
            conversation += [
                AIMessage(content=raw_text),
                HumanMessage(content=f"Your answer was rejected: {problem}\nAnswer again with JSON that matches "
                                     f"the {schema.__name__} schema exactly."),
            ]
    raise StructuredOutputError(role, problem, raw_text)


def _json_of(text: str) -> Any:
    """The answer's JSON (a fenced ```json block too, as local models often send); strict, so
    that a cut-off answer is an error rather than a partial object."""
    try:
        parsed = parse_json_markdown(text, parser=json.loads)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if parsed is None:
        raise ValueError("not valid JSON: empty answer")
    return parsed


def _unusable_answer() -> tuple[type[BaseException], ...]:
    """Client errors that mean "the model's answer is unusable", not "the service failed"."""
    from openai import LengthFinishReasonError

    return (LengthFinishReasonError, IndexError)


def _usage(role: str, llm: BaseChatModel, raw: AIMessage) -> Usage:
    if raw.response_metadata.get(CACHE_HIT):  # answered from the LLM cache: no request, nothing to pay
        return Usage()
    meta = raw.usage_metadata or {}
    line = UsageLine(calls=1, input_tokens=meta.get("input_tokens", 0), output_tokens=meta.get("output_tokens", 0))
    return Usage(lines={f"{role}/{model_name(llm)}": line})


async def respond(
    role: str,
    schema: type[T],
    *,
    llm: BaseChatModel | None,
    context: Context,
    tier: Tier,
    messages: Callable[[], list[BaseMessage]],
    offline: Callable[[], T],
    check: Callable[[T], None] | None = None,
    spent: Usage | None = None,
) -> tuple[T, Usage]:
    """One role's answer: from the injected or configured model, or its offline policy.
    `spent` is the run's usage so far, checked against the context's LLM budget."""
    model = llm or model_for(context, tier)
    if model is None:
        answer = offline()
        if check:
            check(answer)
        return answer, Usage()
    spent = spent or Usage()
    if spent.calls >= context.max_llm_calls or spent.tokens >= context.max_tokens:
        raise BudgetExhausted(
            f"budget_exhausted: {spent.calls} LLM calls and {spent.tokens} tokens used "
            f"(limits {context.max_llm_calls} calls, {context.max_tokens} tokens)"
        )
    return await ask(model, schema, messages(), role=role, check=check)

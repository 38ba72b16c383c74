"""`ScriptedChatModel`: a chat model that answers from per-role scripts, offline.

`agents.llm.ask` calls any chat model the same way, so the roles run on this one as
on ChatOpenAI:

    await llm.ainvoke(messages, config={"tags": ["role:cmo"], ...}, response_format=...)
    -> AIMessage whose content is the answer's JSON, with usage_metadata

The role is read from the `role:<name>` tag that `ask` puts in the config; the
tag reaches the model's own run through the callback manager (`run_manager.tags`).
A script is `role -> list of responses` (consumed in order) or `role -> callable
(messages) -> response`; the key "*" serves roles without a script. A response is
a dict (sent as JSON content), a str (sent verbatim: invalid JSON cases), an
Exception (raised), or a callable(messages) returning one of those.
Every call is recorded in `.calls` as (role, messages).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Response = dict | str | Exception | Callable[[list[BaseMessage]], Any]


def role_of(tags: Sequence[str] | None) -> str | None:
    """The role named by a `role:<name>` tag, if any."""
    return next((t.split(":", 1)[1] for t in tags or () if t.startswith("role:")), None)


class ScriptedChatModel(BaseChatModel):
    """Answers each role from its script and records every call."""

    scripts: dict[str, Any] = Field(default_factory=dict)
    calls: list[tuple[str | None, list[BaseMessage]]] = Field(default_factory=list)
    input_tokens: int = 100
    output_tokens: int = 20
    model_name: str = "scripted"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def calls_for(self, role: str) -> list[list[BaseMessage]]:
        """The message lists sent by one role, in call order."""
        return [messages for r, messages in self.calls if r == role]

    def _next(self, role: str | None, messages: list[BaseMessage]) -> Any:
        script = self.scripts.get(role, self.scripts.get("*")) if role else self.scripts.get("*")
        if script is None:
            raise AssertionError(f"ScriptedChatModel: no script for role {role!r}")
        if isinstance(script, list):
            if not script:
                raise AssertionError(f"ScriptedChatModel: the script of role {role!r} is used up")
            script = script.pop(0)
        return script(messages) if callable(script) else script

    def _reply(self, messages: list[BaseMessage], tags: Sequence[str] | None) -> ChatResult:
        role = role_of(tags)
        self.calls.append((role, list(messages)))
        response = self._next(role, list(messages))
        if isinstance(response, BaseException):
            raise response
        content = response if isinstance(response, str) else json.dumps(response)
        usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                 "total_tokens": self.input_tokens + self.output_tokens}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content, usage_metadata=usage))])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._reply(messages, run_manager.tags if run_manager else None)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._reply(messages, run_manager.tags if run_manager else None)

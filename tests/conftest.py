"""Fixtures every test file may use: an isolated home, a fixed clock, a brief.

Tests never touch the network nor a developer's settings: the autouse
`isolated_env` removes API keys, source settings and LEADBOOST_* overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from state import Context

NOW = "2026-11-28T12:00:00+00:00"

#: Variables that would switch a test to a real model, a real source or other settings.
_ISOLATED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEWS_API_KEY", "NEWS_API_BASE_URL", "TWITTER_BEARER_TOKEN",
             "TWITTER_API_BASE_URL", "HN_API_BASE_URL")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No API key, no configured source, no LEADBOOST_* override from the shell."""
    for name in list(os.environ):
        if name in _ISOLATED or name.startswith("LEADBOOST_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicitly offline (also done by `isolated_env`; request it to say so)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty LEADBOOST_HOME for this test (the store is seeded on first use)."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("LEADBOOST_HOME", str(path))
    return path


@pytest.fixture
def now() -> str:
    return NOW


@pytest.fixture
def context(home: Path) -> Context:
    """Offline provider, fixed clock, the test's home."""
    return Context(home=str(home), now=NOW, provider="offline")


@pytest.fixture
def brief() -> dict:
    return {"goal": "Launch the trail sneaker in Spain, up to 8,000 EUR", "budget": 8000}


@pytest.fixture
def thread() -> dict:
    """A checkpointer config with a fixed thread id."""
    return {"configurable": {"thread_id": "test-thread"}}

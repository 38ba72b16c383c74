"""The `leadboost` CLI run in-process, the way a shell would see it: argv in, exit code out."""

from __future__ import annotations

import sys

import pytest

from graph.cli import main


def leadboost(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `leadboost ARGS` (output goes to the captured stdout/stderr); returns the exit code."""
    monkeypatch.setattr(sys, "argv", ["leadboost", *args])
    try:
        main()
    except SystemExit as exc:
        return exc.code or 0
    return 0

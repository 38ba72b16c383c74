"""One way to say what is wrong with an input: field and rule."""

from __future__ import annotations

from pydantic import ValidationError


class InvalidInput(ValueError):
    """An input breaks a rule; the message names each field and rule, one per line."""


def describe(exc: ValidationError, prefix: str = "") -> str:
    """`brief.budget: Input should be greater than 0` — one line per broken rule."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    return "\n".join(lines)

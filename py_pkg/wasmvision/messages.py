"""Keeping error messages one short line, whatever a hostile file puts in its names.

A 20 MB operator name quoted into an error would make a 20 MB "one-line" message; every reader quotes
user-supplied strings through ``quote`` and every reader error is capped by ``clip``."""

from __future__ import annotations

MAX_MESSAGE = 300  # characters in any reader error: enough for a field name, a value and a hint
MAX_QUOTED = 60  # characters of a user-supplied string (op name, tensor name) shown in a message


def quote(value: object, limit: int = MAX_QUOTED) -> str:
    """repr() of ``value``, shortened to ``limit`` characters with an ellipsis and the full length."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def clip(message: str, limit: int = MAX_MESSAGE) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def short(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` unquoted, shortened like ``quote`` (for op types shown in parentheses)."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"

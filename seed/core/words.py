"""Counting words said the same way everywhere: '1 member', '2 members', a list of names shortened."""

from __future__ import annotations

NAMES_SHOWN = 8  # a terminal line names this many images of a list; the JSON has them all


def counted(n: int, word: str) -> str:
    """'1 member', '2 members': a count with its noun."""
    return f"{n} {word}{'s' if n != 1 else ''}"


def shorten(names: list[str], n: int = NAMES_SHOWN) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more (all in the JSON)" if len(names) > n else "")

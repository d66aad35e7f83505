"""One-line messages for the user. A damaged file's values and libraries' exception texts may hold
line breaks, control bytes or pages of text; the app's status line and the CLI's ``error:`` line
show one short printable line, built here for every reader."""

from __future__ import annotations


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one printable line of at most ``limit`` characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_line(exc: BaseException, limit: int = 200, with_type: bool = False) -> str:
    """``exc``'s message by :func:`one_line` (``Type: message`` with ``with_type``); the type's
    name alone where the message is empty."""
    text = one_line(exc, limit)
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text}" if with_type else text

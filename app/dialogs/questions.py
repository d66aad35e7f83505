"""The editor's modal questions (tests pass their own answers instead)."""

from __future__ import annotations

from PyQt6.QtWidgets import QInputDialog, QMessageBox


def ask_yes_no(parent, title: str, text: str) -> bool:
    return QMessageBox.question(parent, title, text) == QMessageBox.StandardButton.Yes


def choose_slice(parent, title: str, count: int, default: int) -> int | None:
    """A slice index of a ``count``-slice series from the user; None if cancelled."""
    value, ok = QInputDialog.getInt(
        parent, "Choose slice", f"{title}\nSlice (0–{count - 1}):", default, 0, count - 1
    )
    return value if ok else None

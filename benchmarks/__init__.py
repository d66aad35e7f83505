"""Speed, memory and quality benchmarks: each prints a table and writes JSON (``make bench``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def measure_to_json(data: Path, out: Path, name: str, measure: Callable[[], dict]) -> dict | None:
    """Run ``measure`` on a data folder and write its result to ``out/name``; None (after a
    one-line error) when the data folder is missing or ``measure`` raises OSError / ValueError
    (a missing or wrong-mode model, no Inception weights, a bad split file)."""
    if not (Path(data) / "images").is_dir():
        print(f"error: no data folder at {data}")
        return None
    try:
        result = measure()
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return None
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    return result

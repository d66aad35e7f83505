"""Speed, memory and quality benchmarks: each prints a table and writes JSON (``make bench``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "medseg-ct100"


def add_test_set_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --ids, --augment and --out of the benchmarks that run on the evaluation's images
    (the held-out split under ``evaluate``'s seeded augmentations)."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ids", type=Path, default=REPO / "resources" / "splits" / "test.txt")
    parser.add_argument("--augment", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))


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

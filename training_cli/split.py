"""``split``: a reproducible train/test split of a data folder, stratified by lesion class and size."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Write a seeded train/test split of a data folder, stratified by lesion class and lesion area."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="data folder (medseg-ct100 layout)")
    p.add_argument("--test", type=int, default=16, help="slices in the test split (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    p.add_argument(
        "--out",
        default="resources/splits",
        help="folder for train.txt, test.txt and split.json (default resources/splits)",
    )


def run(args: argparse.Namespace) -> int:
    from gan.data import folder_ids
    from gan.splits import folder_lesion_areas, stratified_split

    folder = Path(args.data)
    ids = folder_ids(folder)
    ggo, cons = folder_lesion_areas(folder, ids)
    split = stratified_split(ids, ggo, cons, args.test, args.seed)
    for path in split.write(args.out, source=folder.name):
        print(f"wrote {path}")
    for name, counts in split.strata.items():
        print(f"  {name:28s} {counts['slices']:3d} slices, {counts['test']:2d} in test")
    print(f"{len(split.train)} train, {len(split.test)} test (seed {split.seed})")
    return 0

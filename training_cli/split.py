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
        "--ids",
        help="split only these slices (a split file), e.g. carve a validation set out of train.txt",
    )
    p.add_argument(
        "--names",
        default="train,test",
        help="names of the two files written (default train,test; e.g. train,val)",
    )
    p.add_argument(
        "--out",
        default="resources/splits",
        help="folder for train.txt, test.txt and split.json (default resources/splits)",
    )


def run(args: argparse.Namespace) -> int:
    from gan.data import folder_ids, read_split_file
    from gan.splits import folder_lesion_areas, stratified_split

    folder = Path(args.data)
    names = tuple(n.strip() for n in args.names.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise SystemExit(f"--names: two different names separated by a comma, not {args.names!r}")
    ids = folder_ids(folder)
    if args.ids:
        wanted = read_split_file(args.ids)
        missing = sorted(set(wanted) - set(ids))
        if missing:
            raise SystemExit(f"{args.ids}: {len(missing)} ids not in {folder}, e.g. {missing[0]}")
        ids = [i for i in ids if i in set(wanted)]
    ggo, cons = folder_lesion_areas(folder, ids)
    split = stratified_split(ids, ggo, cons, args.test, args.seed)
    source = folder.name + (f" ({args.ids})" if args.ids else "")
    for path in split.write(args.out, source=source, names=names):
        print(f"wrote {path}")
    for name, counts in split.strata.items():
        print(f"  {name:28s} {counts['slices']:3d} slices, {counts['test']:2d} in {names[1]}")
    print(f"{len(split.train)} {names[0]}, {len(split.test)} {names[1]} (seed {split.seed})")
    return 0

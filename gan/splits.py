"""Reproducible train/test splits of a data folder, stratified by lesion class and lesion size.

A slice's stratum is its lesion pattern (no lesion, GGO only, any consolidation) crossed with the
tercile of its total lesion area; every stratum gives the test set its share of slices (largest
remainder), drawn with a seeded generator, so the same folder and seed always give the same split.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

PATTERNS = ("none", "ggo-only", "consolidation")


@dataclasses.dataclass(frozen=True)
class Split:
    train: list[str]
    test: list[str]
    seed: int
    strata: dict[str, dict[str, int]]

    def write(
        self,
        folder: str | os.PathLike,
        source: str = "",
        names: tuple[str, str] = ("train", "test"),
    ) -> list[Path]:
        """``<train>.txt``, ``<test>.txt`` (one id per line, a header comment) and ``split.json``.

        ``names`` renames the two files, e.g. ``("train", "val")`` for a validation set carved
        out of a training split.
        """
        from gan.fsutil import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        header = (
            f"# seed {self.seed}; stratified by lesion pattern x lesion-area tercile"
            f"{'; source ' + source if source else ''}\n"
        )
        written = []
        for name, ids in zip(names, (self.train, self.test), strict=True):
            path = folder / f"{name}.txt"
            atomic_write_text(path, header + "".join(f"{i}\n" for i in ids))
            written.append(path)
        meta = {
            "seed": self.seed,
            "source": source,
            "method": "stratified: lesion pattern (none / ggo-only / consolidation) x lesion-area tercile",
            names[0]: len(self.train),
            names[1]: len(self.test),
            "strata": self.strata,
        }
        path = folder / "split.json"
        atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
        written.append(path)
        return written


def lesion_pattern(ggo_px: int, consolidation_px: int) -> str:
    if consolidation_px > 0:
        return "consolidation"
    return "ggo-only" if ggo_px > 0 else "none"


def stratified_split(
    ids: list[str],
    ggo_px: list[int] | np.ndarray,
    consolidation_px: list[int] | np.ndarray,
    n_test: int,
    seed: int = 0,
) -> Split:
    """Split ``ids`` into ``n_test`` test ids and the rest, each stratum in proportion."""
    n = len(ids)
    if len(set(ids)) != n:
        raise ValueError("ids must be unique")
    if not 0 < n_test < n:
        raise ValueError(f"test size must be between 1 and {n - 1} for {n} slices, not {n_test}")
    ggo = np.asarray(ggo_px, dtype=np.int64)
    cons = np.asarray(consolidation_px, dtype=np.int64)
    area = ggo + cons
    positive = area[area > 0]
    edges = np.quantile(positive, [1 / 3, 2 / 3]) if positive.size else np.zeros(2)
    strata: dict[str, list[int]] = {}
    for i in range(n):
        pattern = lesion_pattern(int(ggo[i]), int(cons[i]))
        tercile = "" if pattern == "none" else f"/area-t{int(np.searchsorted(edges, area[i])) + 1}"
        strata.setdefault(pattern + tercile, []).append(i)
    names = sorted(strata)
    # largest-remainder allocation of the test slots over the strata
    quota = np.array([len(strata[k]) * n_test / n for k in names])
    take = np.floor(quota).astype(int)
    order = np.argsort(-(quota - take), kind="stable")
    for j in order[: n_test - int(take.sum())]:
        take[j] += 1
    rng = np.random.default_rng(seed)
    test_idx: list[int] = []
    summary: dict[str, dict[str, int]] = {}
    for name, k in zip(names, take, strict=True):
        members = sorted(strata[name], key=lambda i: ids[i])
        chosen = rng.permutation(len(members))[:k]
        test_idx.extend(members[c] for c in chosen)
        summary[name] = {"slices": len(members), "test": int(k)}
    test_set = set(test_idx)
    train = sorted(ids[i] for i in range(n) if i not in test_set)
    test = sorted(ids[i] for i in test_set)
    return Split(train=train, test=test, seed=seed, strata=summary)


def folder_lesion_areas(folder: str | os.PathLike, ids: list[str]) -> tuple[list[int], list[int]]:
    """GGO and consolidation pixel counts of each slice's MedSeg lesion mask (0/1/2)."""
    from gan.ctio import read_label_image

    ggo, cons = [], []
    for i in ids:
        mask = read_label_image(Path(folder) / "lesions" / f"{i}.png")
        ggo.append(int((mask == 1).sum()))
        cons.append(int((mask == 2).sum()))
    return ggo, cons

"""Where training and evaluation slices come from: a data folder (medseg-ct100 layout), cached as
``.npz`` after the first read, or such an ``.npz`` directly (all a bare GPU box needs)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from gan.data import DataFolderError, SliceSet, folder_ids, read_split_file
from gan.lung import DERIVATION_VERSION

#: Bump when lung derivation or label-map building changes, so stale caches are rebuilt.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "ct-lesion-studio"


def _folder_key(folder: Path, ids: list[str], size: int) -> str:
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {"v": CACHE_VERSION, "lung": DERIVATION_VERSION, "size": size, "ids": ids}
        ).encode()
    )
    for slice_id in ids:
        for sub in ("images", "lesions"):
            stat = (folder / sub / f"{slice_id}.png").stat()
            digest.update(f"{sub}/{slice_id}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def folder_cache_path(folder: Path, ids: list[str], size: int, cache_dir: str | None) -> Path:
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return cache / f"slices-{size}-{_folder_key(folder, ids, size)}.npz"


def load_slices(
    data: str | os.PathLike, ids_file: str | None, size: int, cache_dir: str | None = None
) -> SliceSet:
    """Slices at ``size``: from an ``.npz`` (optionally restricted to a split) or a data folder."""
    data = Path(data)
    ids = read_split_file(ids_file) if ids_file else None
    if data.suffix == ".npz":
        slices = SliceSet.load(data)
        if ids is not None:
            missing = sorted(set(ids) - set(slices.ids))
            if missing:
                raise DataFolderError(f"{data}: ids not in this cache: {', '.join(missing[:10])}")
            keep = [slices.ids.index(i) for i in ids]
            slices = SliceSet(ids, slices.images[keep], slices.label_maps[keep])
        return slices.resized(size)
    if not data.is_dir():
        raise DataFolderError(f"{data}: no such data folder or .npz cache")
    wanted = ids if ids is not None else folder_ids(data)
    path = folder_cache_path(data, wanted, size, cache_dir)
    if path.exists():
        try:
            return SliceSet.load(path)
        except DataFolderError:
            path.unlink(missing_ok=True)
    slices = SliceSet.from_folder(data, wanted, size)
    try:
        slices.save(path)
    except OSError:
        pass  # a read-only cache location only costs the re-read next time
    return slices


def load_slices_for_ids(
    data: str | os.PathLike, ids: list[str], size: int, cache_dir: str | None = None
) -> SliceSet:
    """:func:`load_slices` for a list of ids rather than a split file."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.txt"
        path.write_text("".join(f"{i}\n" for i in ids))
        return load_slices(data, str(path), size, cache_dir)

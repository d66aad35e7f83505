"""Project files (``.ctlsproj``): image reference, labels and view, in one JSON document. No Qt.

The label map is stored losslessly as a base64 PNG; writes are atomic. The same format is the
autosave recovery file. ``baseline_png`` (optional) holds the labels of the real slice as it was
opened: inpainting regenerates where the labels differ from them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from gan.ctio import encode_png
from gan.fsutil import atomic_write_text
from gan.labels import LABEL_MAP_CONVENTION, validate_label_map
from gan.messages import error_line

FORMAT = "ct-lesion-studio-project"
VERSION = 1
SUFFIX = ".ctlsproj"


class ProjectError(ValueError):
    """A project file is unreadable or not ours; the message says why in one line."""


@dataclasses.dataclass
class Project:
    image_path: str | None
    image_index: int | None
    labels: np.ndarray
    baseline: np.ndarray | None = None
    spacing_override: tuple[float, float] | None = None
    view: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "image": {"path": self.image_path, "index": self.image_index},
                "spacing_override": list(self.spacing_override) if self.spacing_override else None,
                "view": self.view,
                "label_convention": LABEL_MAP_CONVENTION,
                "labels_png": _png_text(self.labels),
                "baseline_png": None if self.baseline is None else _png_text(self.baseline),
            },
            indent=1,
        )

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Project:
        import cv2

        path = Path(path)
        try:
            data = json.loads(path.read_text())
        # ValueError: JSONDecodeError, UnicodeDecodeError, an integer of too many digits;
        # RecursionError: thousands of nested brackets
        except (OSError, ValueError, RecursionError) as exc:
            raise ProjectError(
                f"{path}: not a readable project file ({error_line(exc, 160)})"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProjectError(f"{path}: not a CT Lesion Studio project")
        version = data.get("version", 0)
        if type(version) is not int:
            raise ProjectError(f"{path}: project version {str(version)[:20]!r} is not a number")
        if version > VERSION:
            shown = str(version) if version < 10**9 else "of many digits"
            raise ProjectError(f"{path}: project version {shown} is newer than this program")

        def decode(key: str) -> np.ndarray:
            if not isinstance(data[key], str):
                raise TypeError(f"{key} is not text")
            png = base64.b64decode(data[key])
            array = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
            return validate_label_map(array, what=f"{path.name} {key}")

        try:
            labels = decode("labels_png")
            baseline = decode("baseline_png") if data.get("baseline_png") else None
        except (KeyError, ValueError, TypeError, cv2.error) as exc:
            raise ProjectError(f"{path}: damaged label data ({error_line(exc, 160)})") from None
        if baseline is not None and baseline.shape != labels.shape:
            raise ProjectError(
                f"{path}: baseline labels {baseline.shape} differ from {labels.shape}"
            )
        # the app uses these as they are (a path, an index, sizes, slider values): check them here
        image = data.get("image") or {}
        if not isinstance(image, dict):
            raise ProjectError(f"{path}: damaged project (image is not a record)")
        image_path, index = image.get("path"), image.get("index")
        if image_path is not None and (not isinstance(image_path, str) or "\0" in image_path):
            raise ProjectError(f"{path}: damaged project (the image path is not text)")
        if index is not None and (type(index) is not int or index < 0):
            raise ProjectError(f"{path}: damaged project (image index {str(index)[:20]!r})")
        spacing = data.get("spacing_override")
        if spacing and not (
            isinstance(spacing, list) and len(spacing) == 2 and all(_positive(v) for v in spacing)
        ):
            raise ProjectError(f"{path}: damaged project (spacing {str(spacing)[:40]})")
        view = data.get("view") or {}
        if not isinstance(view, dict):
            raise ProjectError(f"{path}: damaged project (view is not a record)")
        checks = {
            "level": _number,
            "width": _positive,
            "opacity": lambda v: _number(v) and 0 <= v <= 1,
            "overlay_visible": lambda v: isinstance(v, bool),
        }
        for key, ok in checks.items():
            if key in view and not ok(view[key]):
                raise ProjectError(
                    f"{path}: damaged project (view {key} = {str(view[key])[:20]!r})"
                )
        return cls(
            image_path=image_path,
            image_index=index,
            labels=labels,
            baseline=baseline,
            spacing_override=(float(spacing[0]), float(spacing[1])) if spacing else None,
            view=view,
        )


def _number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _positive(value) -> bool:
    return _number(value) and value > 0


def _png_text(labels: np.ndarray) -> str:
    return base64.b64encode(encode_png(np.asarray(labels, np.uint8))).decode("ascii")

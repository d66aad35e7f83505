"""Project files (``.ctlsproj``): image reference, labels and view, in one JSON document. No Qt.

The label map is stored losslessly as a base64 PNG; writes are atomic. The same format is the
autosave recovery file. ``baseline_png`` (optional) holds the labels of the real slice as it was
opened: inpainting regenerates where the labels differ from them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np

from gan.ctio import encode_png
from gan.fsutil import atomic_write_text
from gan.labels import LABEL_MAP_CONVENTION, validate_label_map

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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"{path}: not a readable project file ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProjectError(f"{path}: not a CT Lesion Studio project")
        if int(data.get("version", 0)) > VERSION:
            raise ProjectError(
                f"{path}: project version {data['version']} is newer than this program"
            )

        def decode(key: str) -> np.ndarray:
            png = base64.b64decode(data[key])
            array = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
            return validate_label_map(array, what=f"{path.name} {key}")

        try:
            labels = decode("labels_png")
            baseline = decode("baseline_png") if data.get("baseline_png") else None
        except (KeyError, ValueError, TypeError, cv2.error) as exc:
            raise ProjectError(f"{path}: damaged label data ({exc})") from None
        if baseline is not None and baseline.shape != labels.shape:
            raise ProjectError(
                f"{path}: baseline labels {baseline.shape} differ from {labels.shape}"
            )
        spacing = data.get("spacing_override")
        return cls(
            image_path=data.get("image", {}).get("path"),
            image_index=data.get("image", {}).get("index"),
            labels=labels,
            baseline=baseline,
            spacing_override=tuple(spacing) if spacing else None,
            view=data.get("view", {}),
        )


def _png_text(labels: np.ndarray) -> str:
    return base64.b64encode(encode_png(np.asarray(labels, np.uint8))).decode("ascii")

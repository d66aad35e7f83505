"""Project files (``.ctlsproj``): image reference, labels and view, in one JSON document. No Qt.

The label map is stored losslessly as a base64 PNG; writes are atomic. The same format is the
autosave recovery file.
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
                "labels_png": base64.b64encode(
                    encode_png(np.asarray(self.labels, np.uint8))
                ).decode("ascii"),
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
        try:
            png = base64.b64decode(data["labels_png"])
            labels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
            labels = validate_label_map(labels, what=f"{path.name} labels")
        except (KeyError, ValueError, TypeError, cv2.error) as exc:
            raise ProjectError(f"{path}: damaged label data ({exc})") from None
        spacing = data.get("spacing_override")
        return cls(
            image_path=data.get("image", {}).get("path"),
            image_index=data.get("image", {}).get("index"),
            labels=labels,
            spacing_override=tuple(spacing) if spacing else None,
            view=data.get("view", {}),
        )

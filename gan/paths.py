"""Where bundled resources live: found relative to the package, never by the working directory.

In the source tree that is ``<repo>/resources``; in a PyInstaller bundle, ``resources`` beside the
frozen packages (``sys._MEIPASS``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def sample_slice_path() -> Path:
    return resources_dir() / "sample" / "medseg-0085.png"


def sample_lesions_path() -> Path:
    return resources_dir() / "sample" / "medseg-0085-lesions.png"


def app_icon_path() -> Path:
    return resources_dir() / "icons" / "ct-lesion-studio.png"


def model_card_path() -> Path:
    return resources_dir() / "models" / "MODEL_CARD.md"

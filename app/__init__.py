"""CT Lesion Studio desktop app (PyQt6). The only package that imports Qt."""

import os

# qimage2ndarray picks its Qt binding at import time; without this it may look for PyQt5 when it
# happens to be imported before PyQt6.
os.environ.setdefault("QT_DRIVER", "PyQt6")

__version__ = "0.1.0"  # kept equal to pyproject.toml's version (a test checks)

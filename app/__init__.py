"""CT Lesion Studio desktop app (PyQt6). The only package that imports Qt."""

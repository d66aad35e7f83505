"""The About dialog: version, the loaded model and its SHA-256, licences, and the warning."""

from __future__ import annotations

import html

from app import __version__

LICENCES = (
    ("CT Lesion Studio code", "MIT"),
    (
        "Default weights and the sample slice",
        "CC BY-NC-SA 4.0: trained on / taken from MedSeg COVID-19 CT data (Radiopaedia cases); "
        "non-commercial research and education use only, share alike",
    ),
    ("Qt 6 / PyQt6", "GPL v3 (PyQt6); Qt under LGPL v3"),
    ("PyTorch", "BSD-3-Clause"),
    ("NumPy, SciPy, scikit-image, pydicom, nibabel, MONAI, highdicom", "BSD / MIT / Apache-2.0"),
    ("OpenCV", "Apache-2.0"),
)


def about_html(model_description: str = "", model_sha256: str = "") -> str:
    model = (
        f"{html.escape(model_description)}<br><small>SHA-256 <code>{html.escape(model_sha256)}"
        "</code></small>"
        if model_description
        else "none loaded (Synthesis &rarr; Choose weights)"
    )
    rows = "".join(
        f"<tr><td>{html.escape(what)}</td><td>{html.escape(lic)}</td></tr>"
        for what, lic in LICENCES
    )
    return (
        f"<h3>CT Lesion Studio {__version__}</h3>"
        "<p>Paint lung, ground-glass opacity and consolidation labels on a CT slice; a global-local "
        "conditional GAN (after Jiang et al., <i>COVID-19 CT Image Synthesis with a Conditional "
        "Generative Adversarial Network</i>) turns them into a synthetic slice.</p>"
        f"<p><b>Model:</b> {model}</p>"
        f"<table cellspacing='4'>{rows}</table>"
        "<p><b>Every image this app makes is synthetic. It must not be used for diagnosis.</b></p>"
    )


def show_about(parent, model_description: str = "", model_sha256: str = "") -> None:
    from PyQt6.QtWidgets import QMessageBox

    QMessageBox.about(parent, "About CT Lesion Studio", about_html(model_description, model_sha256))


def open_model_card(parent) -> bool:
    """Open the shipped model card in the desktop's viewer; False (and one line) where it cannot."""
    from PyQt6.QtCore import QUrl
    from PyQt6.QtGui import QDesktopServices

    from gan.paths import model_card_path

    path = model_card_path()
    if path.is_file() and QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    parent.show_error("Model card", f"{path}: cannot be opened here; read it in any text viewer")
    return False

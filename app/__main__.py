"""CT Lesion Studio: ``python -m app [PATH]``.

Opens the editor on PATH (a DICOM file or series folder, a NIfTI volume, a PNG/JPG, or a
``.ctlsproj`` project), or on the bundled sample slice with its labels. ``--overlay OUT.png`` runs
headless instead: derive the lung, build the label map and write an overlay PNG in the paper's
colours (lung red, GGO blue, consolidation green).

Examples::

    python -m app                                  # the editor on the bundled sample slice
    python -m app scan.dcm                         # the editor on a DICOM slice
    python -m app volume.nii.gz --index 40         # one slice of a NIfTI volume
    python -m app --overlay output/overlay.png     # headless: sample slice -> overlay PNG
    python -m app --self-test                      # open, paint, synthesize, export; exit 0 if all work
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from app import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="CT Lesion Studio: paint lung / GGO / consolidation labels on a CT slice.",
        epilog="Examples: python -m app scan.dcm | python -m app --overlay output/overlay.png",
    )
    parser.add_argument(
        "path",
        nargs="?",
        help="CT slice: DICOM file or folder, NIfTI, PNG/JPG (default: the bundled sample slice)",
    )
    parser.add_argument(
        "--index",
        type=int,
        default=None,
        help="slice of a NIfTI volume / DICOM series, or frame of a multi-frame DICOM",
    )
    parser.add_argument(
        "--lesions", help="with --overlay: lesion mask (MedSeg 0/1/2 convention) for PATH"
    )
    parser.add_argument(
        "--overlay", metavar="OUT.png", help="headless: write the label overlay PNG and exit"
    )
    parser.add_argument("--opacity", type=float, default=0.45, help="label overlay opacity (0..1)")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check the install: open the sample slice, paint a lesion, synthesize with the "
        "default weights, export a PNG to a temp folder; exit 0 on success, 1 with the reason",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.self_test:
        from app.selftest import run_self_test

        return run_self_test()
    if args.overlay:
        return write_overlay(args)
    return run_gui(args)


def run_gui(args) -> int:
    from PyQt6.QtGui import QIcon
    from PyQt6.QtWidgets import QApplication

    from app.main_window import APP_NAME, MainWindow
    from app.project import SUFFIX
    from gan.paths import app_icon_path, sample_slice_path

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("ct-lesion-studio")  # ties windows to the .desktop entry (Wayland)
    app.setWindowIcon(QIcon(str(app_icon_path())))
    window = MainWindow()
    install_excepthook(window)
    window.show()
    if not window.files.offer_recovery():
        if args.path and args.path.endswith(SUFFIX):
            window.files.open_project(args.path)
        else:
            window.files.open_path(args.path or sample_slice_path(), args.index)
    return app.exec()


def install_excepthook(window) -> None:
    """An unexpected error in a slot shows a dialog and autosaves, instead of aborting the app
    (PyQt6 aborts on unhandled exceptions in slots by default)."""
    import traceback

    from PyQt6.QtWidgets import QMessageBox

    def hook(kind, value, tb) -> None:
        traceback.print_exception(kind, value, tb)
        try:
            window.files.autosave()
        except Exception:  # noqa: BLE001 - the dialog matters more than the autosave here
            pass
        QMessageBox.critical(
            window,
            "Unexpected error",
            f"{kind.__name__}: {value}\n\nYour labels were autosaved; the app keeps running.",
        )

    sys.excepthook = hook


def write_overlay(args) -> int:
    from gan.ctio import CTReadError, read_label_image, read_slice, write_png
    from gan.labels import CLASS_NAMES, LabelFormatError, overlay, validate_lesion_mask
    from gan.lung import labels_for_slice
    from gan.paths import sample_lesions_path, sample_slice_path

    path = Path(args.path) if args.path else sample_slice_path()
    lesions_path = (
        Path(args.lesions) if args.lesions else (sample_lesions_path() if not args.path else None)
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ct = read_slice(path, args.index)
        for w in caught:
            print(f"note: {w.message}", file=sys.stderr)
        lesions = None
        if lesions_path is not None:
            lesions = validate_lesion_mask(
                read_label_image(lesions_path, ct.slice_index), what=str(lesions_path)
            )
        # a lesion mask of another size is a ValueError here, a one-line error below
        label_map, problem = labels_for_slice(ct, lesions)
        if problem:  # the overlay still shows what was derived
            print(f"note: derived lung implausible ({problem})", file=sys.stderr)
        out = Path(args.overlay)
        write_png(out, overlay(ct.to_uint8(), label_map, args.opacity))
    except (CTReadError, LabelFormatError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = {CLASS_NAMES[k]: int((label_map == k).sum()) for k in range(1, 4)}
    units = (
        "HU" if ct.is_hu else ("8-bit display values" if ct.value_kind == "uint8" else "raw values")
    )
    print(f"Opened {path} ({ct.shape[1]}x{ct.shape[0]}, {units}).")
    print("Label map pixels: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"Overlay (lung red, GGO blue, consolidation green) written to {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

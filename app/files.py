"""Files in the editor: open (dialog, recent, drag and drop), projects (save, save as), autosave
and crash recovery, label import, and export. Nothing the user made is lost: a failed open keeps
the current work, writes are atomic, and autosaved work that cannot be restored is kept aside."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QStandardPaths, QTimer
from PyQt6.QtWidgets import QFileDialog

from app.project import SUFFIX
from app.session import EditSession, ExportError, OpenError
from gan.ctio import CTReadError
from gan.labels import LABEL_MAP_CONVENTION_TEXT, LabelFormatError

AUTOSAVE_MS = 30_000
RECOVERY_NAME = "recovery" + SUFFIX
RECENT_COUNT = 10
OPEN_FILTER = (
    "CT images (*.dcm *.dicom *.ima *.nii *.nii.gz *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)"
)
LABELS_FILTER = "Labels (*.png *.nii *.nii.gz *.dcm);;All files (*)"


def default_recovery_dir() -> Path:
    return Path(
        QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        or Path.home() / ".ct-lesion-studio"
    )


class Files(QObject):
    """Owned by the main window (``window``), whose session it opens, saves and exports."""

    def __init__(self, window, recovery_dir: Path | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.settings = window.settings
        self.recovery_dir = Path(recovery_dir) if recovery_dir else default_recovery_dir()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start(AUTOSAVE_MS)
        self.recent_menu = None  # set by app.actions

    @property
    def session(self) -> EditSession | None:
        return self.window.session

    @property
    def last_dir(self) -> str:
        return str(self.settings.value("last_dir", ""))

    # ------------------------------------------------------------------ opening
    def confirm_discard(self, question: str = "Open another image and drop the unsaved labels?"):
        """True if there is no unsaved work, or the user agrees to drop it."""
        session = self.session
        return (
            session is None
            or not session.has_unsaved_work
            or self.window.ask("Unsaved changes", question)
        )

    def open_dialog(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open CT image", self.last_dir, OPEN_FILTER
        )
        if path:
            self.open_path(path)

    def open_path(
        self,
        path: str | Path,
        index: int | None = None,
        labels: np.ndarray | None = None,
        baseline: np.ndarray | None = None,
    ) -> bool:
        """Open a slice; on failure show a one-line error and keep the current work as it was."""
        try:
            session = EditSession.open(path, index, labels, baseline, self.window.choose_index)
        except OpenError as exc:
            self.window.show_error("Cannot open file", str(exc))
            return False
        if session is None:
            return False
        self.window.show_session(session)
        self.remember_recent(Path(path))
        return True

    def open_project_dialog(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open project", self.last_dir, f"Projects (*{SUFFIX})"
        )
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path, remember: bool = True) -> bool:
        try:
            opened = EditSession.from_project(path, remember, self.window.choose_index)
        except OpenError as exc:
            self.window.show_error("Cannot open project", str(exc))
            return False
        if opened is None:
            return False
        session, project = opened
        self.window.show_session(session, project.view)
        if session.ct.source is not None:
            self.remember_recent(session.ct.source)
        return True

    def open_dropped(self, paths: list[str]) -> None:
        if paths and self.confirm_discard():
            if paths[0].endswith(SUFFIX):
                self.open_project(paths[0])
            else:
                self.open_path(paths[0])

    # ------------------------------------------------------------------ recent files
    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def remember_recent(self, path: Path) -> None:
        resolved = str(Path(path).resolve())
        recent = [resolved] + [p for p in self.recent() if p != resolved]
        self.settings.setValue("recent", recent[:RECENT_COUNT])
        self.settings.setValue("last_dir", str(Path(resolved).parent))
        self.refresh_recent()

    def refresh_recent(self) -> None:
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        for path in self.recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(
                lambda _=False, p=path: self.confirm_discard() and self.open_path(p)
            )
        self.recent_menu.setEnabled(bool(self.recent()))

    # ------------------------------------------------------------------ projects
    def save_project(self) -> bool:
        if self.session is None:
            return False
        if self.session.project_path is None:
            return self.save_project_as()
        return self.write_project(self.session.project_path)

    def save_project_as(self) -> bool:
        if self.session is None:
            return False
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save project", self.last_dir, f"Projects (*{SUFFIX})"
        )
        if not path:
            return False
        path = Path(path)
        return self.write_project(path if path.suffix == SUFFIX else path.with_suffix(SUFFIX))

    def write_project(self, path: Path) -> bool:
        session = self.session
        if session is None:
            return False
        try:
            session.project(self.window.view_state()).save(path)
        except OSError as exc:
            self.window.show_error("Cannot save project", f"{path}: {exc}")
            return False
        session.project_path = Path(path)
        session.saved_revision = session.document.revision
        self.window.refresh_title()
        self.window.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    # ------------------------------------------------------------------ autosave and recovery
    @property
    def recovery_path(self) -> Path:
        return self.recovery_dir / RECOVERY_NAME

    def autosave(self) -> bool:
        """Write the recovery file when there is unsaved work newer than the last autosave."""
        session = self.session
        if session is None or not session.autosave_due:
            return False
        try:
            self.recovery_dir.mkdir(parents=True, exist_ok=True)
            session.project(self.window.view_state()).save(self.recovery_path)
        except OSError as exc:
            self.window.statusBar().showMessage(f"Autosave failed: {exc}", 10_000)
            return False
        session.autosaved_revision = session.document.revision
        self.window.statusBar().showMessage(f"Autosaved {time.strftime('%H:%M:%S')}", 3000)
        return True

    def offer_recovery(self) -> bool:
        """After a crash, offer to restore the recovery file; True if restored.

        Declining discards it. A restore that fails (the image was moved, say) keeps it, renamed
        so the next autosave cannot overwrite it, and says where: the labels are never lost."""
        if not self.recovery_path.exists():
            return False
        if not self.window.ask(
            "Restore unsaved work?",
            "CT Lesion Studio did not close cleanly. Restore the work it autosaved?\n"
            "(No discards it.)",
        ):
            self.recovery_path.unlink(missing_ok=True)
            return False
        if self.open_project(self.recovery_path, remember=False):
            self.session.saved_revision = -1  # restored work is unsaved until saved
            self.window.refresh_title()
            return True
        kept = self._keep_unrestored_recovery()
        if kept is not None:
            self.window.show_error(
                "Autosaved work kept",
                f"The autosaved labels could not be restored and are kept in {kept}; open it "
                "with File > Open project once the problem above is fixed (a moved image, say).",
            )
        return False

    def _keep_unrestored_recovery(self) -> Path | None:
        """Rename the recovery file out of the autosave's way; None (and it stays) if that fails."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = self.recovery_dir / f"unrestored-{stamp}{SUFFIX}"
        n = 1
        while kept.exists():
            n += 1
            kept = self.recovery_dir / f"unrestored-{stamp}-{n}{SUFFIX}"
        try:
            self.recovery_path.rename(kept)
        except OSError as exc:
            self.window.show_error(
                "Autosaved work kept",
                f"{self.recovery_path} could not be renamed ({exc}); it stays",
            )
            return None
        return kept

    def closing(self) -> None:
        """A clean close: no crash to recover from."""
        self.recovery_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ labels in and out
    def import_labels_dialog(self) -> None:
        if self.session is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Import labels", self.last_dir, LABELS_FILTER
        )
        if path:
            self.import_labels(path)

    def import_labels(
        self,
        path: str | Path,
        convention: str | None = None,
        binary_class: int | None = None,
        confirm: bool = True,
    ) -> bool:
        """Read a label file, preview the mapping (unless ``confirm`` is False), apply it."""
        from app.dialogs.import_labels import ImportLabelsDialog
        from gan.label_import import read_for_import

        session = self.session
        if session is None:
            return False
        try:
            file = read_for_import(path, session.ct.slice_index)
        except (LabelFormatError, CTReadError, OSError, ValueError) as exc:
            self.window.show_error("Cannot import labels", str(exc))
            return False
        dialog = ImportLabelsDialog(file, session.ct, session.labels, self.window)
        if convention:
            dialog.select_convention(convention)
        if binary_class:
            dialog.select_binary_class(binary_class)
        if confirm and dialog.exec() != ImportLabelsDialog.DialogCode.Accepted:
            return False
        if dialog.result_labels is None:
            summary = dialog.summary.text().replace("<b>", "").replace("</b>", "")
            self.window.show_error("Cannot import labels", summary)
            return False
        session.document.replace(dialog.result_labels, "import labels")
        return True

    def export_labels_dialog(self) -> None:
        from gan.ctio import write_png

        if self.session is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export label map", "labels.png", "PNG (*.png)"
        )
        if path:
            try:
                write_png(
                    path, self.session.labels, text={"LabelConvention": LABEL_MAP_CONVENTION_TEXT}
                )
            except (OSError, ValueError) as exc:
                self.window.show_error("Export failed", f"{path}: {exc}")

    def export_slice_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.window, "Export synthetic slice to folder", self.last_dir
        )
        if folder:
            self.export_slice(folder)

    def export_slice(self, folder: str | Path) -> list[Path]:
        """The shown result's synthetic and composite slice and the labels into ``folder``."""
        if self.session is None:
            self.window.show_error("Nothing to export", "Open a slice first")
            return []
        try:
            files = self.session.export(folder, self.window.live.feather_px)
        except ExportError as exc:
            title = "Nothing to export" if self.session.result is None else "Export failed"
            self.window.show_error(title, str(exc))
            return []
        self.window.statusBar().showMessage(f"Exported {len(files)} files to {folder}", 8000)
        return files

    def batch_export_dialog(self) -> None:
        from app.dialogs.batch_export import BatchExportDialog

        weights = str(self.settings.value("weights", "default"))
        inpaint_weights = str(self.settings.value("inpaint_weights", "default"))
        BatchExportDialog(weights, self.window, inpaint_weights=inpaint_weights).exec()

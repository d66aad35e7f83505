"""The open case, without Qt: one :class:`EditSession` per opened slice.

It owns the slice, the label document, the labels of the slice as it is (edits are what differs:
the region inpainting regenerates), the pixel-spacing override, the selected lesion, the project
path, the saved and autosaved revisions and the request token. It builds synthesis requests,
accepts results (dropping those made for another case), composes them into the slice, applies the
augment operations and writes exports. The window (:mod:`app.main_window`) shows a session and
routes the user's actions to it; a new slice is a new session, so no state is reset by hand.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.document import MaskDocument, Region
from app.project import Project
from app.synthesis import InpaintContext, Request, Result
from gan.compose import Composed, Compositor
from gan.ctio import CTReadError, CTSlice, file_kind, list_dicom_series
from gan.labels import BACKGROUND, CONSOLIDATION, GGO, LUNG, LabelFormatError
from gan.lesions import Areas, areas_from_counts

LABEL_NAMES = {BACKGROUND: "background", LUNG: "Lung", GGO: "GGO", CONSOLIDATION: "Consolidation"}
#: The augment operations on the selected lesion (:meth:`EditSession.edit_selection`).
SELECTION_OPS = ("grow", "shrink", "move", "rotate", "scale", "mirror", "deform")

_tokens = itertools.count(1)


class OpenError(Exception):
    """A slice or project that cannot be opened; the message is one line for the user."""


class ExportError(Exception):
    """Nothing to export, or the export failed; one line for the user."""


class EditSession:
    """One open slice and everything edited on it."""

    def __init__(
        self,
        ct: CTSlice,
        labels: np.ndarray,
        baseline: np.ndarray,
        lung_problem: str | None = None,
        notes: list[str] | None = None,
    ) -> None:
        for what, array in (("labels", labels), ("baseline labels", baseline)):
            if np.shape(array) != ct.shape:
                raise OpenError(
                    f"{ct.source or 'slice'}: {what} {np.shape(array)} do not match the image "
                    f"{ct.shape}"
                )
        self.ct = ct
        self.document = MaskDocument(labels)
        #: the labels that describe the real slice as it is (at open): edits are what differs
        self.baseline_labels = np.array(baseline, np.uint8, copy=True)
        #: why the lung derived at open is implausible (gan.lung.lung_problem); whole-lung
        #: synthesis waits until the user paints lung labels
        self.lung_problem = lung_problem
        self.notes = list(notes or [])  # the reader's warnings, for the status bar
        self.token = next(_tokens)  # results for another session carry another token
        self.project_path: Path | None = None
        self.spacing_override: tuple[float, float] | None = None
        self.selection: np.ndarray | None = None
        self.result: Result | None = None
        self.saved_revision = self.autosaved_revision = self.document.revision
        self.compositor = Compositor()  # keeps the feather weights while the lung is unchanged
        self._counts = np.bincount(np.asarray(self.document.labels).ravel(), minlength=4)
        self._counted = np.array(self.document.labels, copy=True)
        self.document.subscribe(self._recount)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | Path,
        index: int | None = None,
        labels: np.ndarray | None = None,
        baseline: np.ndarray | None = None,
        choose_index: Callable[[str, int, int], int | None] | None = None,
    ) -> EditSession | None:
        """Open a slice; None if the user cancelled the choice of a series' slice. The labels
        default to those of the slice as it is: its derived lung, plus the bundled sample's own
        lesions. Raises :class:`OpenError`."""
        from gan.ctio import read_label_image, read_slice
        from gan.labels import validate_lesion_mask
        from gan.lung import labels_for_slice
        from gan.paths import sample_lesions_path, sample_slice_path

        path = Path(path)
        problem = None
        try:
            kind = file_kind(path) if path.exists() else "missing"
            if kind == "dicom-folder" and index is None:
                n = len(list_dicom_series(path))
                if n == 1:
                    index = 0
                else:
                    index = (choose_index or (lambda *_: n // 2))(
                        f"{path.name}: {n} slices", n, n // 2
                    )
                if index is None:
                    return None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ct = read_slice(path, index)
            if labels is None or baseline is None:
                lesions = None
                if path.resolve() == sample_slice_path().resolve():
                    lesions = validate_lesion_mask(read_label_image(sample_lesions_path()))
                derived, problem = labels_for_slice(ct, lesions)
                if problem:  # not drawn: the user paints the lung, or opens another slice
                    derived = np.where(derived >= GGO, derived, BACKGROUND).astype(np.uint8)
                labels = derived if labels is None else labels
                baseline = derived if baseline is None else baseline
            return cls(ct, labels, baseline, problem, [f"Note: {w.message}" for w in caught])
        except (CTReadError, LabelFormatError, OSError, ValueError) as exc:
            raise OpenError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from exc

    @classmethod
    def from_project(
        cls,
        path: str | Path,
        remember: bool = True,
        choose_index: Callable[[str, int, int], int | None] | None = None,
    ) -> tuple[EditSession, Project] | None:
        """The session a project file describes, and the project (its view settings are the
        window's); ``remember``: Save writes back to ``path``. Raises :class:`OpenError`."""
        from app.project import ProjectError

        try:
            project = Project.load(path)
        except ProjectError as exc:
            raise OpenError(str(exc)) from exc
        if not project.image_path:
            raise OpenError(f"{path}: the project names no image")
        session = cls.open(
            project.image_path,
            project.image_index,
            project.labels,
            project.baseline,
            choose_index,
        )
        if session is None:
            return None
        if project.spacing_override:
            session.spacing_override = tuple(float(v) for v in project.spacing_override)
        if remember:
            session.project_path = Path(path)
        return session, project

    # ------------------------------------------------------------------ state
    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.document.labels)

    @property
    def spacing(self) -> tuple[float, float] | None:
        return self.spacing_override or self.ct.spacing

    @property
    def has_unsaved_work(self) -> bool:
        return self.document.revision != self.saved_revision

    @property
    def autosave_due(self) -> bool:
        return self.has_unsaved_work and self.document.revision != self.autosaved_revision

    @property
    def name(self) -> str:
        return self.ct.source.name if self.ct.source else "untitled"

    @property
    def stem(self) -> str:
        return self.ct.source.stem.removesuffix(".nii") if self.ct.source else "slice"

    def project(self, view: dict | None = None) -> Project:
        ct = self.ct
        return Project(
            image_path=str(ct.source.resolve()) if ct.source else None,
            image_index=ct.slice_index if ct.slice_index is not None else ct.frame,
            labels=self.labels,
            baseline=self.baseline_labels,
            spacing_override=self.spacing_override,
            view=dict(view or {}),
        )

    def areas(self) -> Areas:
        return areas_from_counts(self._counts, self.spacing)

    def _recount(self, region: Region) -> None:
        """Keep the per-label counts: only the changed bounding box is counted again."""
        labels = self.labels
        if region is None:
            self._counts = np.bincount(labels.ravel(), minlength=4)
            self._counted = np.array(labels, copy=True)
            return
        r0, r1, c0, c1 = region
        old, new = self._counted[r0:r1, c0:c1], labels[r0:r1, c0:c1]
        self._counts = (
            self._counts
            - np.bincount(old.ravel(), minlength=4)
            + np.bincount(new.ravel(), minlength=4)
        )
        self._counted[r0:r1, c0:c1] = new

    def cursor_text(self, row: int, col: int) -> str:
        """What the status bar says about the pixel at (row, col); "" outside the slice."""
        ct = self.ct
        if not (0 <= row < ct.shape[0] and 0 <= col < ct.shape[1]):
            return ""
        value = float(ct.pixels[row, col])
        if ct.is_hu:
            text = f"{value:.0f} HU"
        elif ct.value_kind == "uint8":
            text = f"{value:.0f} (8-bit display value, not HU)"
        else:
            text = f"{value:.0f} (raw value)"
        return f"x {col}, y {row}: {text}, {LABEL_NAMES[int(self.labels[row, col])].lower()}"

    def lung_problem_line(self) -> str:
        return (
            f"Derived lung not used ({self.lung_problem}); paint the lung (label 1), "
            "or open another slice"
        )

    # ------------------------------------------------------------------ synthesis
    def edit_region(self, margin_mm: float, labels: np.ndarray | None = None) -> np.ndarray:
        """The pixels to regenerate: where ``labels`` (default: the current ones) differ from the
        labels of the real slice, dilated by ``margin_mm``."""
        from gan.inpaint import changed_region, margin_px

        labels = self.labels if labels is None else labels
        return changed_region(self.baseline_labels, labels, margin_px(self.spacing, margin_mm))

    def inpaint_context(self, margin_mm: float, labels: np.ndarray | None = None) -> InpaintContext:
        return InpaintContext(self.ct.to_model_range(), self.edit_region(margin_mm, labels))

    def synthesis_request(
        self,
        stage: str | None,
        inpainting: bool,
        margin_mm: float,
        preview_mode: str = "auto",
    ) -> Request | None:
        """The request for the current labels; None while whole-lung synthesis has no lung to
        work from (the lung derived at open was implausible and none has been painted)."""
        labels = self.labels
        if self.lung_problem and not inpainting:
            if not (labels == LUNG).any():
                self.result = None  # a whole lung synthesized from no lung is a grey patch
                return None
            self.lung_problem = None  # the user painted the lung
        context = self.inpaint_context(margin_mm) if inpainting else None
        return Request(self.token, np.array(labels, copy=True), stage, context, preview_mode)

    def accept(self, result: Result) -> bool:
        """Take ``result`` as the one shown and exported; False (dropped) where it was made for
        another case."""
        if result.token != self.token or result.image.shape != self.ct.shape:
            return False
        self.result = result
        return True

    def composed(self, feather_px: float) -> Composed | None:
        """The accepted result composed into the slice, for the current labels."""
        if self.result is None:
            return None
        return self.compose(self.result.image, self.labels, self.result.mask, feather_px)

    def compose(
        self, image: np.ndarray, labels: np.ndarray, mask: np.ndarray | None, feather_px: float
    ) -> Composed:
        return self.compositor.compose(self.ct, image, labels, mask, feather_px)

    def variant_requests(
        self, base_seed: int, count: int, inpainting: bool, margin_mm: float
    ) -> tuple[list, list | None, list[int]]:
        """``count`` seeded augmentations of the lesions: label maps, their inpaint contexts
        (or None) and seeds (each variant its own texture too)."""
        from gan.batch import augment_label_map

        maps = [
            augment_label_map(self.labels, base_seed + i, self.spacing)[0] for i in range(count)
        ]
        contexts = [self.inpaint_context(margin_mm, m) for m in maps] if inpainting else None
        return maps, contexts, list(range(base_seed, base_seed + count))

    def export(self, folder: str | Path, feather_px: float) -> list[Path]:
        """Synthetic and composite (PNG, DICOM) and the labels (PNG, NIfTI, DICOM SEG), stamped
        with the model that made the shown result. Raises :class:`ExportError`."""
        from gan.export import export_all
        from gan.messages import error_line

        composed = self.composed(feather_px)
        if composed is None:
            raise ExportError("No synthetic image yet: load weights in the Synthesis menu first")
        try:
            return export_all(
                folder,
                self.ct,
                self.labels,
                composed.synthetic,
                composed.composite,
                self.result.model.sha256,
                synthetic_region=composed.region,
                stem=self.stem,
            )
        except Exception as exc:  # noqa: BLE001 - any failure is one line, and the work stays
            raise ExportError(f"{folder}: {error_line(exc)}") from exc

    # ------------------------------------------------------------------ editing
    def auto_lung(self) -> str | None:
        """Replace the lung by the derived one (lesions kept); why not, where it is implausible."""
        from gan.labels import lesion_mask_from_label_map
        from gan.lung import labels_for_slice

        derived, problem = labels_for_slice(self.ct, lesion_mask_from_label_map(self.labels))
        if problem is None:
            self.document.set_lung(derived > BACKGROUND)
        return problem

    def select_at(self, row: int, col: int) -> int:
        """Select the lesion under (row, col); its pixel count (0: nothing there)."""
        from gan.lesions import lesion_at

        selection = lesion_at(self.labels, row, col)
        self.selection = selection if selection.any() else None
        return int(selection.sum())

    def edit_selection(
        self,
        op: str,
        margin_mm: float = 2.0,
        direction: tuple[int, int] = (0, 0),
        angle_deg: float = 15.0,
        scale: float = 1.2,
        seed: int = 0,
    ) -> bool:
        """Apply one augment operation to the selected lesion, as one undoable step; False with no
        selection. ``margin_mm``: grow/shrink amount and move step, in mm along either axis."""
        from gan import lesions as L

        if self.selection is None:
            return False
        if op not in SELECTION_OPS:
            raise ValueError(f"unknown operation {op!r}")
        labels = np.array(self.labels)  # a copy: the document's view changes on replace
        # (row, column) mm per pixel: a move or a margin is the same in mm along either axis
        axes = self.spacing or (L.ASSUMED_SPACING_MM, L.ASSUMED_SPACING_MM)
        selection = self.selection
        if op in ("grow", "shrink"):
            new = L.resize_lesion(
                labels, selection, margin_mm if op == "grow" else -margin_mm, axes
            )
        elif op == "move":
            shift = (direction[0] * margin_mm / axes[0], direction[1] * margin_mm / axes[1])
            new = L.transform_lesion(labels, selection, shift=shift)
        elif op == "rotate":
            new = L.transform_lesion(labels, selection, angle_deg=angle_deg)
        elif op == "scale":
            new = L.transform_lesion(labels, selection, scale=scale)
        elif op == "mirror":
            new = L.mirror_lesion(labels, selection)
        else:
            new = L.deform_lesion(labels, selection, seed=seed)
        self.document.replace(new, op)
        moved = (new >= GGO) & ((labels < GGO) | selection)
        self.selection = moved if moved.any() else None
        return True

    def add_random_lesions(
        self, count: int, ggo_fraction: float, target_fraction: float, seed: int, real_shapes: bool
    ) -> None:
        from gan.lesions import default_lesion_bank, random_lesions

        bank = default_lesion_bank() if real_shapes else None
        new = random_lesions(self.labels, count, ggo_fraction, target_fraction, seed, bank=bank)
        self.document.replace(new, "random lesions")

    def augment_all(self, seed: int) -> None:
        from gan.lesions import augment_lesions

        self.document.replace(augment_lesions(self.labels, seed=seed), "augment")
        self.selection = None

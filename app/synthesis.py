"""Synthesis requests and results, and the Qt-free engine that turns one into the other.

The editor's synthesis thread (:mod:`app.worker`) wraps a :class:`SynthesisEngine`; the GUI thread
only builds :class:`Request` objects (:meth:`app.session.EditSession.synthesis_request`) and receives
:class:`Result` objects. A result carries the identity of the model that made it (:class:`ModelInfo`),
so what is exported later is stamped with that model, whatever has been loaded since, and the token
of the case it was made for, so a result for a slice that is no longer open is dropped.

Two generators live in the engine: the label-mode one (the paper: the whole lung from the label map)
and, where it loads, the inpaint-mode one (only the edited region of the real slice is regenerated).
A request with an :class:`InpaintContext` goes to the second.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from gan.messages import error_line

#: How the stroke preview runs: "auto", "256" (G1 at 256², as trained) or "128" (G1 at 128²).
PREVIEW_MODES = ("auto", "256", "128")


@dataclasses.dataclass(frozen=True)
class InpaintContext:
    """What an inpaint request needs besides the labels: the real slice in [-1, 1] and the region."""

    image: np.ndarray  # (H, W) float32 in [-1, 1]
    mask: np.ndarray  # (H, W) bool: the pixels to regenerate


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Which generator made an image: what an export's provenance names."""

    sha256: str
    name: str  # the weights file's name, or "default"
    mode: str  # "label" or "inpaint"
    description: str  # one line for the status bar


@dataclasses.dataclass(frozen=True)
class Request:
    """One synthesis to run. ``stage`` "global" is the stroke preview (G1 only)."""

    token: int  # the case it is for (EditSession.token)
    labels: np.ndarray  # (H, W) uint8 label map
    stage: str | None = None
    context: InpaintContext | None = None
    preview_mode: str = "auto"
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Result:
    request_id: int
    token: int
    image: np.ndarray  # (H, W) float32 in [-1, 1]
    stage: str
    milliseconds: float
    device: str
    model: ModelInfo
    input_size: int = 512  # the label map's size at the network input (G1 runs at half of it)
    #: inpainting: the regenerated region (only it is synthetic); None: the whole lung (label mode)
    mask: np.ndarray | None = None


def _info(synthesizer, mode: str) -> ModelInfo:
    s = synthesizer
    prefix = "inpaint " if mode == "inpaint" else ""
    return ModelInfo(
        sha256=s.sha256,
        name=s.weights.name,
        mode=mode,
        description=f"{prefix}{s.config.preset} ({s.stage}) on {s.device.type.upper()}, "
        f"sha256 {s.sha256[:12]}",
    )


class SynthesisEngine:
    """Owns the generators (label mode and, optionally, inpaint mode); runs requests. Not
    thread-safe: one thread (the synthesis thread, or a test) uses it."""

    def __init__(self) -> None:
        self.synthesizer = None
        self.inpainter = None
        self.model: ModelInfo | None = None
        self.inpaint_model: ModelInfo | None = None
        self.runs = 0  # how many requests were actually synthesized (tests read it)

    def load(self, weights: str, device: str = "auto", mode: str = "label") -> ModelInfo:
        """Load a generator for ``mode``; raises on failure (and the old one is dropped, so
        nothing is made by a model the user replaced)."""
        from gan.synthesizer import Synthesizer

        if mode == "inpaint":
            self.inpainter = self.inpaint_model = None
        else:
            self.synthesizer = self.model = None
        synthesizer = Synthesizer(weights, device=None if device == "auto" else device, mode=mode)
        info = _info(synthesizer, mode)
        if mode == "inpaint":
            self.inpainter, self.inpaint_model = synthesizer, info
        else:
            self.synthesizer, self.model = synthesizer, info
        return info

    def preview_size(self, mode: str) -> int | None:
        """Input size for the stroke preview: ``None`` runs G1 at 256² (half of 512²); 256 runs
        it at 128², a quarter of the work. ``auto`` takes the fast one where inference runs on a
        CPU without native bf16 (there G1 at 256² takes about 180 ms on two cores)."""
        s = self.synthesizer
        if mode == "auto":
            mode = "128" if s is not None and s.device.type == "cpu" and not s.cpu_bf16 else "256"
        return s.size // 2 if mode == "128" and s is not None else None

    def run(self, request: Request, request_id: int = 0) -> Result:
        """Synthesize one request; raises RuntimeError (one line) where no model can run it."""
        context = request.context
        synthesizer, model = (
            (self.synthesizer, self.model)
            if context is None
            else (self.inpainter, self.inpaint_model)
        )
        if synthesizer is None:
            raise RuntimeError(
                "no inpainting model loaded" if context is not None else "no model loaded"
            )
        start = time.perf_counter()
        size = self.preview_size(request.preview_mode) if request.stage == "global" else None
        if context is not None and not context.mask.any():
            image = context.image  # nothing edited: the real slice, no network run
        elif context is not None:
            image = synthesizer.synthesize(
                request.labels,
                stage=request.stage,
                size=size,
                image=context.image,
                mask=context.mask,
                seed=request.seed,
            )
        else:
            image = synthesizer.synthesize(
                request.labels, stage=request.stage, size=size, seed=request.seed
            )
        self.runs += 1
        return Result(
            request_id=request_id,
            token=request.token,
            image=image,
            stage=request.stage or synthesizer.stage,
            milliseconds=(time.perf_counter() - start) * 1000,
            device=synthesizer.device.type,
            model=model,
            input_size=size or synthesizer.size,
            mask=None if context is None else context.mask,
        )

    def variants(
        self, label_maps: list, contexts: list | None, seeds: list | None
    ) -> tuple[list, ModelInfo]:
        """Several label maps at once (the variants dialog): (labels, image, mask or None)
        triples and the model that made them; with ``contexts`` (one per map) by inpainting."""
        if self.synthesizer is None:
            raise RuntimeError("no model loaded")
        if contexts is not None and self.inpainter is not None:
            images = self.inpainter.synthesize_batch(
                np.stack(label_maps),
                images=np.stack([c.image for c in contexts]),
                masks=np.stack([c.mask for c in contexts]),
                seeds=seeds,
            )
            masks, model = [c.mask for c in contexts], self.inpaint_model
        else:
            images = self.synthesizer.synthesize_batch(np.stack(label_maps), seeds=seeds)
            masks, model = [None] * len(label_maps), self.model
        return list(zip(label_maps, images, masks, strict=True)), model


def failure_line(what: str, exc: BaseException) -> str:
    """``what: <the error's first line>`` for the status bar."""
    return f"{what}: {error_line(exc)}"

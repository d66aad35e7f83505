"""Inference: label map -> synthetic slice, and compositing into the real non-lung area.

One device policy (:func:`resolve_device`: CUDA, then MPS, then CPU) and one autocast policy
(:func:`autocast_context`: bf16 on CUDA; on the CPU only where asked, as on CPUs with native bf16)
for the whole project.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time

import numpy as np
import torch

from gan.checkpoint import (
    inference_stage,
    load_generator,
    resolve_weights,
    sha256_file,
    trained_stages,
)
from gan.labels import NUM_CLASSES, one_hot_torch, validate_label_map
from gan.models.generator import Stage
from gan.resample import resize_image, resize_labels


def resolve_device(preferred: str | None = None) -> torch.device:
    """``preferred`` ("cuda", "mps", "cpu") if given and available, else the best one available."""
    if preferred and preferred != "auto":
        if preferred not in ("cpu", "mps") and not preferred.startswith("cuda"):
            raise ValueError(f"unknown device {preferred!r}; use auto, cpu, cuda, cuda:N or mps")
        if preferred.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but is not available on this machine")
        if preferred == "mps" and not torch.backends.mps.is_available():
            raise ValueError("MPS was requested but is not available on this machine")
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_native_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def autocast_context(device: torch.device, enabled: bool = True, cpu: bool = False):
    """bf16 autocast on CUDA (``enabled``) and on the CPU only when asked (``cpu``); else a no-op.

    CPU bf16 speed depends on the processor (``benchmarks/models.py`` measures it): callers turn it
    on where the CPU has native bf16 (:func:`cpu_has_native_bf16`) or the user asks."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Synthesizer:
    """Turns label maps into synthetic slices with one loaded generator.

    Parameters
    ----------
    weights : a checkpoint (``.pt``) or export (``.safetensors``) path, or "default" for the
        shipped default model of ``mode``.
    device : "cuda", "mps", "cpu" or None/"auto" for the best available.
    mode : "label" or "inpaint": the generator must be of this mode (a clear
        :class:`~gan.checkpoint.CheckpointError` otherwise); None accepts either ("label" for
        "default").
    """

    def __init__(
        self,
        weights: str | os.PathLike,
        device: str | None = None,
        bf16: bool = True,
        cpu_bf16: bool | None = None,
        mode: str | None = None,
    ) -> None:
        from gan.checkpoint import CheckpointError

        self.weights = resolve_weights(weights, mode or "label")
        self.device = resolve_device(device)
        self.generator, self.config = load_generator(self.weights, map_location="cpu")
        if mode is not None and self.mode != mode:
            raise CheckpointError(
                f"{self.weights.name} is {_article(self.mode)} {self.mode}-mode generator, but "
                f"{_article(mode)} {mode}-mode one is needed here"
            )
        #: the path the weights were trained for: "joint" (G1+G2), or "global"/"local" alone
        self.stage = inference_stage(trained_stages(self.weights))
        self.generator.to(self.device).eval()
        self.bf16 = bf16
        # bf16 on the CPU only where the processor has native bf16 (1.5x faster on such a CPU in
        # benchmarks/latency.py; emulated bf16 elsewhere is slower than fp32); None = detect
        self.cpu_bf16 = cpu_has_native_bf16() if cpu_bf16 is None else cpu_bf16
        self.last_inference_ms = float("nan")
        #: the window of the last :meth:`inpaint_region` (None: the whole slice)
        self.last_window = None
        # per image and stage, the instance-norm statistics of its last whole-slice pass
        self._norm_layers = [
            m for m in self.generator.modules() if isinstance(m, torch.nn.InstanceNorm2d)
        ]
        self._slice_statistics: dict = {}
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.weights)
        return self._sha256

    @property
    def size(self) -> int:
        return self.config.generator.size

    @property
    def mode(self) -> str:
        """The generator's mode: "label" (the paper: label map only) or "inpaint" (label map +
        image + region mask)."""
        return self.config.generator.mode

    def synthesize(
        self,
        label_map: np.ndarray,
        stage: Stage | None = None,
        size: int | None = None,
        image: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """(H, W) label map (0..3, any size) -> (H, W) float32 synthetic slice in [-1, 1].

        ``stage=None`` runs what the weights were trained for; ``stage="global"`` runs G1 alone at
        half resolution: the fast preview and the ablation. ``size`` runs the network at another
        input resolution than it was trained at (a multiple of 16; half the size is a quarter of
        the work, at the price of detail): the fastest preview.

        An ``inpaint`` generator also needs the real ``image`` (H, W) in [-1, 1] and the region
        ``mask`` (H, W) to regenerate; use only the output inside the mask (:meth:`inpaint`).

        ``seed`` picks the texture of a generator with noise inputs (the same labels and seed give
        the same image); others ignore it.
        """
        images = None if image is None else np.asarray(image)[None]
        masks = None if mask is None else np.asarray(mask)[None]
        return self.synthesize_batch(
            np.asarray(label_map)[None], stage, size, images, masks, seeds=[seed]
        )[0]

    def inpaint(
        self,
        label_map: np.ndarray,
        image: np.ndarray,
        mask: np.ndarray,
        stage: Stage | None = None,
        size: int | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """The real ``image`` (H, W, [-1, 1]) with the ``mask`` region regenerated to match
        ``label_map``; every pixel outside the mask is the input's own."""
        from gan.inpaint import paste

        generated = self.synthesize(label_map, stage, size, image, mask, seed)
        return paste(generated, image, np.asarray(mask, bool))

    @property
    def window_multiple(self) -> int:
        """Window sides and offsets are multiples of this: 2 (G1 runs at half resolution) x
        2^n_downsample (G1's stride-2 convs, undone by as many x2 upsamplings)."""
        return 2 ** (self.config.generator.n_downsample + 1)

    def inpaint_region(
        self,
        label_map: np.ndarray,
        image: np.ndarray,
        mask: np.ndarray,
        margin_px: int | None = None,
        stage: Stage | None = None,
        seed: int = 0,
        max_fraction: float | None = None,
        statistics: str = "slice",
    ) -> np.ndarray:
        """:meth:`inpaint` on a window around the region: the real ``image`` (H, W, [-1, 1]) with
        the ``mask`` region regenerated to match ``label_map``; every pixel outside the mask is the
        input's own, bit for bit (float32).

        The generator runs on :func:`gan.inpaint.inpaint_window`: the mask's bounding box plus
        ``margin_px`` model pixels of real context (default
        :data:`gan.inpaint.DEFAULT_WINDOW_MARGIN_PX`), on the :attr:`window_multiple` grid, at the
        model's pixel scale (a slice of another size is resampled to :attr:`size` first, as
        :meth:`inpaint` does, and the window's output resampled back). Where the window would
        cover more than ``max_fraction`` of the slice (default
        :data:`gan.inpaint.MAX_WINDOW_FRACTION`), the result is :meth:`inpaint`'s, the
        whole-slice reference, exactly. Both defaults and the rule that chose them are measured
        by benchmarks/inpaint_window.py (docs/benchmarks.md).

        ``statistics`` is what the generator's instance norms normalise a window by:

        * ``"slice"`` (default): the per-channel statistics of a whole-slice pass over this image
          (and stage), kept from the last whole-slice pass of :meth:`inpaint_region` or
          :meth:`prepare_region` on it. The first call on an image without them is a whole-slice
          pass (exact, and it keeps them); later edits of the same slice are windowed. On a
          window, a norm's own statistics are those of a different image, and the output drifts.
        * ``"window"``: the window's own statistics; every call is windowed (measured: lower
          quality; for the comparison).

        :attr:`last_window` is the window used (None: the whole slice, or an empty mask, which is
        returned unchanged). ``seed`` sets the noise inputs as in :meth:`inpaint`; a window draws
        its noise at its own size (the same seed gives the same window, not the whole slice's
        texture)."""
        from gan.inpaint import DEFAULT_WINDOW_MARGIN_PX, MAX_WINDOW_FRACTION, inpaint_window

        if statistics not in ("slice", "window"):
            raise ValueError(f"statistics must be 'slice' or 'window', not {statistics!r}")
        label_map, image, mask = self._region_inputs(label_map, image, mask)
        stage = stage or self.stage
        self.last_window = None
        if not mask.any():
            self.last_inference_ms = 0.0
            return image.copy()
        start = time.perf_counter()
        labels, image_t, mask_t, model_mask = self._at_model_scale(label_map, image, mask)
        window = inpaint_window(
            model_mask,
            DEFAULT_WINDOW_MARGIN_PX if margin_px is None else margin_px,
            self.window_multiple,
            MAX_WINDOW_FRACTION if max_fraction is None else max_fraction,
        )
        key = (_digest(image), stage)
        norms = self._slice_statistics.get(key) if statistics == "slice" else None
        if window is None or (statistics == "slice" and norms is None):
            # the whole slice: the reference, and the statistics later windows of it use
            recorded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
            with _instance_norms(self._norm_layers, record=recorded):
                result = self.inpaint(label_map, image, mask, stage=stage, seed=seed)
            self._keep_statistics(key, recorded)
            return result
        rows, cols = window.slices
        with (
            torch.inference_mode(),
            autocast_context(self.device, self.bf16, cpu=self.cpu_bf16),
            _instance_norms(self._norm_layers, replay=norms),
        ):
            from gan.inpaint import inpaint_condition

            condition = inpaint_condition(
                one_hot_torch(labels[:, rows, cols]),
                image_t[:, :, rows, cols],
                mask_t[:, :, rows, cols],
            ).to(self.device)
            output = self.generator(condition, stage=stage, noise_seeds=[seed])
            # G1 alone answers at half the window's size
            output = resize_image(output.float(), (window.height, window.width)).clamp_(-1, 1)
            output = output[0, 0].cpu()
        result = image.copy()
        if model_mask is mask:  # the slice is at the model's scale: paste the window's pixels
            inside = mask[rows, cols]
            result[rows, cols][inside] = output.numpy()[inside]
        else:
            canvas = image_t[0, 0].clone()
            canvas[rows, cols] = output
            full = resize_image(canvas[None, None], image.shape)[0, 0].numpy()
            result[mask] = full[mask]
        self.last_window = window
        self.last_inference_ms = (time.perf_counter() - start) * 1000
        return result

    def prepare_region(
        self, label_map: np.ndarray, image: np.ndarray, stage: Stage | None = None
    ) -> None:
        """Keep the slice statistics :meth:`inpaint_region` windows ``image`` with, from a
        whole-slice pass with nothing masked (a few hundred ms on a CPU): call it when a slice
        opens, and the first edit is windowed too."""
        label_map, image, mask = self._region_inputs(label_map, image, np.zeros(image.shape, bool))
        stage = stage or self.stage
        recorded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        with _instance_norms(self._norm_layers, record=recorded):
            self.synthesize(label_map, stage, image=image, mask=mask)
        self._keep_statistics((_digest(image), stage), recorded)

    def _region_inputs(self, label_map, image, mask):
        if self.mode != "inpaint":
            raise ValueError(f"inpainting needs an inpaint-mode generator, not a {self.mode} one")
        label_map = validate_label_map(np.asarray(label_map))
        image = np.asarray(image, np.float32)
        mask = np.asarray(mask, bool)
        if label_map.ndim != 2 or image.shape != label_map.shape or mask.shape != image.shape:
            raise ValueError(
                f"label map {label_map.shape}, image {image.shape} and mask {mask.shape} must be "
                "one (H, W)"
            )
        return label_map, image, mask

    def _at_model_scale(self, label_map, image, mask):
        """(1, H, W) labels, (1, 1, H, W) image and mask tensors at the model's size, as
        :meth:`synthesize_batch` resamples them, and the mask there as an array (``mask`` itself
        where the slice is at the model's size)."""
        size = self.size
        labels = torch.from_numpy(label_map.astype(np.int64))[None]
        image_t = torch.from_numpy(image)[None, None]
        mask_t = torch.from_numpy(mask.astype(np.float32))[None, None]
        if image.shape == (size, size):
            return labels, image_t, mask_t, mask
        labels = resize_labels(labels, size)
        image_t = resize_image(image_t, (size, size))
        mask_t = _region_at(mask_t, size)
        return labels, image_t, mask_t, mask_t[0, 0].numpy() > 0.5

    def _keep_statistics(self, key, recorded: dict) -> None:
        if not recorded:
            return
        self._slice_statistics.pop(key, None)
        self._slice_statistics[key] = recorded
        while len(self._slice_statistics) > _SLICES_KEPT:
            self._slice_statistics.pop(next(iter(self._slice_statistics)))

    def _condition(self, labels: torch.Tensor, images, masks, size: int) -> torch.Tensor:
        """The generator input at ``size``: one-hot labels, plus image and mask in inpaint mode."""
        one_hot = one_hot_torch(labels)
        if self.mode != "inpaint":
            return one_hot
        from gan.inpaint import inpaint_condition

        if images is None or masks is None:
            raise ValueError("an inpaint-mode generator needs the real image and a region mask")
        images, masks = np.asarray(images, np.float32), np.asarray(masks)
        if images.shape != masks.shape or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images {images.shape} and masks {masks.shape} must match the label maps"
            )
        image_t = torch.from_numpy(images)[:, None].to(self.device)
        mask_t = torch.from_numpy(masks.astype(np.float32))[:, None].to(self.device)
        image_t = resize_image(image_t, (size, size))
        return inpaint_condition(one_hot, image_t, _region_at(mask_t, size))

    def synthesize_batch(
        self,
        label_maps: np.ndarray,
        stage: Stage | None = None,
        size: int | None = None,
        images: np.ndarray | None = None,
        masks: np.ndarray | None = None,
        seeds: list[int] | None = None,
    ) -> np.ndarray:
        """(B, H, W) label maps -> (B, H, W) float32 in [-1, 1] (inpaint mode: with (B, H, W)
        ``images`` in [-1, 1] and region ``masks``). ``seeds``: one per map, the noise inputs'
        seeds (default 0 for every map): each image's texture is its seed's, whatever the batch."""
        label_maps = np.asarray(label_maps)
        if label_maps.ndim != 3:
            raise ValueError(f"expected (B, H, W) label maps, got shape {label_maps.shape}")
        seeds = [0] * len(label_maps) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != len(label_maps):
            raise ValueError(f"{len(seeds)} seeds for {len(label_maps)} label maps")
        for i, m in enumerate(label_maps):
            validate_label_map(m, what=f"label map {i}")
        height, width = label_maps.shape[1:]
        stage = stage or self.stage
        start = time.perf_counter()
        with torch.inference_mode(), autocast_context(self.device, self.bf16, cpu=self.cpu_bf16):
            labels = torch.from_numpy(label_maps.astype(np.int64)).to(self.device)
            if size is not None and (size < 32 or size % 16):
                raise ValueError(f"size must be a multiple of 16 and at least 32, not {size}")
            labels = resize_labels(labels, size or self.size)
            # (B, S, S) -> (B, 4 [+2], S, S) -> (B, 1, S or S/2, ...)
            condition = self._condition(labels, images, masks, size or self.size)
            output = self.generator(condition, stage=stage, noise_seeds=seeds)
            output = resize_image(output.float(), (height, width)).clamp_(-1, 1)
            result = output[:, 0].cpu().numpy()
        self.last_inference_ms = (time.perf_counter() - start) * 1000
        return result.astype(np.float32)


def _region_at(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A (B, 1, H, W) region mask at the model's ``size``: a model pixel is in the region if any
    source pixel under it is, so the region never shrinks."""
    return (torch.nn.functional.interpolate(mask, size=(size, size), mode="area") > 0).float()


#: the slices whose statistics :meth:`Synthesizer.inpaint_region` keeps (the most recent ones)
_SLICES_KEPT = 4


def _digest(image: np.ndarray) -> tuple:
    return image.shape, hashlib.blake2b(
        np.ascontiguousarray(image).tobytes(), digest_size=16
    ).digest()


@contextlib.contextmanager
def _instance_norms(layers, record: dict | None = None, replay: dict | None = None):
    """Within the block, each instance norm of ``layers`` (affine-free ``InstanceNorm2d``) either
    stores its input's per-channel mean and variance in ``record`` (its output unchanged), or
    normalises by the ones in ``replay`` instead of its input's (batch norm with those as the
    running statistics: for a batch of one, the instance norm of an image with those statistics).
    Neither: unchanged."""
    if record is None and replay is None:
        yield
        return

    def recording(i, layer):
        def forward(x):
            # two plain means: torch.var_mean is ~3x slower on the CPU, in bf16 and fp32 alike
            mean = x.mean((2, 3), keepdim=True, dtype=torch.float32)
            centred = x.float() - mean
            record[i] = (mean[0, :, 0, 0], (centred * centred).mean((2, 3))[0])
            return type(layer).forward(layer, x)

        return forward

    def replaying(i, layer):
        mean, var = replay[i]

        def forward(x):
            if x.shape[0] != 1:
                raise ValueError("slice statistics apply to a batch of one")
            return torch.nn.functional.batch_norm(x, mean, var, None, None, False, 0.0, layer.eps)

        return forward

    for i, layer in enumerate(layers):
        layer.forward = recording(i, layer) if record is not None else replaying(i, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


__all__ = [
    "NUM_CLASSES",
    "Synthesizer",
    "autocast_context",
    "resolve_device",
]

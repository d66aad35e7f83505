import numpy as np


def test_texture_ratio_reads_smoother_below_one_and_busier_above():
    from benchmarks.inpaint_texture import texture_ratio

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    real = 0.5 * np.sin(xx / 4) * np.cos(yy / 6)  # some structure
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    smooth = real.copy()
    smooth[mask] = real[mask].mean()
    busy = real + rng.normal(0, 0.3, real.shape)
    assert texture_ratio(real, real, mask) == 1.0
    assert texture_ratio(smooth, real, mask) < 0.5 < 1.5 < texture_ratio(busy, real, mask)

"""The procedural control (gan.procedural): fitted on real slices, deterministic per seed, the
texture only inside the region, each class in its own intensity range and with its own spectrum."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from gan.inpaint import dilate
from gan.labels import CONSOLIDATION, GGO, LUNG
from gan.procedural import (
    PATCH_PX,
    ProceduralTexture,
    gaussian_spectrum,
    radial_spectrum,
)

SIZE = 128


def textured_slices(n: int = 3):
    """Slices with a big lung of white-noise texture around -0.6, a GGO block of smooth
    (Gaussian-blurred, sigma 2 px) texture around 0.0 and a consolidation block at 0.6."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for _ in range(n):
        label = np.zeros((SIZE, SIZE), np.uint8)
        label[8:120, 8:120] = LUNG
        label[20:70, 20:100] = GGO
        label[80:110, 30:90] = CONSOLIDATION
        white = rng.standard_normal((SIZE, SIZE))
        smooth = ndi.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 2.0)
        smooth /= smooth.std()
        image = np.full((SIZE, SIZE), 0.9, np.float32)
        image[label == LUNG] = (-0.6 + 0.05 * white)[label == LUNG]
        image[label == GGO] = (0.0 + 0.08 * smooth)[label == GGO]
        image[label == CONSOLIDATION] = (0.6 + 0.03 * white)[label == CONSOLIDATION]
        images.append(image.astype(np.float32))
        labels.append(label)
    return images, labels


@pytest.fixture(scope="module")
def fitted():
    images, labels = textured_slices()
    return ProceduralTexture.fit(images, labels), images, labels


def an_edit(label):
    """A new GGO blob in the healthy lung: (edited labels, changed, region)."""
    edited = label.copy()
    yy, xx = np.mgrid[:SIZE, :SIZE]
    blob = ((yy - 75) ** 2 + (xx - 105) ** 2 < 36) & (label == LUNG)
    edited[blob] = GGO
    changed = edited != label
    return edited, changed, dilate(changed, 4)


def test_the_fit_measures_each_class_and_its_spectrum(fitted):
    """Means and spreads are the slices' own; the smooth GGO texture's power sits at low
    frequencies, the white lung texture's is flat; Hu et al.'s Gaussian is the fallback shape."""
    texture, _, _ = fitted
    lung, ggo, cons = (texture.classes[k] for k in ("lung", "ggo", "consolidation"))
    assert lung.mean == pytest.approx(-0.6, abs=0.01) and ggo.mean == pytest.approx(0, abs=0.02)
    assert cons.mean == pytest.approx(0.6, abs=0.01)
    assert lung.texture_sd == pytest.approx(0.05, rel=0.2)
    assert ggo.patches > 0 and lung.patches > 0
    assert ggo.spectrum[0] > 5 * ggo.spectrum[-1]  # blurred: low frequencies dominate
    assert max(lung.spectrum) < 2.5 * min(lung.spectrum)  # white: flat
    g = gaussian_spectrum(2.0)
    assert g[0] > 100 * g[-1] and sum(g) == pytest.approx(1.0)


def test_render_is_deterministic_per_seed_and_changes_only_the_region(fitted):
    texture, images, labels = fitted
    edited, changed, region = an_edit(labels[0])
    a, weight = texture.render(images[0], edited, changed, region, ramp_px=4, seed=7)
    b, _ = texture.render(images[0], edited, changed, region, ramp_px=4, seed=7)
    c, _ = texture.render(images[0], edited, changed, region, ramp_px=4, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    outside = ~region
    assert np.array_equal(a[outside], images[0][outside])  # bit for bit
    assert np.array_equal(a[weight == 0], images[0][weight == 0])
    assert (weight[changed] == 1).all() and (weight[outside] == 0).all()
    # the blend ramps down across the margin rather than stopping at a hard edge
    ring = region & ~changed
    assert ((weight[ring] > 0) & (weight[ring] < 1)).any()
    # a texture from other parameters: the same call gives another image
    other = ProceduralTexture.fit([im + 0.2 for im in images], labels)
    assert not np.array_equal(other.render(images[0], edited, changed, region, 4, 7)[0], a)


def test_rendered_intensities_lie_in_the_class_range(fitted):
    """Pixels well inside a rendered class hold that class's values: within its fitted 1-99 %
    range and around its mean."""
    texture, images, labels = fitted
    label = labels[0]
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for name, value, where in (
        ("ggo", GGO, (yy >= 82) & (yy < 105) & (xx >= 95) & (xx < 115)),
        ("consolidation", CONSOLIDATION, (yy >= 30) & (yy < 60) & (xx >= 103) & (xx < 117)),
    ):
        edited = label.copy()
        edited[where & (label == LUNG)] = value
        changed = edited != label
        out, weight = texture.render(images[0], edited, changed, dilate(changed, 3), 3, seed=1)
        # beyond the softened boundary's reach (a Gaussian of 1 px, cut at 4 px)
        inner = ndi.binary_erosion(changed, np.ones((3, 3)), iterations=5)
        c = texture.classes[name]
        values = out[inner]
        assert values.size > 20
        assert values.min() >= c.low - 1e-6 and values.max() <= c.high + 1e-6, name
        assert abs(values.mean() - c.mean) < 3 * c.mean_sd + 3 * c.texture_sd, name


def test_rendered_texture_has_the_fitted_spectrum(fitted):
    """A large rendered GGO area has the smooth texture's spectrum (most power at low
    frequencies), a rendered lung area the flat one: the spectra are matched, not one blur."""
    texture, images, labels = fitted

    def spectrum_of(label_value):
        edited = np.full((SIZE, SIZE), label_value, np.uint8)
        out = texture.texture(edited, np.random.default_rng(3))
        window = np.outer(np.hanning(PATCH_PX), np.hanning(PATCH_PX))
        spectra = []
        for r in range(8, SIZE - PATCH_PX - 8, PATCH_PX):
            for c in range(8, SIZE - PATCH_PX - 8, PATCH_PX):
                patch = out[r : r + PATCH_PX, c : c + PATCH_PX].astype(np.float64)
                patch = patch - patch.mean()
                power = np.abs(np.fft.rfft2(patch * window)) ** 2
                spectra.append(radial_spectrum(power, patch.shape))
        s = np.mean(spectra, axis=0)
        return s / s.sum()

    ggo, lung = spectrum_of(GGO), spectrum_of(LUNG)
    assert ggo[:2].sum() > 3 * lung[:2].sum() / 2
    assert ggo[0] / ggo[-1] > 5 * lung[0] / lung[-1]
    # and close to what was fitted
    np.testing.assert_allclose(ggo[:3], texture.classes["ggo"].spectrum[:3], atol=0.12)


def test_parameters_round_trip_and_name_the_generator(fitted):
    texture, images, labels = fitted
    again = ProceduralTexture.from_params(texture.params_json())
    assert again == texture and again.sha256 == texture.sha256
    assert texture.params()["generator"] == "procedural-texture"
    edited, changed, region = an_edit(labels[0])
    np.testing.assert_array_equal(
        again.render(images[0], edited, changed, region, 4, 2)[0],
        texture.render(images[0], edited, changed, region, 4, 2)[0],
    )
    with pytest.raises(ValueError, match="procedural-texture"):
        ProceduralTexture.from_params({"generator": "other", "version": 1})

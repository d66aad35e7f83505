import numpy as np
import pytest
import torch

from gan.compose import composite_into_nonlung, feather_weights
from gan.labels import LabelFormatError
from gan.synthesizer import Synthesizer, resolve_device
from tests.conftest import make_tiny_weights, phantom


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory):
    path = make_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")
    return Synthesizer(path, device="cpu", cpu_bf16=False)


def _reference_generator():
    """The tiny generator of ``make_tiny_weights`` rebuilt from its seed, without the loader."""
    from gan.config import get_preset
    from gan.models import GlobalLocalGenerator

    torch.manual_seed(0)
    return GlobalLocalGenerator(get_preset("tiny").generator).eval()


def _reference_run(label_map, stage="joint"):
    """The generator on the numpy one-hot of ``label_map`` (already at model size)."""
    from gan.labels import one_hot

    with torch.no_grad():
        x = torch.from_numpy(one_hot(label_map))[None]
        return _reference_generator()(x, stage=stage)[0, 0].numpy()


def _nearest_exact(label_map, size):
    """Nearest-neighbour resampling written out: output pixel i reads source floor((i + .5) s)."""

    def index(n_in):
        return np.minimum(((np.arange(size) + 0.5) * n_in / size).astype(int), n_in - 1)

    return label_map[np.ix_(index(label_map.shape[0]), index(label_map.shape[1]))]


def _bilinear_up(image, shape):
    """Bilinear enlargement with pixel centres aligned (align_corners=False), written out."""

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    r0, r1, wr = axis(image.shape[0], shape[0])
    c0, c1, wc = axis(image.shape[1], shape[1])
    top = image[r0][:, c0] * (1 - wc) + image[r0][:, c1] * wc
    bottom = image[r1][:, c0] * (1 - wc) + image[r1][:, c1] * wc
    return top * (1 - wr[:, None]) + bottom * wr[:, None]


def test_any_size_label_map_comes_back_at_its_own_size(synthesizer):
    """A 100x90 map is resampled to the model's 64x64 (nearest), run, and enlarged back
    (bilinear): the result equals that pipeline written out independently, and a lesion painted
    in one corner changes the output in that corner."""
    _, labels = phantom(100)
    labels = labels[:, :90]
    out = synthesizer.synthesize(labels)
    assert out.shape == (100, 90) and out.dtype == np.float32
    expected = _bilinear_up(_reference_run(_nearest_exact(labels, 64)), (100, 90))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert synthesizer.last_inference_ms > 0
    preview = synthesizer.synthesize(labels, stage="global")  # G1 alone, at 32x32
    assert preview.shape == (100, 90)
    expected = _bilinear_up(_reference_run(_nearest_exact(labels, 64), "global"), (100, 90))
    np.testing.assert_allclose(preview, expected, atol=1e-5)
    assert synthesizer.device == resolve_device("cpu")
    assert len(synthesizer.sha256) == 64

    # the change lands where the lesion is, at the slice's own size (not flipped, not shifted)
    base = np.ones((100, 90), np.uint8)
    edit = base.copy()
    edit[5:20, 5:20] = 3
    for stage in (None, "global"):
        diff = np.abs(synthesizer.synthesize(edit, stage) - synthesizer.synthesize(base, stage))
        row, col = np.unravel_index(diff.argmax(), diff.shape)
        assert row < 25 and col < 25, (stage, row, col)
        # untrained instance norm spreads a little everywhere; measured 4-5x less far away
        assert diff[:25, :25].mean() > 2.5 * diff[50:, 45:].mean(), stage


def test_synthesis_matches_the_generator_at_model_size(synthesizer):
    """At the model's size the wrapper returns exactly what the generator, rebuilt from its seed
    (not through the loader), makes of the one-hot map, for the default (joint) path and G1."""
    _, labels = phantom(64)
    out = synthesizer.synthesize(labels)
    assert synthesizer.stage == "joint"
    np.testing.assert_allclose(out, _reference_run(labels), atol=1e-5)
    assert out.std() > 0.01  # not flat: the comparison means something
    local = _reference_run(labels, "local")
    assert np.abs(out - local).max() > 1e-3  # the joint path, not G2 alone
    preview = synthesizer.synthesize(labels, stage="global")
    np.testing.assert_allclose(
        preview, _bilinear_up(_reference_run(labels, "global"), (64, 64)), atol=1e-5
    )


def test_cpu_bf16_stays_close_to_fp32(synthesizer):
    """With ``cpu_bf16`` the convolutions really run in bf16 (seen by a forward hook) and the
    result differs from fp32 by rounding only; without it they run in fp32."""
    _, labels = phantom(64)
    fast = Synthesizer(synthesizer.weights, device="cpu", cpu_bf16=True)
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen[name] = output.dtype  # returns None: the output is left as it is

        return hook

    hooks = [
        fast.generator.local_enhancer.head[1].register_forward_hook(record("bf16")),
        synthesizer.generator.local_enhancer.head[1].register_forward_hook(record("fp32")),
    ]
    try:
        low, full = fast.synthesize(labels), synthesizer.synthesize(labels)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == {"bf16": torch.bfloat16, "fp32": torch.float32}
    assert low.dtype == np.float32
    error = np.abs(low - full).max()
    assert 0 < error < 0.05  # measured 0.025 on the tiny model


def test_bad_label_maps_are_refused(synthesizer):
    with pytest.raises(LabelFormatError, match="values"):
        synthesizer.synthesize(np.full((8, 8), 255, np.uint8))


def test_composite_hard_paste_and_feather():
    real = np.zeros((20, 20), np.float32)
    synthetic = np.ones((20, 20), np.float32)
    lung = np.zeros((20, 20), bool)
    lung[5:15, 5:15] = True
    hard = composite_into_nonlung(synthetic, real, lung, feather_px=0)
    assert np.array_equal(hard, lung.astype(np.float32))  # the paper's hard paste
    soft = composite_into_nonlung(synthetic, real, lung, feather_px=6)
    assert soft[10, 10] == 1 and soft[0, 0] == 0
    assert 0 < soft[10, 4] < 0.5 < soft[10, 5] < 1  # a ramp across the boundary
    w = feather_weights(lung, 6)
    assert np.all(np.diff(w[10, :10]) >= 0)  # monotone going into the lung
    with pytest.raises(ValueError, match="shapes differ"):
        composite_into_nonlung(synthetic, real[:10], lung)


def test_feathering_needs_a_boundary():
    assert feather_weights(np.zeros((8, 8), bool), 4).max() == 0
    assert feather_weights(np.ones((8, 8), bool), 4).min() == 1


def test_compositor_reuses_weights_and_matches_the_plain_composite():
    from gan.compose import Compositor

    rng = np.random.default_rng(0)
    real, synthetic = rng.random((2, 32, 32)).astype(np.float32)
    lung = np.zeros((32, 32), bool)
    lung[8:24, 6:20] = True
    compositor = Compositor()
    np.testing.assert_allclose(
        compositor(synthetic, real, lung, 3),
        composite_into_nonlung(synthetic, real, lung, 3),
        atol=1e-6,
    )
    first = compositor.weights(lung, 3)
    assert compositor.weights(lung.copy(), 3) is first  # same lung: cached
    lung[10, 21] = True
    assert compositor.weights(lung, 3) is not first  # lung changed: recomputed


def test_a_smaller_input_size_runs_and_comes_back_at_the_slice_size(synthesizer):
    _, labels = phantom(64)
    small = synthesizer.synthesize(labels, stage="global", size=32)
    assert small.shape == (64, 64) and np.isfinite(small).all()
    assert not np.allclose(small, synthesizer.synthesize(labels, stage="global"))
    with pytest.raises(ValueError, match="multiple of 16"):
        synthesizer.synthesize(labels, size=40)

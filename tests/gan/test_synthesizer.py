import numpy as np
import pytest
import torch

from gan.labels import LabelFormatError
from gan.synthesizer import Synthesizer, composite_into_nonlung, feather_weights, resolve_device
from tests.conftest import make_tiny_weights, phantom


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory):
    path = make_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")
    return Synthesizer(path, device="cpu", cpu_bf16=False)


def test_any_size_label_map_comes_back_at_its_own_size(synthesizer):
    _, labels = phantom(100)
    out = synthesizer.synthesize(labels[:, :90])
    assert out.shape == (100, 90) and out.dtype == np.float32
    assert -1 <= out.min() and out.max() <= 1
    assert synthesizer.last_inference_ms > 0
    preview = synthesizer.synthesize(labels, stage="global")
    assert preview.shape == (100, 100)
    assert synthesizer.device == resolve_device("cpu")
    assert len(synthesizer.sha256) == 64


def test_synthesis_matches_the_generator_at_model_size(synthesizer):
    _, labels = phantom(64)
    out = synthesizer.synthesize(labels)
    from gan.labels import one_hot_torch

    with torch.no_grad():
        direct = synthesizer.generator(one_hot_torch(torch.from_numpy(labels).long()[None]))
    np.testing.assert_allclose(out, direct[0, 0].numpy(), atol=1e-5)


def test_cpu_bf16_stays_close_to_fp32(synthesizer):
    _, labels = phantom(64)
    fast = Synthesizer(synthesizer.weights, device="cpu", cpu_bf16=True)
    assert np.abs(fast.synthesize(labels) - synthesizer.synthesize(labels)).max() < 0.05


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
    from gan.synthesizer import Compositor

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

"""The shipped default models (resources/models/lite-*.safetensors) with the current code.

Every other test runs an untrained tiny generator, so a renamed layer or a changed width in
gan/models/generator.py would pass them all and break both shipped models. These tests load the
shipped weights as the app does (the index's defaults, strict key and shape checks) and run them
on the bundled sample slice with its labels derived as the app derives them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gan.checkpoint import load_exported_generator, load_state_strict, resolve_weights
from gan.models import GlobalLocalGenerator
from gan.synthesizer import Synthesizer

MODES = ("label", "inpaint")


@pytest.fixture(scope="module")
def sample():
    """The sample slice in the generator's [-1, 1], its label map as the app derives it (derived
    lung plus the sample's own lesions), and the same map with a consolidation disc painted into
    the normal lung (farthest from any other class) plus that disc."""
    from scipy import ndimage

    from gan.ctio import read_label_image, read_slice
    from gan.labels import CONSOLIDATION, LUNG, label_map_from_lesions, validate_lesion_mask
    from gan.lung import derive_lung_mask
    from gan.paths import sample_lesions_path, sample_slice_path

    ct = read_slice(sample_slice_path())
    lesions = validate_lesion_mask(read_label_image(sample_lesions_path()))
    labels = label_map_from_lesions(lesions, derive_lung_mask(ct, lesion_mask=lesions))
    depth = ndimage.distance_transform_edt(labels == LUNG)
    centre = np.unravel_index(depth.argmax(), depth.shape)
    assert depth.max() > 16  # room for the disc inside normal lung
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    distance = np.hypot(yy - centre[0], xx - centre[1])
    disc = distance < 14
    edited = labels.copy()
    edited[disc] = CONSOLIDATION
    return {
        "image": ct.to_model_range(),
        "labels": labels,
        "edited": edited,
        "disc": disc,
        "far_lung": (distance > 100) & (labels > 0),
    }


@pytest.fixture(scope="module")
def shipped():
    """Both shipped defaults, loaded through the app's path (``Synthesizer("default")``)."""
    return {mode: Synthesizer("default", device="cpu", cpu_bf16=False, mode=mode) for mode in MODES}


@pytest.mark.parametrize("mode", MODES)
def test_shipped_weights_fit_the_current_network_key_for_key(mode):
    """The index's default of each mode is its sidecar's file, holds exactly the current network's
    tensor names and shapes, loads strictly and is of its own mode, trained through joint."""
    path = resolve_weights("default", mode)  # checks the SHA-256 against the index
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["weights"] == path.name and sidecar["config"]["generator"]["mode"] == mode
    config, state = load_exported_generator(path)
    network = GlobalLocalGenerator(config.generator)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    load_state_strict(network, state, path.name)
    synthesizer = Synthesizer("default", device="cpu", cpu_bf16=False, mode=mode)
    assert synthesizer.weights == path and synthesizer.mode == mode
    assert synthesizer.stage == "joint" and synthesizer.size == config.generator.size == 512


def test_label_model_draws_a_lung_and_the_painted_lesion_where_it_was_painted(sample, shipped):
    """On the sample's labels the label model draws a lung with structure (not a flat image),
    normal lung darker than GGO and GGO darker than consolidation; a consolidation disc painted
    into normal lung turns that spot dense (brighter) and leaves the lung 100 px away all but
    unchanged."""
    before, after = shipped["label"].synthesize_batch(
        np.stack([sample["labels"], sample["edited"]])
    )
    lung = sample["labels"] > 0
    assert before[lung].std() > 0.15  # measured 0.40
    # denser classes come out brighter: measured lung -0.15 < GGO 0.34 < consolidation 0.65
    by_class = [before[sample["labels"] == k].mean() for k in (1, 2, 3)]
    assert by_class[0] + 0.2 < by_class[1] < by_class[2] - 0.1, by_class
    disc, far = sample["disc"], sample["far_lung"]
    diff = np.abs(after - before)
    assert after[disc].mean() > before[disc].mean() + 0.3  # measured -0.12 -> 0.53
    assert diff[disc].mean() > 0.3  # measured 0.66
    assert diff[far].mean() < 0.1 * diff[disc].mean()  # measured 0.007


def test_inpaint_model_keeps_the_real_slice_outside_the_region_and_paints_inside(sample, shipped):
    """The inpaint model, given the edit region as the app makes it (changed labels dilated by the
    default margin), returns the real slice's own pixels outside the region, a dense lesion inside
    where consolidation was painted, and with the labels left as they are a region close to the
    real one (it reconstructs what it cannot see)."""
    from gan.inpaint import changed_region, margin_px

    image, disc = sample["image"], sample["disc"]
    region = changed_region(sample["labels"], sample["edited"], margin_px(None))
    assert region[disc].all() and region.sum() > disc.sum()
    painted = shipped["inpaint"].inpaint(sample["edited"], image, region)
    unchanged = shipped["inpaint"].inpaint(sample["labels"], image, region)
    for out in (painted, unchanged):
        assert out.dtype == np.float32 and np.array_equal(out[~region], image[~region])
    assert painted[disc].mean() > image[disc].mean() + 0.3  # measured -0.25 -> 0.46
    painted_error = np.abs(painted - image)[region].mean()
    reconstruction_error = np.abs(unchanged - image)[region].mean()
    assert painted_error > 0.2  # measured 0.46
    assert reconstruction_error < 0.5 * painted_error  # measured 0.12

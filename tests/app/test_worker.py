"""The synthesis worker coalesces requests: a burst runs far fewer times than it was asked, and the
last result delivered is the last request's."""

import numpy as np
import pytest

from tests.conftest import make_tiny_weights, phantom

pytestmark = pytest.mark.gui


@pytest.fixture()
def controller(qtbot, tmp_path):
    from app.worker import SynthesisController

    weights = make_tiny_weights(tmp_path / "tiny.safetensors")
    c = SynthesisController()
    with qtbot.waitSignal(c.modelLoaded, timeout=20000):
        c.load(str(weights), "cpu")
    yield c
    c.shutdown()


def test_fifty_fast_requests_coalesce_and_the_last_wins(controller, qtbot):
    """While the worker is busy with the first request, 49 more arrive: only the newest of them
    runs next, so two runs in all. The worker is held busy on purpose (an event, not timing)."""
    import threading

    _, labels = phantom(64)
    worker = controller.worker
    busy, release = threading.Event(), threading.Event()
    synthesize = worker.synthesizer.synthesize

    def held_synthesize(*args, **kwargs):
        busy.set()
        assert release.wait(20), "the test never released the worker"
        return synthesize(*args, **kwargs)

    worker.synthesizer.synthesize = held_synthesize
    results = []
    controller.resultReady.connect(results.append)
    variants = []
    for i in range(50):
        variant = labels.copy()
        variant[i % 60, :] = 3 if i % 2 else 2
        variants.append(variant)
    first = controller.request(variants[0])
    assert busy.wait(20), "the worker never started the first request"
    last = None
    for variant in variants[1:]:
        last = controller.request(variant)
    release.set()
    qtbot.waitUntil(lambda: bool(results) and results[-1].request_id == last, timeout=20000)
    assert [r.request_id for r in results] == [first, last] and worker.runs == 2
    expected = synthesize(variants[-1])
    np.testing.assert_array_equal(results[-1].image, expected)  # the newest labels, not another
    assert results[-1].image.shape == (64, 64)
    assert results[-1].milliseconds > 0 and results[-1].device == "cpu"


def test_a_bad_weights_file_reports_and_keeps_going(qtbot, tmp_path):
    from app.worker import SynthesisController

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    c = SynthesisController()
    try:
        with qtbot.waitSignal(c.failed, timeout=20000) as blocker:
            c.load(str(bad), "cpu")
        assert blocker.args[0].startswith("Synthesis unavailable:")
        c.request(np.zeros((8, 8), np.uint8))  # no model: ignored, no crash
    finally:
        c.shutdown()


@pytest.mark.parametrize(("mode", "size"), [("256", 64), ("128", 32), ("auto", None)])
def test_preview_modes_choose_g1_resolution(controller, qtbot, mode, size):
    _, labels = phantom(64)
    worker = controller.worker
    worker.preview_mode = mode
    if size is None:  # auto: the fast path on a CPU without native bf16, else as trained
        size = 32 if not worker.synthesizer.cpu_bf16 else 64
    results = []
    controller.resultReady.connect(results.append)
    request = controller.request(labels, "global")
    qtbot.waitUntil(lambda: any(r.request_id == request for r in results), timeout=20000)
    result = results[-1]
    assert result.stage == "global" and result.input_size == size
    assert result.image.shape == (64, 64)  # always back at the slice's size
    full = controller.request(labels)
    qtbot.waitUntil(lambda: results[-1].request_id == full, timeout=20000)
    assert results[-1].input_size == 64  # the full model always runs as trained

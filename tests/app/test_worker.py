"""The synthesis thread: a burst of requests coalesces (the last wins), models are reported by
identity only, and the thread stops with its owner, closed or not."""

import numpy as np
import pytest

from app.synthesis import Request
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
    synthesize = worker.engine.synthesizer.synthesize

    def held_synthesize(*args, **kwargs):
        busy.set()
        assert release.wait(20), "the test never released the worker"
        return synthesize(*args, **kwargs)

    worker.engine.synthesizer.synthesize = held_synthesize
    results = []
    controller.resultReady.connect(results.append)
    variants = []
    for i in range(50):
        variant = labels.copy()
        variant[i % 60, :] = 3 if i % 2 else 2
        variants.append(variant)
    first = controller.request(Request(1, variants[0]))
    assert busy.wait(20), "the worker never started the first request"
    last = None
    for variant in variants[1:]:
        last = controller.request(Request(1, variant))
    release.set()
    qtbot.waitUntil(lambda: bool(results) and results[-1].request_id == last, timeout=20000)
    assert [r.request_id for r in results] == [first, last] and worker.engine.runs == 2
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
        c.request(Request(1, np.zeros((8, 8), np.uint8)))  # no model: ignored, no crash
    finally:
        c.shutdown()


@pytest.mark.parametrize(("mode", "size"), [("256", 64), ("128", 32), ("auto", None)])
def test_preview_modes_choose_g1_resolution(controller, qtbot, mode, size):
    _, labels = phantom(64)
    if size is None:  # auto: the fast path on a CPU without native bf16, else as trained
        size = 32 if not controller.worker.engine.synthesizer.cpu_bf16 else 64
    results = []
    controller.resultReady.connect(results.append)
    request = controller.request(Request(1, labels, "global", preview_mode=mode))
    qtbot.waitUntil(lambda: any(r.request_id == request for r in results), timeout=20000)
    result = results[-1]
    assert result.stage == "global" and result.input_size == size
    assert result.image.shape == (64, 64)  # always back at the slice's size
    full = controller.request(Request(1, labels, preview_mode=mode))
    qtbot.waitUntil(lambda: results[-1].request_id == full, timeout=20000)
    assert results[-1].input_size == 64  # the full model always runs as trained


def test_each_result_names_the_model_that_made_it(controller, qtbot, tmp_path):
    """A result made before a weights switch keeps the old model's identity; the next result
    carries the new one's: what an export is stamped with."""
    from gan.checkpoint import sha256_file

    _, labels = phantom(64)
    results = []
    controller.resultReady.connect(results.append)
    first = controller.request(Request(1, labels))
    qtbot.waitUntil(lambda: any(r.request_id == first for r in results), timeout=20000)
    other = make_tiny_weights(tmp_path / "other.safetensors", seed=7)
    with qtbot.waitSignal(controller.modelLoaded, timeout=20000) as loaded:
        controller.load(str(other), "cpu")
    second = controller.request(Request(1, labels))
    qtbot.waitUntil(lambda: results[-1].request_id == second, timeout=20000)
    old, new = results[0].model, results[-1].model
    assert old.sha256 != new.sha256 and new.sha256 == sha256_file(other)
    assert loaded.args[0] == new and new.name == "other.safetensors" and new.mode == "label"


def test_the_thread_stops_when_its_owner_is_destroyed_without_a_close(qtbot):
    """A window deleted without a close event must not leave its synthesis thread running."""
    from PyQt6.QtWidgets import QWidget

    from app.worker import SynthesisController

    owner = QWidget()
    controller = SynthesisController(owner)
    thread = controller.thread
    assert thread.isRunning()
    with qtbot.waitSignal(thread.finished, timeout=20000):
        owner.deleteLater()
    assert thread.isFinished()

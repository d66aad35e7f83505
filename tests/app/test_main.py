"""``python -m app`` (the main job of ``make run`` at this stage) writes the sample's overlay."""

import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def run_app(*args):
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_sample_overlay_is_written_and_announced(tmp_path):
    import cv2

    out = tmp_path / "overlay.png"
    result = run_app("--overlay", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out.resolve()) in result.stdout
    rgb = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert rgb.shape == (512, 512, 3)
    # all three classes show in the paper's colours: red-, blue- and green-dominant pixels
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    assert ((r - g > 60) & (r - b > 60)).sum() > 1000
    assert ((b - r > 60) & (b - g > 60)).sum() > 1000
    assert ((g - r > 60) & (g - b > 60)).sum() > 500


def test_bad_input_gives_one_line_error_not_traceback(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"garbage" * 50)
    result = run_app(str(bad), "--overlay", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_0_255_mask_given_as_lesions_is_refused_clearly(tmp_path):
    import cv2

    mask = np.zeros((512, 512), np.uint8)
    mask[200:240, 100:150] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    result = run_app("--lesions", str(tmp_path / "m.png"), "--overlay", str(tmp_path / "x.png"))
    assert result.returncode == 1 and "0/255" in result.stderr and "Traceback" not in result.stderr

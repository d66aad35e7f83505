"""gan and training_cli never import PyQt6 or app (import-linter contract in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_linter_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [exe, "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_gan_imports_without_heavy_optional_packages():
    """Training on a bare GPU box needs only torch + numpy: importing the model, loss, training
    and synthesizer modules must not pull in Qt, OpenCV, pydicom, nibabel, MONAI or scipy."""
    code = (
        "import sys\n"
        "import gan.models, gan.losses, gan.training, gan.synthesizer, gan.data, gan.checkpoint, gan.ctio, gan.lung\n"
        "heavy = [m for m in ('PyQt6', 'cv2', 'pydicom', 'nibabel', 'monai', 'scipy', 'skimage') if m in sys.modules]\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr

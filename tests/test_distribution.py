"""The desktop distribution: the .desktop entry, the spec's data files, and (opt-in, slow) the
PyInstaller bundle built and its ``--self-test`` run offscreen."""

import configparser
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

BUNDLE = "ct-lesion-studio"


def test_desktop_entry_is_complete_and_points_at_the_app():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO / "resources" / f"{BUNDLE}.desktop")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "CT Lesion Studio"
    assert section["Exec"].split()[0] == BUNDLE and "%f" in section["Exec"]
    assert section["Icon"] == BUNDLE and section["Terminal"] == "false"
    assert (REPO / "resources" / "icons" / f"{BUNDLE}.png").is_file()
    assert section["Categories"].endswith(";") and "diagnosis" in section["Comment"]


def test_spec_lists_resources_that_exist():
    spec = (REPO / "pyinstaller.spec").read_text()
    listed = re.findall(r'resource\("([^"]+)"\)', spec)
    assert listed, "the spec lists its data files explicitly"
    for relative in listed:
        assert (REPO / "resources" / relative).exists(), relative
    assert "console=False" in spec and "icon=" in spec


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CTLS_BUILD_BUNDLE") != "1",
    reason="builds a ~1 GB PyInstaller bundle (minutes); run `make dist-test` to include it",
)
def test_frozen_bundle_passes_its_self_test(tmp_path):
    dist, work = tmp_path / "dist", tmp_path / "build"
    build = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(REPO / "pyinstaller.spec")],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    folder = dist / BUNDLE
    names = [p.name.lower() for p in folder.rglob("*")]
    assert not [n for n in names if n.startswith(("libcudnn", "libcublas", "libnccl"))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    result = subprocess.run(
        [str(folder / BUNDLE), "--self-test"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test passed" in result.stdout

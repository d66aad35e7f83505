"""Project files (.ctlsproj) damaged byte-wise and field-wise: Project.load, which the app's
open_project and its crash recovery call, ends in a project the app can use or one ProjectError
(the one exception open_project turns into a dialog)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.project import Project, ProjectError
from gan.ctio import encode_png
from tests.conftest import phantom
from tests.fuzz._support import damaged, fuzz, outcome

pytestmark = pytest.mark.timeout(120)


def _good() -> dict:
    _, labels = phantom(16)
    baseline = labels.copy()
    baseline[baseline >= 2] = 1
    project = Project(
        image_path="/data/scan.dcm",
        image_index=3,
        labels=labels,
        baseline=baseline,
        spacing_override=(0.7, 0.7),
        view={"level": -600.0, "width": 1500.0, "opacity": 0.5, "overlay_visible": True},
    )
    return json.loads(project.to_json())


GOOD = _good()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _png(array: np.ndarray) -> str:
    return base64.b64encode(encode_png(array)).decode("ascii")


#: label data a damaged file may hold: other values, sizes, bit depths, not a PNG, not base64
label_data = st.sampled_from(
    [
        _png(np.full((16, 16), 7, np.uint8)),
        _png(np.zeros((8, 16), np.uint8)),
        _png(np.zeros((16, 16), np.uint16)),
        _png(np.zeros((16, 16, 3), np.uint8)),
        base64.b64encode(b"\x89PNG\r\n\x1a\n").decode(),
        "not base64 !",
        "",
    ]
)

#: (key path into the project, a strategy for its new value)
FIELDS = [
    (("version",), st.sampled_from([0, 1, 2, -1, True, "1", 1.5, None, 2**80, float("nan")])),
    (("format",), st.sampled_from(["ct-lesion-studio-project", "other", None, 1])),
    (("image",), json_values),
    (("image", "path"), json_values | st.just("a\x00b")),
    (("image", "index"), json_values | st.sampled_from([-1, 0, 2**40, 1.0, True])),
    (("spacing_override",), json_values | st.sampled_from([[0, 1], [1], [1, 2, 3], ["a", 1]])),
    (("view",), json_values),
    (("view", "level"), json_values),
    (("view", "width"), json_values | st.sampled_from([0, -1, 1e308])),
    (("view", "opacity"), json_values | st.sampled_from([1e308, -0.1, 1.5, 0.25])),
    (("view", "overlay_visible"), json_values),
    (("labels_png",), json_values | label_data),
    (("baseline_png",), json_values | label_data),
]


@st.composite
def project_text(draw) -> str:
    """The good project with up to three fields replaced by anything or removed, as JSON."""
    data = json.loads(json.dumps(GOOD))
    for _ in range(draw(st.integers(1, 3))):
        keys, values = draw(st.sampled_from(FIELDS))
        node = data
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if draw(st.integers(0, 5)) == 0:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = draw(values)
    return json.dumps(data)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("project-fuzz")


def _check(name: str, path: Path) -> None:
    project = outcome(name, lambda: Project.load(path), path, (ProjectError,))
    if project is None:
        return
    # what open_project hands on: a label map, an image reference, a spacing and view values
    # it uses as they are (set_window, the opacity slider, set_spacing)
    assert project.labels.ndim == 2 and project.labels.dtype == np.uint8
    assert int(project.labels.max()) <= 3
    if project.baseline is not None:
        assert project.baseline.shape == project.labels.shape
    assert project.image_path is None or isinstance(project.image_path, str)
    assert project.image_index is None or (
        type(project.image_index) is int and project.image_index >= 0
    )
    if project.spacing_override is not None:
        assert all(math.isfinite(v) and v > 0 for v in project.spacing_override)
    view = project.view
    assert isinstance(view, dict)
    for key in ("level", "width", "opacity"):
        if key in view:
            assert type(view[key]) in (int, float) and math.isfinite(view[key]), view
    if "width" in view:
        assert view["width"] > 0
    if "opacity" in view:
        assert 0 <= view["opacity"] <= 1 and math.isfinite(100 * view["opacity"])
    if "overlay_visible" in view:
        assert isinstance(view["overlay_visible"], bool)


@fuzz(150)
@given(text=project_text())
def test_a_project_of_any_fields_opens_or_fails_in_one_clear_line(folder, text):
    """Fields of any JSON value (a version of another type, an image that is no record, an index
    or spacing of text, view values the sliders cannot take, label data of other values, sizes or
    no PNG at all): a usable Project or one ProjectError."""
    path = folder / "fields.ctlsproj"
    path.write_text(text)
    _check("project: fields", path)


@fuzz(150)
@given(data=st.data())
def test_a_damaged_project_file_opens_or_fails_in_one_clear_line(folder, data):
    """The project's bytes mutated anywhere or cut short, and pathological JSON (deep nesting,
    integers of thousands of digits, other encodings): a usable Project or one ProjectError."""
    good = json.dumps(GOOD, indent=1).encode()
    kind = data.draw(st.sampled_from(["damaged", "damaged", "deep", "digits", "utf16"]))
    if kind == "damaged":
        text = data.draw(damaged(good, header=len(good)))
    elif kind == "deep":
        text = b"[" * data.draw(st.integers(1000, 100_000))
    elif kind == "digits":
        text = good.replace(
            b'"version": 1', b'"version": ' + b"9" * data.draw(st.integers(1, 20_000))
        )
    else:
        text = good.decode().encode("utf-16")
    path = folder / "damaged.ctlsproj"
    path.write_bytes(text)
    _check("project: bytes", path)

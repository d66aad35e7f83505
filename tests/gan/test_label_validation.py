"""Label validation and conversion details that mutation testing (``make mutation``) found
unpinned: the exact messages users see for bad label files, which dtypes and value sets pass, and
the dtypes the conversions return."""

import numpy as np
import pytest
import torch

from gan import labels as L

LABEL_LEGEND = "(0 background, 1 lung, 2 GGO, 3 consolidation)"


def message(func, *args, **kwargs) -> str:
    with pytest.raises(L.LabelFormatError) as err:
        func(*args, **kwargs)
    return str(err.value)


def test_a_bad_label_map_names_itself_its_values_and_the_convention():
    assert message(L.validate_label_map, np.array([[0, 1, 4]])) == (
        f"label map holds values {{0, 1, 4}}; expected the ct-lesion-studio label map convention "
        f"{LABEL_LEGEND}."
    )
    assert message(L.validate_lesion_mask, np.array([[0, 3]])) == (
        "lesion mask holds values {0, 3}; expected the MedSeg lesion mask convention "
        "(0 background, 1 GGO, 2 consolidation)."
    )
    assert message(L.validate_label_map, np.array([[9]]), what="labels.png").startswith(
        "labels.png holds values {9};"
    )


def test_a_0_255_file_read_as_labels_gets_the_binary_mask_hint():
    assert message(L.validate_label_map, np.array([[0, 255]], np.uint8)).endswith(
        f"{LABEL_LEGEND}. This looks like a binary 0/255 mask: import it as a binary mask and "
        "pick its class."
    )


def test_up_to_twelve_values_are_listed_and_more_are_cut_short():
    twelve = np.arange(12).reshape(3, 4)
    assert "holds values {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};" in message(
        L.validate_label_map, twelve
    )
    thirteen = np.arange(13)[None]
    assert "holds values {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ...};" in message(
        L.validate_label_map, thirteen
    )


def test_only_2d_integer_arrays_pass():
    assert message(L.validate_label_map, np.zeros((1, 2, 2), np.uint8)) == (
        "label map must be a 2-D array, got shape (1, 2, 2)"
    )
    assert message(L.validate_label_map, np.array([["a", "b"]])) == (
        "label map has dtype <U1; expected integers"
    )
    for bad in (np.nan, np.inf, 0.5):
        assert message(L.validate_label_map, np.array([[0.0, bad]])) == (
            "label map holds non-integer values; expected integers 0..3"
        )
    assert message(L.validate_lesion_mask, np.array([[0.0, 1.5]])).endswith("integers 0..2")


def test_whole_number_floats_bools_and_signed_ints_pass_as_uint8():
    for array in (
        np.array([[0.0, 3.0]]),
        np.array([[0, 3]], np.int64),
        np.array([[False, True]]),
    ):
        out = L.validate_label_map(array)
        assert out.dtype == np.uint8 and out.tolist() == np.asarray(array, int).tolist()


def test_binary_masks_accept_0_1_and_0_255_and_name_what_else_they_found():
    for values in ([0, 1], [0, 255], [1, 1], [0, 0]):
        out = L.binary_mask_from_0_255(np.array([values]))
        assert out.dtype == bool and out.tolist() == [[v > 0 for v in values]]
    assert message(L.binary_mask_from_0_255, np.array([[0, 7]])) == (
        "binary mask holds values [0, 7]; expected a binary mask (0/255 or 0/1)"
    )
    many = np.arange(20)[None]
    assert message(L.binary_mask_from_0_255, many, what="lung.png").startswith(
        "lung.png holds values [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];"
    )


def test_label_map_from_lesions_takes_a_0_255_lung_mask_and_returns_uint8():
    lesions = np.array([[0, 0, 1], [0, 2, 0]], np.uint8)
    lung = np.array([[255, 0, 0], [255, 0, 0]], np.uint8)  # a lung mask read from a PNG
    out = L.label_map_from_lesions(lesions, lung)
    assert out.dtype == np.uint8
    assert out.tolist() == [[1, 0, 2], [1, 3, 0]]
    assert L.lesion_mask_from_label_map(out).dtype == np.uint8
    assert message(L.label_map_from_lesions, lesions, np.zeros((3, 2), bool)) == (
        "lung mask shape (3, 2) does not match lesion mask shape (2, 3)"
    )


def test_lung_region_is_every_labelled_pixel():
    assert L.lung_region(np.array([[0, 1, 2, 3]])).tolist() == [[False, True, True, True]]


def test_colorize_validates_and_returns_uint8_rgb_of_the_map_shape():
    rgb = L.colorize(np.array([[3], [0]], np.uint8))
    assert rgb.shape == (2, 1, 3) and rgb.dtype == np.uint8
    assert rgb.tolist() == [[[0, 255, 0]], [[0, 0, 0]]]
    with pytest.raises(L.LabelFormatError):
        L.colorize(np.array([[4]]))


def test_overlay_blends_at_40_percent_by_default_and_leaves_background_alone():
    gray = np.array([[0, 100]], np.uint8)
    out = L.overlay(gray, np.array([[0, 1]], np.uint8))
    assert out.dtype == np.uint8
    # background black stays black; lung: 0.6 * 100 + 0.4 * (255, 0, 0)
    assert out.tolist() == [[[0, 0, 0], [162, 60, 60]]]
    assert message(L.overlay, gray, np.zeros((2, 2), np.uint8)) == (
        "image shape (1, 2) != label map shape (2, 2)"
    )


def test_one_hot_torch_refuses_floats_and_values_from_4_with_their_range():
    with pytest.raises(TypeError, match="^one_hot_torch expects an integer label tensor$"):
        L.one_hot_torch(torch.zeros(1, 2, 2))
    with pytest.raises(
        L.LabelFormatError, match=r"^label tensor holds values outside 0\.\.3 \(min 0, max 4\)$"
    ):
        L.one_hot_torch(torch.tensor([[[0, 4]]]))
    with pytest.raises(L.LabelFormatError, match=r"\(min -1, max 0\)"):
        L.one_hot_torch(torch.tensor([[[-1, 0]]]))

import numpy as np
import pytest
import torch

from gan import labels as L


def test_label_map_from_lesions_maps_medseg_convention_to_ours():
    lesions = np.array([[0, 1, 2], [0, 0, 1]], np.uint8)
    lung = np.array([[1, 0, 0], [1, 0, 0]], bool)
    out = L.label_map_from_lesions(lesions, lung)
    # GGO (MedSeg 1) -> 2, consolidation (MedSeg 2) -> 3, lesions are lung even outside `lung`
    assert out.tolist() == [[1, 2, 3], [1, 0, 2]]
    assert L.lesion_mask_from_label_map(out).tolist() == [[0, 1, 2], [0, 0, 1]]


def test_a_0_255_mask_is_refused_naming_values_and_convention():
    mask = np.array([[0, 255], [255, 0]], np.uint8)
    with pytest.raises(L.LabelFormatError) as err:
        L.validate_lesion_mask(mask)
    message = str(err.value)
    assert "0, 255" in message and "MedSeg" in message and "binary" in message


def test_a_3_in_a_lesion_mask_and_a_4_in_a_label_map_are_refused():
    with pytest.raises(L.LabelFormatError, match=r"\{0, 3\}.*MedSeg lesion mask"):
        L.validate_lesion_mask(np.array([[0, 3]]))
    with pytest.raises(L.LabelFormatError, match=r"\{0, 1, 4\}.*label map"):
        L.validate_label_map(np.array([[0, 1, 4]]))
    with pytest.raises(L.LabelFormatError, match="non-integer"):
        L.validate_label_map(np.array([[0.5, 1.0]]))


def test_binary_masks_read_as_bool():
    assert L.binary_mask_from_0_255(np.array([[0, 255]])).tolist() == [[False, True]]
    with pytest.raises(L.LabelFormatError):
        L.binary_mask_from_0_255(np.array([[0, 7]]))


def test_one_hot_numpy_and_torch_agree():
    label_map = np.array([[0, 1], [2, 3]], np.uint8)
    oh = L.one_hot(label_map)
    assert oh.shape == (4, 2, 2) and oh.sum(0).tolist() == [[1, 1], [1, 1]]
    assert oh[3, 1, 1] == 1 and oh[0, 0, 0] == 1
    oh_t = L.one_hot_torch(torch.from_numpy(label_map.astype(np.int64))[None])
    assert torch.equal(oh_t[0], torch.from_numpy(oh))
    with pytest.raises(L.LabelFormatError):
        L.one_hot_torch(torch.tensor([[[0, 5]]]))


def test_colours_follow_the_paper():
    rgb = L.colorize(np.array([[0, 1, 2, 3]], np.uint8))
    assert rgb[0].tolist() == [[0, 0, 0], [255, 0, 0], [0, 0, 255], [0, 255, 0]]
    blended = L.overlay(np.full((1, 4), 100, np.uint8), np.array([[0, 1, 2, 3]], np.uint8), 0.5)
    assert blended[0, 0].tolist() == [100, 100, 100]
    assert blended[0, 1].tolist() == [178, 50, 50]

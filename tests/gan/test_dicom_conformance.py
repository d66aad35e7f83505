"""Every kind of DICOM file the exporter writes (CT from an HU source: a DICOM CT, classic and
Enhanced multi-frame CT, a NIfTI volume; Secondary Capture from an 8-bit and from a non-HU DICOM
source; and the DICOM SEG of each) says it is synthetic in the standard's own attributes
(Synthetic Data YES, the generator as Synthesizing Equipment in the Contributing Equipment
Sequence with the model's SHA-256), and passes dciodvfy (dicom3tools) with no error and only the
warnings listed here, each with the reason it is acceptable."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import gan
from gan.ctio import LUNG_WINDOW, read_dicom, read_slice, unit_to_window, write_png
from gan.export import GENERATOR_MODEL_NAME, SOFTWARE, export_all
from tests.conftest import make_tiny_weights, phantom

SEED = 11
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
# the files of one export and the IOD dciodvfy must recognise in each
IODS = {"CT": "CTImage", "SC": "SCImage"}

# --- what dciodvfy may say -----------------------------------------------------------------------
# dicom3tools' dictionary (Debian bookworm: 1.00~20220618) predates Synthetic Data (0008,001C), now
# a Type 3 attribute of the SOP Common module of every IOD: it calls the tag unknown (an error) and
# not in the IOD (a warning). These lines are the validator's age, not the file's, so they are set
# apart here, and every file is also validated without that one element, where no error at all
# may remain (see _validate). A dicom3tools that knows the tag simply prints neither.
UNKNOWN_TO_THIS_VALIDATOR = (
    "Error - Attribute with an even group number is not a recognized standard attribute"
    " - (0x0008,0x001c)",
    "Warning - Attribute is not present in standard DICOM IOD - (0x0008,0x001c)",
)
ALLOWED_WARNINGS = {
    "Warning - Missing attribute or value that would be needed to build DICOMDIR - Patient ID": (
        "patient identity is removed on purpose: Patient ID is Type 2 and written empty"
    ),
    "Warning - Missing attribute or value that would be needed to build DICOMDIR - Study ID": (
        "a synthetic study has no scheduling system's Study ID: Type 2, written empty"
    ),
    "Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a "
    "Standard Extended SOP Class": (
        "the summary line of any attribute dciodvfy finds outside the IOD: Synthetic Data (above)"
        " and, for a Secondary Capture of a non-HU source, its kept geometry (below)"
    ),
}
# A Secondary Capture of a non-HU DICOM source (e.g. MR) keeps the source's geometry, so that the
# labels and the SEG can be placed in the patient; the SC IOD has no Image Plane or Frame of
# Reference module, so these are Standard Extended SOP Class attributes (PS3.4 B.1.3), allowed.
SC_GEOMETRY_WARNINGS = {
    f"Warning - Attribute is not present in standard DICOM IOD - {tag}": "source geometry kept"
    for tag in (
        "(0x0018,0x0050)",  # Slice Thickness
        "(0x0020,0x0032)",  # Image Position (Patient)
        "(0x0020,0x0037)",  # Image Orientation (Patient)
        "(0x0020,0x0052)",  # Frame of Reference UID
        "(0x0020,0x1041)",  # Slice Location
    )
}


# --- sources -------------------------------------------------------------------------------------
def _ct_small():
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def _item(**attributes) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _classic_multiframe(tmp_path):
    """CT_small as two frames, its geometry at the top level as in a classic file."""
    ds = _ct_small()
    frame = ds.pixel_array
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([frame, frame[::-1]]).astype(frame.dtype).tobytes()
    ds.save_as(tmp_path / "classic.dcm")
    return read_dicom(tmp_path / "classic.dcm", frame=1)


def _enhanced_multiframe(tmp_path):
    """An Enhanced CT of two frames built from CT_small: no geometry, spacing or rescale at the top
    level; the orientation, spacing, thickness, rescale and kVp shared, each frame's position its
    own (frame 1 is 5 mm above frame 0)."""
    ds = _ct_small()
    frame = ds.pixel_array
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_CT_STORAGE
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([frame, frame[::-1]]).astype(frame.dtype).tobytes()
    position, orientation = list(ds.ImagePositionPatient), list(ds.ImageOrientationPatient)
    spacing, thickness = list(ds.PixelSpacing), ds.SliceThickness
    for keyword in (
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "SliceThickness",
        "SliceLocation",
        "RescaleSlope",
        "RescaleIntercept",
        "KVP",
    ):
        delattr(ds, keyword)
    shared = _item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=spacing, SliceThickness=thickness)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=orientation)]),
        PixelValueTransformationSequence=Sequence(
            [_item(RescaleSlope=1, RescaleIntercept=-1024, RescaleType="HU")]
        ),
        CTXRayDetailsSequence=Sequence([_item(KVP=120)]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [
            _item(
                PlanePositionSequence=Sequence(
                    [_item(ImagePositionPatient=[*position[:2], float(position[2]) + 5 * k])]
                )
            )
            for k in range(2)
        ]
    )
    ds.save_as(tmp_path / "enhanced.dcm")
    return read_dicom(tmp_path / "enhanced.dcm", frame=1)


def _supplemental_enhanced(tmp_path):
    """pydicom-data's eCT_Supplemental.dcm (a real Enhanced CT), where it is on this machine."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("eCT_Supplemental.dcm", download=False)  # never the network
    if path is None:
        pytest.skip(
            "eCT_Supplemental.dcm is not available offline (pydicom-data not installed); "
            "the built Enhanced CT source stands in for it"
        )
    return read_dicom(path, frame=1)


def _nifti(tmp_path):
    """A NIfTI volume (HU, LPS-stored, non-square voxels): no DICOM header to copy from."""
    import nibabel as nib

    from gan.ctio import read_nifti_slice

    affine = np.diag([-0.8, -0.6, 2.5, 1.0])
    affine[:3, 3] = [100.0, 50.0, -30.0]
    data = np.random.default_rng(0).integers(-1000, 400, (64, 48, 4)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "v.nii.gz"))
    return read_nifti_slice(tmp_path / "v.nii.gz", 2)


def _png_8bit(tmp_path):
    image, _ = phantom(64)
    write_png(tmp_path / "in.png", ((image + 1) * 127.5).astype(np.uint8)[8:56])  # 48 x 64
    return read_slice(tmp_path / "in.png")


def _non_hu_dicom(tmp_path):
    from pydicom.data import get_testdata_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not CT; values kept raw": expected here
        return read_dicom(get_testdata_file("MR_small.dcm"))


SOURCES = {  # name: (reader, SOP class of the exported images)
    "ct": (lambda tmp_path: read_dicom(_ct_small().filename), "CT"),
    "classic_multiframe": (_classic_multiframe, "CT"),
    "enhanced_multiframe": (_enhanced_multiframe, "CT"),
    "eCT_Supplemental": (_supplemental_enhanced, "CT"),
    "nifti": (_nifti, "CT"),
    "png_8bit": (_png_8bit, "SC"),
    "non_hu_dicom": (_non_hu_dicom, "SC"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(synthesizer, labels, its image in [-1, 1]): a tiny generator run once on the 128 x 128
    phantom labels; each source takes the top-left corner of both that fits it."""
    from gan.synthesizer import Synthesizer

    path = make_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")
    synthesizer = Synthesizer(path, device="cpu", cpu_bf16=False)
    _, labels = phantom(128)
    return synthesizer, labels, synthesizer.synthesize(labels, seed=SEED)


@pytest.fixture(scope="module", params=sorted(SOURCES))
def exported(request, tmp_path_factory, generated):
    """(source name, SOP kind, export folder, synthesizer, source slice): export_all of the
    generator's image (synthetic) and of it composited into the source's non-lung pixels, from
    the source ``request.param``; once per source for all the tests here."""
    read, kind = SOURCES[request.param]
    tmp_path = tmp_path_factory.mktemp(request.param)
    ct = read(tmp_path)
    synthesizer, labels, image = generated
    rows, cols = ct.shape
    # the 128^2 phantom's result, repeated up to a larger source (eCT_Supplemental is 512^2)
    times = -(-max(rows, cols) // labels.shape[0])
    labels = np.ascontiguousarray(
        np.kron(labels, np.ones((times, times), labels.dtype))[:rows, :cols]
    )
    image = np.kron(image, np.ones((times, times), image.dtype))
    window = LUNG_WINDOW if ct.is_hu else ct.default_window()
    synthetic = unit_to_window(image[:rows, :cols], window)
    composite = np.where(labels >= 1, synthetic, ct.pixels).astype(np.float32)
    out = tmp_path / "out"
    export_all(
        out, ct, labels, synthetic, composite, synthesizer.sha256, seed=SEED,
        synthetic_region=labels >= 1,
    )  # fmt: skip
    assert sorted(p.name for p in out.glob("*.dcm")) == [
        "slice_composite.dcm",
        "slice_labels_seg.dcm",
        "slice_synthetic.dcm",
    ]
    return request.param, kind, out, synthesizer, ct


# --- the synthetic marks -------------------------------------------------------------------------
def test_every_dicom_export_says_it_is_synthetic_in_the_standards_attributes(exported):
    """Synthetic and composite images and the SEG read back with Synthetic Data YES and one
    Contributing Equipment item: Synthesizing Equipment (109100, DCM), made by CT Lesion Studio at
    the project's version, naming the generator, the SHA-256 of the weights that made the image
    (DeviceSerialNumber) and, with the seed, the contribution; the free-text marks stay."""
    _, _, out, synthesizer, _ = exported
    for name in ("synthetic", "composite", "labels_seg"):
        ds = pydicom.dcmread(out / f"slice_{name}.dcm")
        assert ds.SyntheticData == "YES", name
        (equipment,) = ds.ContributingEquipmentSequence
        (purpose,) = equipment.PurposeOfReferenceCodeSequence
        assert (purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning) == (
            "109100",
            "DCM",
            "Synthesizing Equipment",
        )
        assert equipment.Manufacturer == SOFTWARE
        assert equipment.ManufacturerModelName == GENERATOR_MODEL_NAME
        assert equipment.SoftwareVersions == gan.__version__
        assert equipment.DeviceSerialNumber == synthesizer.sha256
        assert f"model sha256 {synthesizer.sha256}; seed {SEED};" in (
            equipment.ContributionDescription
        )
        assert re.fullmatch(r"\d{14}", equipment.ContributionDateTime)
        if name != "labels_seg":
            assert ds.SeriesDescription.startswith(f"SYNTHETIC {name} ")
            assert ds.ImageComments.startswith(f"SYNTHETIC {name} image")
            assert ds.ImageComments == equipment.ContributionDescription


@pytest.mark.parametrize("exported", ["enhanced_multiframe", "eCT_Supplemental"], indirect=True)
def test_an_enhanced_source_gives_its_frames_own_geometry(exported):
    """From an Enhanced CT source (geometry only in the functional groups) the exported CT has
    frame 1's position, the shared orientation and thickness: the Image Plane the CT IOD needs."""
    _, _, out, _, ct = exported
    source = ct.dicom
    frame = source.PerFrameFunctionalGroupsSequence[1]
    shared = source.SharedFunctionalGroupsSequence[0]

    def group(sequence):
        return frame.get(sequence, shared.get(sequence))[0]

    ds = pydicom.dcmread(out / "slice_composite.dcm")
    assert list(ds.ImagePositionPatient) == list(
        group("PlanePositionSequence").ImagePositionPatient
    )
    assert list(ds.ImageOrientationPatient) == list(
        group("PlaneOrientationSequence").ImageOrientationPatient
    )
    assert ds.SliceThickness == group("PixelMeasuresSequence").SliceThickness


# --- dciodvfy ------------------------------------------------------------------------------------
def _dciodvfy(path) -> tuple[str | None, list[str], list[str]]:
    """(the IOD dciodvfy recognised, its errors, its warnings), whitespace normalised."""
    run = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = [" ".join(line.split()) for line in (run.stdout + run.stderr).splitlines()]
    lines = [line for line in lines if line and not line.startswith("(")]  # no dump lines
    notes = [line for line in lines if line.split(" ", 1)[0] in ("Error", "Warning", "Abort")]
    iods = [line for line in lines if re.fullmatch(r"[A-Za-z]+", line)]
    errors = [line for line in notes if not line.startswith("Warning")]
    warned = [line for line in notes if line.startswith("Warning")]
    return (iods[0] if iods else None), errors, warned


def _validate(path, tmp_path, extra_allowed: dict[str, str]) -> str | None:
    """The IOD dciodvfy found in ``path``, after asserting its errors and warnings."""
    iod, errors, warned = _dciodvfy(path)
    known_gap = [line for line in errors if line.startswith(UNKNOWN_TO_THIS_VALIDATOR)]
    assert [line for line in errors if line not in known_gap] == [], path.name
    allowed = {**ALLOWED_WARNINGS, **extra_allowed}
    unlisted = [
        line
        for line in warned
        if not line.startswith(UNKNOWN_TO_THIS_VALIDATOR)
        and not any(line.startswith(entry) for entry in allowed)
    ]
    assert unlisted == [], path.name
    # the same file without the one element this validator does not know: no error whatsoever
    ds = pydicom.dcmread(path)
    del ds.SyntheticData
    ds.save_as(tmp_path / "without_synthetic_data.dcm")
    iod_without, errors_without, _ = _dciodvfy(tmp_path / "without_synthetic_data.dcm")
    assert errors_without == [], path.name
    assert iod == iod_without
    return iod


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None,
    reason="dciodvfy (Debian package dicom3tools) is not on PATH; .ci/run installs it",
)
def test_every_dicom_export_passes_dciodvfy_with_only_the_listed_warnings(exported, tmp_path):
    """dciodvfy recognises each image as a CT Image or a Secondary Capture Image and the labels
    as a Segmentation, finds no error in any (besides its dictionary's ignorance of Synthetic
    Data, and none at all without that element), and warns only as the allow-lists above say."""
    name, kind, out, _, _ = exported
    extra = SC_GEOMETRY_WARNINGS if name == "non_hu_dicom" else {}
    for what in ("synthetic", "composite"):
        assert _validate(out / f"slice_{what}.dcm", tmp_path, extra) == IODS[kind], what
    assert _validate(out / "slice_labels_seg.dcm", tmp_path, {}) == "Segmentation"

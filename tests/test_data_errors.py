"""Bad input gives a RegazeError naming the file, the key, and what was expected vs found."""
import numpy as np
import pytest

from data_fixtures import REGAZE_ATTRS, SIZE, regaze_raw, write_ethxgaze, write_raw
from regaze.data.dataset import open_dataset
from regaze.errors import RegazeError


def _open_raw(tmp_path, arrays, attrs=REGAZE_ATTRS, name="bad.h5"):
    path = write_raw(tmp_path / name, arrays, attrs)
    return path, lambda: open_dataset(path)


def test_missing_path(tmp_path):
    with pytest.raises(RegazeError, match=r"nope\.h5: no such file or directory"):
        open_dataset(tmp_path / "nope.h5")


def test_not_an_hdf5_file(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(RegazeError, match=r"x\.h5: not an HDF5 file"):
        open_dataset(tmp_path / "x.h5")


def test_unknown_layout_file_and_directory(tmp_path):
    _, opener = _open_raw(tmp_path, {"images": np.zeros((2, 4, 4, 3), np.uint8)}, attrs={})
    with pytest.raises(RegazeError, match=r"bad\.h5: unknown layout.*found keys \['images'\]"):
        opener()
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "readme.txt").write_text("x")
    with pytest.raises(RegazeError, match=r"dir: unknown layout.*subject\*\.h5.*readme\.txt"):
        open_dataset(tmp_path / "dir")
    with pytest.raises(RegazeError, match="unknown layout 'lmdb'"):
        open_dataset(tmp_path / "bad.h5", layout="lmdb")


@pytest.mark.parametrize("drop", ["face_head_pose", "subject", "face_patch"])
def test_missing_key_regaze(tmp_path, drop):
    _, opener = _open_raw(tmp_path, regaze_raw(**{drop: None}))
    with pytest.raises(RegazeError, match=rf"bad\.h5: missing key '{drop}'; found keys \["):
        opener()


def test_missing_key_sted_names_group(tmp_path):
    _, opener = _open_raw(tmp_path, {"p0/pixels": np.zeros((2, SIZE, SIZE, 3), np.uint8)}, attrs={})
    with pytest.raises(RegazeError, match=r"bad\.h5: missing key 'p0/labels'"):
        opener()


def test_missing_key_ethxgaze(tmp_path):
    write_raw(tmp_path / "subject0001.h5", {"face_patch": np.zeros((2, SIZE, SIZE, 3), np.uint8)})
    with pytest.raises(RegazeError, match=r"subject0001\.h5: missing key 'face_head_pose'"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("override, pattern", [
    ({"face_patch": np.zeros((4, SIZE, SIZE, 3), np.float32)}, r"'face_patch' should be uint8 images; found dtype float32"),
    ({"face_patch": np.zeros((4, SIZE, SIZE), np.uint8)}, r"'face_patch' should be images of shape \(N, S, S, 3\); found shape \(4, 16, 16\)"),
    ({"face_patch": np.zeros((4, 8, SIZE, 3), np.uint8)}, r"'face_patch' should hold square images.*found \(4, 8, 16, 3\)"),
    ({"face_gaze": np.zeros((4, 3), np.float32)}, r"'face_gaze' should have shape \(4, 2\) \(pitch, yaw\); found \(4, 3\)"),
    ({"face_head_pose": np.zeros((4, 2), np.int32)}, r"'face_head_pose' should be floating-point radians; found dtype int32"),
    ({"subject": np.zeros(4, np.float32)}, r"'subject' should be integer ids; found dtype float32"),
])
def test_wrong_shape_or_dtype(tmp_path, override, pattern):
    _, opener = _open_raw(tmp_path, regaze_raw(**override))
    with pytest.raises(RegazeError, match=r"bad\.h5: " + pattern):
        opener()


def test_faze_eye_strips_rejected_clearly(tmp_path):
    _, opener = _open_raw(tmp_path, {"p0/pixels": np.zeros((2, 64, 256, 3), np.uint8),
                                     "p0/labels": np.zeros((2, 4), np.float32)}, attrs={})
    with pytest.raises(RegazeError, match="FAZE 64x256 eye strips are not supported"):
        opener()


def test_sted_label_columns(tmp_path):
    _, opener = _open_raw(tmp_path, {"p0/pixels": np.zeros((2, SIZE, SIZE, 3), np.uint8),
                                     "p0/labels": np.zeros((2, 6), np.float32)}, attrs={})
    with pytest.raises(RegazeError, match=r"'p0/labels' should have shape \(2, 4\) or \(2, 8\).*found \(2, 6\)"):
        opener()


@pytest.mark.parametrize("key", ["face_gaze", "face_head_pose", "subject"])
def test_images_labels_length_mismatch(tmp_path, key):
    arrays = regaze_raw(n=4)
    arrays[key] = arrays[key][:3]
    _, opener = _open_raw(tmp_path, arrays)
    with pytest.raises(RegazeError, match=rf"'{key}' has 3 rows but there are 4 images \(images/labels length mismatch\)"):
        opener()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_labels(tmp_path, value):
    arrays = regaze_raw()
    arrays["face_gaze"][2, 1] = value
    _, opener = _open_raw(tmp_path, arrays)
    with pytest.raises(RegazeError, match=r"bad\.h5: 'face_gaze' has NaN/inf values \(first at row 2"):
        opener()


@pytest.mark.parametrize("col, value, name", [(0, 1.6, "pitch"), (0, -2.0, "pitch"), (1, 3.2, "yaw")])
def test_angles_out_of_range(tmp_path, col, value, name):
    arrays = regaze_raw()
    arrays["face_head_pose"][1, col] = value
    _, opener = _open_raw(tmp_path, arrays)
    with pytest.raises(RegazeError, match=rf"'face_head_pose' {name} out of range at row 1.*expected \|{name}\| <="):
        opener()


def test_degrees_instead_of_radians_hint(tmp_path):
    arrays = regaze_raw()
    arrays["face_gaze"] = np.degrees(arrays["face_gaze"]) + 100
    _, opener = _open_raw(tmp_path, arrays)
    with pytest.raises(RegazeError, match="are the labels in degrees"):
        opener()


def test_empty_subject(tmp_path):
    write_ethxgaze(tmp_path / "x", counts={1: 3})
    write_raw(tmp_path / "x" / "subject0002.h5", {"face_patch": np.zeros((0, SIZE, SIZE, 3), np.uint8),
                                                  "face_head_pose": np.zeros((0, 2), np.float32)})
    with pytest.raises(RegazeError, match=r"subject0002\.h5: empty subject: 'face_patch' holds 0 images"):
        open_dataset(tmp_path / "x")
    _, opener = _open_raw(tmp_path, {"p0/pixels": np.zeros((0, SIZE, SIZE, 3), np.uint8),
                                     "p0/labels": np.zeros((0, 4), np.float32)}, attrs={})
    with pytest.raises(RegazeError, match="empty subject: group 'p0' holds 0 images"):
        opener()


def test_ethxgaze_mixed_gaze_labels_and_bad_names(tmp_path):
    write_ethxgaze(tmp_path / "a", counts={1: 2})
    write_ethxgaze(tmp_path / "b", counts={2: 2}, gaze=False)
    (tmp_path / "b" / "subject0002.h5").rename(tmp_path / "a" / "subject0002.h5")
    with pytest.raises(RegazeError, match=r"'face_gaze' is present in 1 subject files but missing in \['subject0002\.h5'\]"):
        open_dataset(tmp_path / "a")
    write_ethxgaze(tmp_path / "c", counts={1: 2})
    (tmp_path / "c" / "subject0001.h5").rename(tmp_path / "c" / "subjectX.h5")
    with pytest.raises(RegazeError, match=r"subjectNNNN\.h5.*found 'subjectX\.h5'"):
        open_dataset(tmp_path / "c")


def test_regaze_header_checks(tmp_path):
    _, opener = _open_raw(tmp_path, regaze_raw(), attrs={**REGAZE_ATTRS, "regaze_version": 99})
    with pytest.raises(RegazeError, match="regaze layout version 99 is newer than this reader"):
        opener()
    _, opener = _open_raw(tmp_path, regaze_raw(), attrs={**REGAZE_ATTRS, "colour_order": "YUV"}, name="c.h5")
    with pytest.raises(RegazeError, match=r"c\.h5: attribute 'colour_order' should be 'RGB' or 'BGR'; found 'YUV'"):
        opener()
    _, opener = _open_raw(tmp_path, regaze_raw(), attrs={**REGAZE_ATTRS, "size": 32}, name="s.h5")
    with pytest.raises(RegazeError, match=r"s\.h5: attribute size=32 but 'face_patch' images are 16x16"):
        opener()


def test_writer_rejects_bad_labels(tmp_path):
    from regaze.data.writer import RegazeWriter

    with pytest.raises(RegazeError, match=r"w\.h5: 'face_gaze' pitch out of range"):
        with RegazeWriter(tmp_path / "w.h5", size=4) as w:
            w.append(images=np.zeros((1, 4, 4, 3), np.uint8), gaze=[[2.0, 0.0]], head=[[0.0, 0.0]], subject=[0])
    assert list(tmp_path.iterdir()) == []


def test_index_out_of_range(tmp_path):
    path = write_raw(tmp_path / "ok.h5", regaze_raw(), REGAZE_ATTRS)
    ds = open_dataset(path)
    with pytest.raises(IndexError, match="index 4 out of range"):
        ds.read_images([0, 4])
    with pytest.raises(RegazeError, match="no per-image array 'nope'"):
        ds.read_array("nope")

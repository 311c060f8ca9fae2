"""Readers of the three layouts, the regaze writer and conversion: pixels, colour order and labels exact."""
import os
import pickle

import h5py
import numpy as np
import pytest
import torch

from data_fixtures import SIZE, write_ethxgaze, write_regaze_file, write_sted
from regaze.data.dataset import detect_layout, open_dataset
from regaze.data.convert import convert_to_regaze
from regaze.data.writer import RegazeWriter
from regaze.errors import RegazeError


# ---------------------------------------------------------------------------------------- ETH-XGaze
def test_ethxgaze_bgr_on_disk_reads_as_rgb(tmp_path):
    red_rgb = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    red_rgb[..., 0] = 255
    with h5py.File(tmp_path / "subject0007.h5", "w") as f:
        f["face_patch"] = red_rgb[..., ::-1]  # BGR: (0, 0, 255)
        f["face_head_pose"] = np.zeros((2, 2), np.float32)
    with pytest.warns(UserWarning, match="no 'face_gaze'"):
        ds = open_dataset(tmp_path / "subject0007.h5")
    assert ds.layout == "ethxgaze" and ds.colour_order == "BGR"
    assert ds[0]["image"][0, 0].tolist() == [255, 0, 0]
    assert ds.read_images([1, 0]).shape == (2, SIZE, SIZE, 3)
    assert (ds.read_images([1, 0])[..., 0] == 255).all() and (ds.read_images([0])[..., 2] == 0).all()
    assert ds.subject.tolist() == [7, 7]


def test_ethxgaze_directory_labels_subjects_sessions(tmp_path):
    ref = write_ethxgaze(tmp_path / "train", counts={0: 6, 3: 4})
    ds = open_dataset(tmp_path / "train")
    assert (ds.layout, len(ds), ds.size, ds.has_gaze_labels) == ("ethxgaze", 10, SIZE, True)
    np.testing.assert_array_equal(ds.gaze, ref["gaze"])
    np.testing.assert_array_equal(ds.head, ref["head"])
    assert ds.gaze.dtype == np.float32 and ds.subject.dtype == np.int64
    assert ds.subject.tolist() == ref["subject"].tolist()
    # session = frame made unique per subject: equal within (subject, frame), different across subjects
    pairs = {(s, f): set() for s, f in zip(ref["subject"], ref["frame"])}
    for s, f, sess in zip(ref["subject"], ref["frame"], ds.session):
        pairs[(s, f)].add(int(sess))
    assert all(len(v) == 1 for v in pairs.values()) and len({next(iter(v)) for v in pairs.values()}) == len(pairs)
    order = [9, 2, 2, 5, 0]  # unsorted, repeated, across both files
    np.testing.assert_array_equal(ds.read_images(order), ref["rgb"][order])
    item = ds[7]
    assert set(item) == {"image", "gaze", "head", "subject", "session", "index"}
    assert item["image"].dtype == np.uint8 and item["subject"] == 3 and item["index"] == 7
    assert {"cam_index", "frame_index", "face_mat_norm", "facial_landmarks"} <= set(ds.array_keys)
    np.testing.assert_array_equal(ds.read_array("cam_index", [8, 1])[:, 0], ref["cam"][[8, 1]])
    assert ds.attrs["subject_files"] == ["subject0000.h5", "subject0003.h5"]


def test_ethxgaze_test_split_without_gaze(tmp_path):
    ref = write_ethxgaze(tmp_path / "test", counts={5: 3}, gaze=False)
    with pytest.warns(UserWarning, match="no 'face_gaze'"):
        ds = open_dataset(tmp_path / "test")
    assert ds.gaze is None and not ds.has_gaze_labels
    assert np.isnan(ds[1]["gaze"]).all() and ds[1]["gaze"].shape == (2,)
    np.testing.assert_array_equal(ds.read_images([2]), ref["rgb"][[2]])


# -------------------------------------------------------------------------------------------- ST-ED
@pytest.mark.parametrize("columns", [4, 8])
def test_sted_groups_are_subjects(tmp_path, columns):
    ref = write_sted(tmp_path / "gc.h5", columns=columns)
    ds = open_dataset(tmp_path / "gc.h5")
    assert (ds.layout, len(ds), ds.colour_order, ds.session) == ("sted", 12, "RGB", None)
    assert ds.attrs["subject_names"] == ["p01", "p02", "p10"]
    np.testing.assert_array_equal(ds.subject, ref["subject"])
    np.testing.assert_array_equal(ds.gaze, ref["gaze"])
    np.testing.assert_array_equal(ds.head, ref["head"])
    np.testing.assert_array_equal(ds.read_images([11, 0, 6]), ref["rgb"][[11, 0, 6]])
    assert ds[6]["session"] == -1


# ----------------------------------------------------------------------------------- regaze layout
def test_regaze_round_trip_and_attrs(tmp_path):
    ref = write_regaze_file(tmp_path / "r.h5")
    ds = open_dataset(tmp_path / "r.h5")
    assert detect_layout(tmp_path / "r.h5") == "regaze" and ds.layout == "regaze"
    np.testing.assert_array_equal(ds.read_images(np.arange(len(ds))), ref["images"])
    np.testing.assert_array_equal(ds.gaze, ref["gaze"])
    np.testing.assert_array_equal(ds.session, ref["session"])
    np.testing.assert_array_equal(ds.read_array("synth_identity"), ref["synth_identity"])
    np.testing.assert_array_equal(ds.read_array("source_index", [3, 1]), ref["source_index"][[3, 1]])
    assert ds.attrs["colour_order"] == "RGB" and ds.attrs["regaze_version"] == 1 and ds.attrs["size"] == SIZE
    assert ds.split_indices("val").tolist() == np.flatnonzero(ref["subject"] == 2).tolist()
    assert set(ds.split_indices("train")) == set(np.flatnonzero(ref["subject"] < 2))
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["face_patch"].chunks == (1, SIZE, SIZE, 3) and f["face_patch"].compression == "lzf"
        assert f["face_patch"].maxshape[0] is None


def test_split_indices_needs_split_information(tmp_path):
    write_regaze_file(tmp_path / "r.h5", attrs={"split": "train"})
    ds = open_dataset(tmp_path / "r.h5")
    assert len(ds.split_indices("train")) == len(ds)
    with pytest.raises(RegazeError, match="no split information for 'val'.*subjects_val"):
        ds.split_indices("val")


def test_writer_appends_in_batches_and_publishes_atomically(tmp_path):
    path = tmp_path / "w.h5"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8)
    with RegazeWriter(path, size=8, attrs={"split": "train", "names": ["a", "b"]}, compression="gzip") as w:
        for s in (slice(0, 3), slice(3, 7)):
            w.append(images=images[s], gaze=np.zeros((s.stop - s.start, 2)), head=np.zeros((s.stop - s.start, 2)),
                     subject=np.zeros(s.stop - s.start, int), source_index=np.arange(s.start, s.stop))
            assert not path.exists()  # only the temporary file exists until close
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds.read_images(range(7)), images)
    assert ds.read_array("source_index").tolist() == list(range(7)) and ds.attrs["names"] == ["a", "b"]
    assert sorted(os.listdir(tmp_path)) == ["w.h5"]


def test_writer_failure_leaves_destination_untouched(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with RegazeWriter(path, size=8) as w:
            w.append(images=np.zeros((2, 8, 8, 3), np.uint8), head=np.zeros((2, 2)), subject=[0, 0])
            raise RuntimeError("generator crashed")
    assert path.read_bytes() == b"previous" and sorted(os.listdir(tmp_path)) == ["w.h5"]


def test_writer_rejects_inconsistent_appends_and_empty_files(tmp_path):
    with pytest.raises(RegazeError, match="same arrays"):
        with RegazeWriter(tmp_path / "w.h5", size=8) as w:
            w.append(images=np.zeros((1, 8, 8, 3), np.uint8), head=np.zeros((1, 2)), subject=[0])
            w.append(images=np.zeros((1, 8, 8, 3), np.uint8), head=np.zeros((1, 2)), subject=[0], gaze=np.zeros((1, 2)))
    with pytest.raises(RegazeError, match=r"uint8 \(n, 8, 8, 3\)"):
        with RegazeWriter(tmp_path / "w.h5", size=8) as w:
            w.append(images=np.zeros((1, 9, 9, 3), np.uint8), head=np.zeros((1, 2)), subject=[0])
    with pytest.raises(RegazeError, match="nothing was appended"):
        with RegazeWriter(tmp_path / "w.h5", size=8):
            pass
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ processes, pickling
def test_pickles_without_handle_and_reopens(tmp_path):
    ref = write_regaze_file(tmp_path / "r.h5")
    ds = open_dataset(tmp_path / "r.h5")
    ds.read_images([0])  # opens a handle
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._handles == {}
    np.testing.assert_array_equal(clone.read_images([5]), ref["images"][[5]])


def test_dataloader_with_two_workers(tmp_path):
    ref = write_regaze_file(tmp_path / "r.h5", n=40)
    ds = open_dataset(tmp_path / "r.h5")
    ds.read_images([0])  # a handle open in the parent must not leak into the workers
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, shuffle=False)
    batches = list(loader)
    images = torch.cat([b["image"] for b in batches]).numpy()
    np.testing.assert_array_equal(images, ref["images"])
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(40))


# ----------------------------------------------------------------------------------------- convert
def _assert_same(src_ds, dst_ds):
    assert len(src_ds) == len(dst_ds)
    np.testing.assert_array_equal(dst_ds.read_images(range(len(dst_ds))), src_ds.read_images(range(len(src_ds))))
    np.testing.assert_array_equal(dst_ds.head, src_ds.head)
    np.testing.assert_array_equal(dst_ds.subject, src_ds.subject)
    if src_ds.gaze is None:
        assert dst_ds.gaze is None
    else:
        np.testing.assert_array_equal(dst_ds.gaze, src_ds.gaze)
    if src_ds.session is not None:
        np.testing.assert_array_equal(dst_ds.session, src_ds.session)
    assert dst_ds.layout == "regaze" and dst_ds.attrs["colour_order"] == "RGB"


@pytest.mark.parametrize("layout", ["ethxgaze", "sted", "regaze"])
def test_convert_round_trip_is_exact(tmp_path, layout):
    if layout == "ethxgaze":
        ref = write_ethxgaze(tmp_path / "src")
        src = tmp_path / "src"
    elif layout == "sted":
        ref = write_sted(tmp_path / "src.h5", columns=8)
        src = tmp_path / "src.h5"
    else:
        ref = write_regaze_file(tmp_path / "src.h5")
        src = tmp_path / "src.h5"
    dst = convert_to_regaze(src, tmp_path / "dst.h5", batch_size=3, progress=False)
    src_ds, dst_ds = open_dataset(src), open_dataset(dst)
    _assert_same(src_ds, dst_ds)
    rgb = ref["rgb"] if "rgb" in ref else ref["images"]
    np.testing.assert_array_equal(dst_ds.read_images(range(len(dst_ds))), rgb)  # RGB whatever the source
    assert dst_ds.attrs["source_layout"] == layout
    for key in ("camera_focal_px", "camera_distance_mm", "camera_framing"):  # the source's framing, recorded
        assert dst_ds.attrs[key] == src_ds.attrs[key], key
    preset = {"ethxgaze": "ETH-XGaze", "sted": "ST-ED", "regaze": "assumed: ETH-XGaze"}[layout]
    assert dst_ds.attrs["camera_framing"].startswith(preset)
    if layout == "regaze":
        np.testing.assert_array_equal(dst_ds.read_array("source_index"), ref["source_index"])
        assert dst_ds.attrs["subjects_val"].tolist() == [2]
    else:
        assert dst_ds.read_array("source_index").tolist() == list(range(len(dst_ds)))
    if layout == "ethxgaze":
        np.testing.assert_array_equal(dst_ds.read_array("cam_index")[:, 0], ref["cam"])


def test_convert_test_split_and_resize(tmp_path):
    write_ethxgaze(tmp_path / "test", counts={2: 3}, gaze=False)
    with pytest.warns(UserWarning):
        dst = convert_to_regaze(tmp_path / "test", tmp_path / "small.h5", size=8, progress=False,
                                val_subjects=[2])
    with pytest.warns(UserWarning):
        ds = open_dataset(dst)
    assert ds.size == 8 and ds.gaze is None and ds.read_images([0]).shape == (1, 8, 8, 3)
    assert ds.split_indices("val").tolist() == [0, 1, 2] and ds.attrs["source_size"] == SIZE


def test_empty_selections(tmp_path):
    write_regaze_file(tmp_path / "r.h5")
    ds = open_dataset(tmp_path / "r.h5")
    assert ds.read_images([]).shape == (0, SIZE, SIZE, 3)
    assert ds.read_array("synth_identity", []).shape == (0, 5)

"""`regaze data inspect|convert`: output, exit codes, nothing half-written on failure."""
import json
import os

import numpy as np
import pytest

from data_fixtures import write_ethxgaze, write_regaze_file, write_sted
from regaze import cli
from regaze.data.dataset import open_dataset


def test_inspect_text(tmp_path, capsys):
    write_regaze_file(tmp_path / "r.h5")
    assert cli.main(["data", "inspect", str(tmp_path / "r.h5")]) == 0
    out = capsys.readouterr().out
    for text in ("layout       regaze", "RGB on disk", "images       24, 16x16x3", "subjects     4 ",
                 "sessions     8 ", "gaze pitch", "head yaw", "subjects_val   1 [2]", "source_index",
                 "framing      f 68.57 px, d 600 mm at 16 px (assumed: ETH-XGaze"):
        assert text in out, text


def test_inspect_prints_the_framing_of_an_sted_file(tmp_path, capsys):
    write_sted(tmp_path / "gc.h5", size=32)
    assert cli.main(["data", "inspect", str(tmp_path / "gc.h5"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["framing"]["camera_focal_px"] == pytest.approx(500.0 * 32 / 128) and s["residuals_deg"] is None
    assert s["framing"]["camera_framing"].startswith("ST-ED")


def test_inspect_json_ethxgaze(tmp_path, capsys):
    ref = write_ethxgaze(tmp_path / "x", counts={0: 6, 3: 4})
    assert cli.main(["data", "inspect", str(tmp_path / "x"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["layout"] == "ethxgaze" and s["colour_order_on_disk"] == "BGR" and s["images"] == 10
    assert s["subjects"]["counts"] == {"0": 6, "3": 4}
    assert s["labels_deg"]["gaze_yaw"]["max"] == pytest.approx(np.degrees(ref["gaze"][:, 1].max()), abs=1e-4)


def test_inspect_reports_missing_gaze(tmp_path, capsys):
    write_ethxgaze(tmp_path / "t", counts={1: 2}, gaze=False)
    with pytest.warns(UserWarning):
        assert cli.main(["data", "inspect", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "gaze labels  NONE" in out and "gaze pitch" not in out and "head pitch" in out


def test_convert_cli_round_trip(tmp_path, capsys):
    ref = write_sted(tmp_path / "s.h5")
    dst = tmp_path / "out" / "r.h5"
    assert cli.main(["data", "convert", str(tmp_path / "s.h5"), str(dst), "--quiet", "--val-subjects", "1"]) == 0
    ds = open_dataset(dst)
    np.testing.assert_array_equal(ds.read_images(range(len(ds))), ref["rgb"])
    assert ds.split_indices("val").tolist() == np.flatnonzero(ref["subject"] == 1).tolist()
    assert os.listdir(dst.parent) == ["r.h5"]


def test_convert_bad_source_exits_1_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "src.h5").write_text("not hdf5")
    assert cli.main(["data", "convert", str(tmp_path / "src.h5"), str(tmp_path / "dst.h5"), "--quiet"]) == 1
    assert "not an HDF5 file" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["src.h5"]


def test_convert_failure_midway_leaves_nothing(tmp_path, capsys, monkeypatch):
    write_regaze_file(tmp_path / "src.h5", n=24)
    from regaze.data import convert
    from regaze.errors import RegazeError

    calls = []

    def failing_resize(images, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RegazeError("disk full (simulated)")
        return images

    monkeypatch.setattr(convert, "resize_images", failing_resize)
    assert cli.main(["data", "convert", str(tmp_path / "src.h5"), str(tmp_path / "dst.h5"),
                     "--batch-size", "8", "--quiet"]) == 1
    assert "disk full" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["src.h5"]


def test_convert_refuses_existing_destination_without_force(tmp_path, capsys):
    write_regaze_file(tmp_path / "src.h5")
    (tmp_path / "dst.h5").write_bytes(b"keep me")
    assert cli.main(["data", "convert", str(tmp_path / "src.h5"), str(tmp_path / "dst.h5"), "--quiet"]) == 1
    assert "already exists" in capsys.readouterr().err and (tmp_path / "dst.h5").read_bytes() == b"keep me"
    assert cli.main(["data", "convert", str(tmp_path / "src.h5"), str(tmp_path / "dst.h5"), "--quiet", "--force",
                     "--size", "8"]) == 0
    assert open_dataset(tmp_path / "dst.h5").size == 8


def test_bad_arguments(tmp_path, capsys):
    write_regaze_file(tmp_path / "src.h5")
    assert cli.main(["data", "convert", str(tmp_path / "src.h5"), str(tmp_path / "d.h5"), "--size", "0"]) == 1
    assert "--size must be a positive" in capsys.readouterr().err
    assert cli.main(["data", "convert", str(tmp_path / "src.h5"), str(tmp_path / "d.h5"), "--quiet",
                     "--val-subjects", "9"]) == 1
    assert "val subjects [9] are not in the data" in capsys.readouterr().err
    assert not (tmp_path / "d.h5").exists()
    assert cli.main(["data", "inspect", str(tmp_path / "missing.h5")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["data", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "inspect" in out and "convert" in out and "examples:" in out
    assert cli.main(["data"]) == 2

"""The learning-curve benchmark (benchmarks/learning_curve.py) and its plots (regaze/image_plot.py): minute marks
map to the last checkpoint at or before them, the plot draws what it is given and refuses an empty series,
and one run end to end on a tiny trained run with the toy estimator writes the JSON, the table and the PNG."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks.learning_curve import elapsed_at, main, map_marks, read_log_points
from regaze.errors import RegazeError
from regaze.image_plot import HLINE_COLOURS, SERIES_COLOURS, line_plot, text_panel
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import TOY_MAX_VAL_ERROR_DEG, toy_render, toy_setup
from train_fixtures import TINY_MODEL

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 2,
        "keep_last": 100, "val_pairs": 4, "threads": 1, "max_steps": 6}


def _write_stats(path, lines: list) -> None:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


# --------------------------------------------------------------------------------- minutes -> checkpoints
def test_marks_map_to_the_last_checkpoint_at_or_before_them(tmp_path):
    stats = tmp_path / "stats.jsonl"
    _write_stats(stats, [{"step": s, "elapsed_s": 60.0 * s, "rec": 0.1} for s in (100, 200, 300)]
                 + [{"step": 300, "val_psnr_db": 20.0}])  # a validation line: no elapsed_s
    points = read_log_points(stats)
    assert points.tolist() == [[100, 6000], [200, 12000], [300, 18000]]
    assert elapsed_at([50, 150, 400], points).tolist() == [3000, 9000, 24000]  # from step 0 at 0 s; past the end linear
    names = ["best.pt", "step_0000050.pt", "step_0000150.pt", "step_0000300.pt"]
    rows = map_marks(minutes=[10, 49.9, 50, 200, 300, 301], checkpoints=names, points=points)
    assert [r["status"] for r in rows] == ["no checkpoint", "no checkpoint", "ok", "ok", "ok", "not reached"]
    assert [r["step"] for r in rows] == [None, None, 50, 150, 300, None]
    assert rows[3]["checkpoint"] == "step_0000150.pt" and rows[3]["checkpoint_minutes"] == pytest.approx(150)
    assert all(r["run_end_minutes"] == pytest.approx(300) and r["run_end_step"] == 300 for r in rows)
    # a checkpoint after the last log line (a run stopped at a validation step) extends the run, at the last rate
    late = map_marks(minutes=[305, 311], checkpoints=names + ["step_0000310.pt"], points=points)
    assert [(r["status"], r["step"]) for r in late] == [("ok", 300), ("not reached", None)]
    assert late[1]["run_end_minutes"] == pytest.approx(310) and late[1]["run_end_step"] == 310


def test_elapsed_time_is_cumulative_over_resumes_and_survives_a_cut_last_line(tmp_path):
    stats = tmp_path / "stats.jsonl"
    # first process: steps 10, 20 at 100, 200 s; killed; resumed from step 10: its clock starts again at 0
    _write_stats(stats, [{"step": 10, "elapsed_s": 100.0}, {"step": 20, "elapsed_s": 200.0},
                         {"step": 20, "elapsed_s": 90.0}, {"step": 30, "elapsed_s": 180.0}, '{"step": 40, "elaps'])
    assert read_log_points(stats).tolist() == [[10, 100], [20, 200], [30, 380]]
    _write_stats(stats, ['{"step": 1', {"step": 2, "elapsed_s": 1.0}])
    with pytest.raises(RegazeError, match="not a JSON object"):
        read_log_points(stats)
    _write_stats(stats, [{"step": 2, "val_psnr_db": 1.0}])
    with pytest.raises(RegazeError, match="elapsed_s"):
        read_log_points(stats)
    with pytest.raises(RegazeError, match="not found"):
        read_log_points(tmp_path / "missing.jsonl")
    with pytest.raises(RegazeError, match="step_XXXXXXX"):
        map_marks(minutes=[1], checkpoints=["best.pt"], points=np.array([[1.0, 1.0]]))


# ------------------------------------------------------------------------------------------- the plot
def _has_colour(image: np.ndarray, colour) -> int:
    return int(np.all(image == np.array(colour, np.uint8), axis=-1).sum())


def test_line_plot_draws_each_series_in_its_colour_at_the_requested_size():
    series = {"rising": [(0, 1.0), (10, 3.0), (20, 4.0)], "one point": [(5, 2.0)]}
    image = line_plot(series=series, x_label="minutes", y_label="value", title="t", hlines={"target": 3.5}, size=(500, 320))
    assert image.shape == (320, 500, 3) and image.dtype == np.uint8
    for colour in (SERIES_COLOURS[0], SERIES_COLOURS[1], HLINE_COLOURS[0]):
        assert _has_colour(image, colour) > 20
    blank = line_plot(series={"rising": series["rising"]}, x_label="minutes", y_label="value", title="t", size=(500, 320))
    assert _has_colour(blank, SERIES_COLOURS[1]) == 0 and _has_colour(blank, HLINE_COLOURS[0]) == 0
    # points are placed by value: the rising series' last marker is above and right of its first
    ys, xs = np.nonzero(np.all(blank == np.array(SERIES_COLOURS[0], np.uint8), axis=-1))
    assert xs[np.argmin(ys)] > xs[np.argmax(ys)]
    # None and NaN points are left out, not drawn at 0
    holes = line_plot(series={"s": [(0, 1.0), (1, None), (2, float("nan")), (3, 2.0)]}, x_label="x", y_label="y", title="t")
    assert holes.shape == (400, 640, 3)
    assert text_panel(title="t", text="not measured", size=(300, 200)).shape == (200, 300, 3)


def test_line_plot_refuses_empty_input_with_a_clear_error():
    with pytest.raises(RegazeError, match="series 'empty' has no finite"):
        line_plot(series={"empty": []}, x_label="x", y_label="y", title="t")
    with pytest.raises(RegazeError, match="series 'nan' has no finite"):
        line_plot(series={"nan": [(1.0, float("nan"))]}, x_label="x", y_label="y", title="t")
    with pytest.raises(RegazeError, match="at least one series"):
        line_plot(series={}, x_label="x", y_label="y", title="t")
    with pytest.raises(RegazeError, match="finite"):
        line_plot(series={"s": [(0, 1)]}, x_label="x", y_label="y", title="t", hlines={"bad": float("inf")})
    with pytest.raises(RegazeError, match="at least"):
        line_plot(series={"s": [(0, 1)]}, x_label="x", y_label="y", title="t", size=(100, 80))


# ----------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The toy file and estimator (test_evaluate_toydata), and a 6-step run on that file with a checkpoint
    every 2 steps, whose stats say one minute per step (so the marks below are exact)."""
    from isolation import call_in_child

    data, est_dir = toy_setup()
    run = tmp_path_factory.mktemp("learning_curve") / "run"
    call_in_child("train_fixtures", "train_tiny_run", kwargs={"config": TINY, "data": str(data), "out": str(run)})
    lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
    for line in lines:
        if "elapsed_s" in line:
            line["elapsed_s"] = 60.0 * line["step"]
    _write_stats(run / "stats.jsonl", lines)
    return {"data": data, "est_dir": est_dir, "run": run}


def test_learning_curve_end_to_end_writes_json_table_and_png(tiny_run, tmp_path, monkeypatch, capsys):
    from PIL import Image

    import regaze.data.synth as synth

    monkeypatch.setattr(synth, "render", toy_render)  # the toy file's exact targets come from the toy renderer
    run = tiny_run["run"]
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == [f"step_000000{s}.pt" for s in (2, 4, 6)]
    out, png, md = tmp_path / "lc.json", tmp_path / "lc.png", tmp_path / "lc.md"
    code = main(["--run", str(run), "--data", str(tiny_run["data"]), "--estimator", str(tiny_run["est_dir"]),
                 "--minutes", "1", "3", "4.5", "6", "100", "--pairs", "6", "--images", "6", "--batch-size", "6",
                 "--max-val-error-deg", str(TOY_MAX_VAL_ERROR_DEG), "--out", str(out), "--png", str(png),
                 "--markdown-out", str(md), "--quiet"])
    assert code == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["minutes"], r["status"], r["step"]) for r in rows] == [
        (1, "no checkpoint", None), (3, "ok", 2), (4.5, "ok", 4), (6, "ok", 6), (100, "not reached", None)]
    assert rows[4]["run_end_minutes"] == pytest.approx(6) and sorted(result["evaluations"]) == ["2", "4", "6"]
    assert all(r.keys() == rows[1].keys() for r in rows) and rows[0]["gaze_err_deg"] is None
    assert result["config"]["max_steps"] == 6 and result["machine"]["cpu_count"] >= 1
    for r in rows[1:4]:
        assert r["gaze_err_over_floor"] == pytest.approx(r["gaze_err_deg"] / r["floor_gaze_err_deg"])
        assert r["identity_ratio"] == pytest.approx(r["identity_model"] / r["identity_source_itself"])
        for key in ("head_err_deg", "head_only_psnr_db", "head_only_blur_1px_psnr_db", "gaze_only_eye_psnr_db",
                    "gaze_only_eye_composite_psnr_db", "gaze_only_blur_1px_eye_psnr_db", "gaze_only_head_change_deg",
                    "head_only_gaze_head_rel_change_deg"):
            assert isinstance(r[key], float), key
        # the blur control is the exact target blurred: the same for every checkpoint
        assert r["head_only_blur_1px_psnr_db"] == rows[1]["head_only_blur_1px_psnr_db"]
    table = md.read_text()
    assert table in capsys.readouterr().out
    assert "not reached (the run ended at 6.0 min, step 6)" in table and "no checkpoint kept" in table
    assert "| 4.5 | 4 (4.0 min) |" in table
    with Image.open(png) as image:
        assert image.size == (2 * 640 + 3 * 4, 2 * 400 + 3 * 4)
        assert _has_colour(np.asarray(image.convert("RGB")), SERIES_COLOURS[0]) > 100


def test_learning_curve_refuses_a_run_without_checkpoints_at_the_marks(tiny_run, tmp_path, capsys):
    code = main(["--run", str(tiny_run["run"]), "--data", str(tiny_run["data"]), "--estimator", str(tiny_run["est_dir"]),
                 "--minutes", "0.5", "1", "--out", str(tmp_path / "x.json"), "--png", str(tmp_path / "x.png")])
    assert code == 1 and "no checkpoint at or before any of the marks" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    assert main(["--run", str(tmp_path), "--data", "d", "--estimator", "e", "--minutes", "0"]) == 1
    assert "--minutes must be > 0" in capsys.readouterr().err
    # the estimator a run was trained against (its guide_estimator) cannot measure it, as in `regaze evaluate`
    guided = tmp_path / "guided"
    shutil.copytree(tiny_run["run"], guided)
    config = json.loads((guided / "config.json").read_text())
    (guided / "config.json").write_text(json.dumps({**config, "guide_estimator": str(tiny_run["est_dir"])}))
    code = main(["--run", str(guided), "--data", str(tiny_run["data"]), "--estimator", str(tiny_run["est_dir"]),
                 "--max-val-error-deg", str(TOY_MAX_VAL_ERROR_DEG), "--minutes", "6", "--out", str(tmp_path / "g.json"),
                 "--png", str(tmp_path / "g.png")])
    assert code == 1 and "training-time estimator of this run" in capsys.readouterr().err


def test_a_run_that_continues_another_runs_weights_continues_its_curve(tiny_run, tmp_path, monkeypatch, capsys):
    import regaze.data.synth as synth

    monkeypatch.setattr(synth, "render", toy_render)
    common = ["--data", str(tiny_run["data"]), "--estimator", str(tiny_run["est_dir"]), "--pairs", "6", "--images", "6",
              "--batch-size", "6", "--max-val-error-deg", str(TOY_MAX_VAL_ERROR_DEG), "--quiet"]
    prior = tmp_path / "prior.json"
    assert main(["--run", str(tiny_run["run"]), "--minutes", "3", "10", "--out", str(prior),
                 "--png", str(tmp_path / "p.png"), *common]) == 0
    # a second run that started from the first one's end weights (init_from), one minute per step on its own clock
    later = tmp_path / "later"
    shutil.copytree(tiny_run["run"], later)
    end = tiny_run["run"] / "checkpoints" / "step_0000006.pt"
    config = json.loads((later / "config.json").read_text())
    (later / "config.json").write_text(json.dumps({**config, "init_from": str(end)}))
    out = tmp_path / "later.json"
    assert main(["--run", str(later), "--continues", str(prior), "--minutes", "3", "7", "8", "12", "13",
                 "--out", str(out), "--png", str(tmp_path / "l.png"), "--markdown-out", str(tmp_path / "l.md"),
                 *common]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    # 3 min: the first run's row; 7 min: the start weights (step 6 at 6 min); 8 and 12: this run's steps 2 and 6
    assert [(r["minutes"], r["status"], r["step"]) for r in rows] == [
        (3, "ok", 2), (7, "ok", 6), (8, "ok", 8), (12, "ok", 12), (13, "not reached", None)]
    assert rows[0]["measured_by"] == "earlier run" and "measured_by" not in rows[2]
    assert rows[1]["checkpoint"] == str(end) and rows[1]["checkpoint_minutes"] == pytest.approx(6)
    assert rows[3]["checkpoint_minutes"] == pytest.approx(12) and rows[4]["run_end_minutes"] == pytest.approx(12)
    assert rows[0]["gaze_err_deg"] == json.loads(prior.read_text())["rows"][0]["gaze_err_deg"]
    assert sorted(result["evaluations"], key=int) == ["6", "8", "12"] and result["continues"]["start"]["step"] == 6
    assert "| 3 | 2 (2.0 min) † |" in (tmp_path / "l.md").read_text()
    # a run without init_from continues nothing
    assert main(["--run", str(tiny_run["run"]), "--continues", str(prior), "--minutes", "3",
                 "--out", str(tmp_path / "x.json"), "--png", str(tmp_path / "x.png"), *common]) == 1
    assert "has no init_from" in capsys.readouterr().err

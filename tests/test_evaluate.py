"""Redirection evaluation: seeded held-out pairs, the acceptance sanity checks with reference models (an
oracle that returns the exact target render, and copy-the-source), the estimator refusal, the report files,
eye boxes, a real Redirector run directory, and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from regaze.cli import main as cli_main
from regaze.data.dataset import open_dataset
from regaze.errors import RegazeError
from regaze.evaluation.protocol import evaluate_model, evaluate_run
from regaze.evaluation.baselines import CopySource, SyntheticOracle
from regaze.evaluation.image_quality import EYE_BAND, eye_boxes
from regaze.evaluation.eval_pairs import held_out_indices, sample_pairs
from regaze.evaluation.redirection import evaluate_pairs
from regaze.evaluation.eval_markdown import render_markdown
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import (TOY_MAX_VAL_ERROR_DEG, TOY_SPLIT, mean_of, toy_context, toy_evaluate, toy_render,
                                   write_toy_dataset)


@pytest.fixture(scope="module")
def toy():
    return toy_context()


_evaluate = toy_evaluate


# ------------------------------------------------------------------------------------------------ pairs
def test_pairs_are_seeded_same_session_and_held_out(toy):
    ds = toy["ds"]
    idx, split = held_out_indices(ds)
    assert split == "test" and set(ds.subject[idx]) == set(TOY_SPLIT["test"])
    kw = dict(subject=ds.subject, session=ds.session, indices=idx, n_pairs=100)
    a, b, c = sample_pairs(**kw, seed=1), sample_pairs(**kw, seed=1), sample_pairs(**kw, seed=2)
    assert np.array_equal(a["source"], b["source"]) and np.array_equal(a["target"], b["target"])
    assert not np.array_equal(a["source"], c["source"])
    assert a["rule"] == "session" and np.all(a["source"] != a["target"])
    assert np.all(ds.session[a["source"]] == ds.session[a["target"]])
    assert np.all(ds.subject[a["other"]] != ds.subject[a["source"]])
    assert np.isin(np.concatenate([a["source"], a["target"], a["other"]]), idx).all()
    by_subject = sample_pairs(**kw, seed=1, rule="subject")
    assert by_subject["rule"] == "subject" and np.all(ds.subject[by_subject["source"]] == ds.subject[by_subject["target"]])


def test_held_out_needs_split_information_or_all(tmp_path):
    ds = open_dataset(write_toy_dataset(tmp_path / "n.h5", subjects=2, per_session=2, sessions=1))
    with pytest.raises(RegazeError, match="--split all"):
        held_out_indices(ds)
    assert len(held_out_indices(ds, split="all")[0]) == 4
    one = open_dataset(write_toy_dataset(tmp_path / "o.h5", subjects=1, per_session=1, sessions=3))
    with pytest.raises(RegazeError, match="two images"):
        sample_pairs(subject=one.subject, session=one.session, indices=np.arange(3), n_pairs=4, seed=0, rule="session")


# ------------------------------------------------------------------------------- acceptance sanity checks
def test_oracle_reaches_the_floor_and_copy_source_does_not(toy):
    oracle = _evaluate(toy, SyntheticOracle(toy["ds"], indices=held_out_indices(toy["ds"])[0], renderer=toy_render))
    copy = _evaluate(toy, CopySource())
    for what in ("gaze", "head", "gaze_head_rel"):
        floor = mean_of(oracle, f"floor/{what}_err_deg")
        # the exact target render is read like the real target: ST-ED error at the floor, GazeNeRF error ~ 0
        assert abs(mean_of(oracle, f"redirection/model/st_ed_{what}_err_deg") - floor) < 1.0
        assert mean_of(oracle, f"redirection/model/gazenerf_{what}_err_deg") < 2.0
        # copying the source leaves the error at the pose difference, far above the floor
        assert mean_of(copy, f"redirection/model/st_ed_{what}_err_deg") > floor + 10.0
        assert mean_of(copy, f"redirection/model/st_ed_{what}_err_deg") == pytest.approx(
            mean_of(copy, f"redirection/copy_source/st_ed_{what}_err_deg"))
    iq, iq_copy = oracle["summary"]["image_quality"], copy["summary"]["image_quality"]
    for kind in ("full", "gaze_only", "head_only"):
        assert iq[kind]["model"]["psnr_db"]["mean"] == 100.0 and iq[kind]["model"]["eye_l1"]["mean"] < 1e-6
        assert iq_copy[kind]["model"]["psnr_db"]["mean"] < 40.0
    assert oracle["render_check"]["max_abs_diff_levels"] == 0
    # disentanglement of the exact renders equals the oracle's; copy-source changes nothing
    assert mean_of(oracle, "disentanglement/model/gaze_only_head_change_deg") == pytest.approx(
        mean_of(oracle, "disentanglement/exact_render/gaze_only_head_change_deg"))
    assert mean_of(copy, "disentanglement/model/gaze_only_head_change_deg") < 0.05  # float32 acos near 0
    assert mean_of(copy, "disentanglement/model/head_only_gaze_change_deg") < 0.05
    # identity: the oracle's output is about as much the person as the source photo, the copy exactly so
    assert oracle["identity"]["controls_pass"] and oracle["identity"]["normalised"] == pytest.approx(1.0, abs=0.15)
    assert copy["identity"]["scores"]["model"] == pytest.approx(copy["identity"]["scores"]["source_itself"], abs=1e-6)
    assert "| full: model: decoder image | 100.00 ± 0.00 |" in render_markdown(oracle)


def test_redirecting_to_the_source_angles_gives_the_floor(toy):
    ds = toy["ds"]
    pairs = sample_pairs(subject=ds.subject, session=ds.session, indices=held_out_indices(ds)[0], n_pairs=12, seed=5)
    pairs = {**pairs, "target": pairs["source"]}  # target = source: redirect every image to its own angles
    for model in (CopySource(), SyntheticOracle(ds, indices=pairs["source"], renderer=toy_render)):
        raw = evaluate_pairs(model, dataset=ds, estimator=toy["est"], pairs=pairs, renderer=toy_render, progress=False)
        pp = raw["per_pair"]
        for what in ("gaze", "head", "gaze_head_rel"):
            assert np.allclose(pp["redirection"]["model"][f"st_ed_{what}_err_deg"], pp["floor"][f"{what}_err_deg"], atol=1e-3)
            assert np.allclose(pp["redirection"]["model"][f"gazenerf_{what}_err_deg"], 0.0, atol=1e-3)
        for row in ("model", "eye_composite"):
            assert np.all(pp["reconstruction"][row]["psnr_db"] == 100.0)


def test_random_weights_estimator_is_refused_then_flagged(toy, tmp_path):
    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator
    from regaze.evaluation.estimator.store import save_estimator

    save_estimator(tmp_path / "rand", model=GazeHeadEstimator(EstimatorConfig(image_size=32, width=4)), record=None)
    kw = dict(run="baseline:copy", data=toy["data"], out=tmp_path / "out", n_pairs=8, renderer=toy_render, progress=False)
    with pytest.raises(RegazeError, match="refusing this estimator"):
        evaluate_run(estimator=tmp_path / "rand", **kw)
    result = evaluate_run(estimator=tmp_path / "rand", allow_untrained_estimator=True, **kw)
    assert result["estimator"]["untrained"] and result["notices"][0].startswith("ESTIMATOR FLAGGED")
    assert "WARNING" in (tmp_path / "out" / "eval.md").read_text()


def test_report_files_store_pairs_and_notices(toy, tmp_path):
    data = write_toy_dataset(tmp_path / "r.h5", subjects=16, per_session=4, sessions=1, split=TOY_SPLIT, synthetic=False)
    kw = dict(run="baseline:copy", data=data, estimator=toy["est_dir"], n_pairs=12, seed=3,
              max_val_error_deg=TOY_MAX_VAL_ERROR_DEG, progress=False)
    evaluate_run(out=tmp_path / "a", **kw)
    evaluate_run(out=tmp_path / "b", **kw)
    a, b = (json.loads((tmp_path / d / "eval.json").read_text()) for d in ("a", "b"))
    assert a["pairs"]["source"] == b["pairs"]["source"] and len(a["pairs"]["target"]) == 12
    assert len(a["per_pair"]["redirection"]["model"]["st_ed_gaze_err_deg"]) == 12
    assert a["data"]["split"] == "test" and a["estimator"]["held_out_subjects_seen_in_training"] == 0
    md = (tmp_path / "a" / "eval.md").read_text()
    for heading in ("Redirection error", "Disentanglement", "Reconstruction", "Identity", "Notices",
                    "control: exact target blurred, sigma = 1 px", "model: eye composite", "gaze, head-relative"):
        assert heading in md
    try:
        import lpips  # noqa: F401
    except ImportError:
        assert any(n.startswith("LPIPS skipped") for n in a["notices"]) and "LPIPS skipped" in md
    assert not list((tmp_path / "a").glob(".*tmp"))  # atomic writes leave no temporaries


def test_non_synthetic_data_skip_exact_targets(tmp_path, toy):
    data = write_toy_dataset(tmp_path / "real.h5", subjects=16, per_session=4, sessions=1, split=TOY_SPLIT, synthetic=False)
    ds = open_dataset(data)
    result = evaluate_model(CopySource(), dataset=ds, estimator=toy["est"], n_pairs=8, progress=False)
    assert "image_quality" not in result["summary"] and "exact_render" not in result["summary"]
    assert any("not synthetic" in n for n in result["notices"])
    with pytest.raises(RegazeError, match="synth_identity"):
        SyntheticOracle(ds)


# --------------------------------------------------------------------------------------------- eye boxes
def test_eye_box_is_the_padded_changed_region_or_the_fixed_band():
    a = np.zeros((2, 64, 64, 3), np.uint8)
    b = a.copy()
    b[0, 20:24, 10:30] = 200  # only image 0 changes
    boxes, fallback = eye_boxes(a, b)
    assert tuple(boxes[0]) == (18, 8, 8, 24) and not fallback[0]  # padded by 64 // 32 = 2 px
    assert fallback[1] and tuple(boxes[1]) == tuple(np.round(np.array(EYE_BAND) * 64).astype(int))


# ------------------------------------------------------------------------------------ real model and CLI
def test_real_redirector_run_directory_on_synthetic_64(tmp_path):
    synth = pytest.importorskip("regaze.data.synth.generate")
    from regaze.checkpoint import save_checkpoint
    from regaze.config import ModelConfig
    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator
    from regaze.evaluation.estimator.store import save_estimator
    from regaze.model.redirector import Redirector

    data = synth.write_synthetic_dataset(tmp_path / "s64.h5", subjects=5, per_subject=4, per_session=2, size=64,
                                         seed=1, workers=1, progress=False)
    cfg = ModelConfig(image_size=64, k=16, channel_base=256, channel_max=32)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt",
                    {"ema": Redirector(cfg).state_dict(), "config": {"model": cfg.to_dict()}, "step": 3})
    save_estimator(tmp_path / "est", model=GazeHeadEstimator(EstimatorConfig(image_size=64, width=4)), record=None)
    result = evaluate_run(run=tmp_path / "run", data=data, estimator=tmp_path / "est", n_pairs=3, split="all",
                          allow_untrained_estimator=True, progress=False)
    assert (tmp_path / "run" / "eval.json").is_file() and result["model"]["step"] == 3
    assert result["render_check"]["max_abs_diff_levels"] == 0  # stored parameters re-render the stored images
    s = result["summary"]
    assert s["image_quality"]["full"]["model"]["psnr_db"]["n"] == 3
    # random weights: the decoder changes every pixel, the eye composite keeps the source outside the eyes
    assert s["reconstruction"]["eye_composite"]["psnr_db"]["mean"] > s["reconstruction"]["model"]["psnr_db"]["mean"] + 3
    # the redirector reports its own source angles (m~g, m~h): measured, and a redirection made with them
    assert s["source_estimators"]["model"]["gaze_err_deg"]["n"] == 3
    assert s["redirection"]["model_estimated_sources"]["st_ed_gaze_err_deg"]["n"] == 3
    oracle = evaluate_run(run="baseline:oracle", data=data, estimator=tmp_path / "est", out=tmp_path / "o",
                          n_pairs=3, split="all", allow_untrained_estimator=True, progress=False)
    assert oracle["summary"]["image_quality"]["gaze_only"]["model"]["eye_psnr_db"]["mean"] == 100.0
    # a 64 px model on 32 px data is an error at the boundary
    toy32 = write_toy_dataset(tmp_path / "t32.h5", subjects=2, per_session=2, sessions=1)
    save_estimator(tmp_path / "est32", model=GazeHeadEstimator(EstimatorConfig(image_size=32, width=4)), record=None)
    with pytest.raises(RegazeError, match="64"):
        evaluate_run(run=tmp_path / "run", data=toy32, estimator=tmp_path / "est32", split="all",
                     allow_untrained_estimator=True, progress=False)


def test_cli_evaluate(toy, tmp_path, capsys):
    data = write_toy_dataset(tmp_path / "c.h5", subjects=16, per_session=3, sessions=1, split=TOY_SPLIT, synthetic=False)
    args = ["evaluate", "--run", "baseline:copy", "--data", str(data), "--estimator", str(toy["est_dir"]),
            "--out", str(tmp_path / "ev"), "--pairs", "6", "--quiet", "--max-val-error-deg", str(TOY_MAX_VAL_ERROR_DEG)]
    assert cli_main(args) == 0
    assert json.loads((tmp_path / "ev" / "eval.json").read_text())["pairs"]["n"] == 6
    assert cli_main(args[:-2]) == 1  # the toy estimator is above the default 10° limit
    assert "refusing this estimator" in capsys.readouterr().err
    assert cli_main(["evaluate", "--run", "baseline:nope", "--data", str(data), "--estimator", str(toy["est_dir"]),
                     "--out", str(tmp_path / "x"), "--allow-untrained-estimator"]) == 1
    assert cli_main(["evaluate"]) == 1
    with pytest.raises(SystemExit):
        cli_main(["evaluate", "--help"])
    assert "GazeNeRF" in capsys.readouterr().out


def test_seen_subjects_are_compared_by_face_on_synthetic_files(tmp_path):
    from regaze.evaluation.protocol import _same_people

    mine = open_dataset(write_toy_dataset(tmp_path / "a.h5", subjects=4, per_session=2, seed=0))
    again = write_toy_dataset(tmp_path / "again.h5", subjects=4, per_session=2, seed=0)
    other_seed = write_toy_dataset(tmp_path / "b.h5", subjects=4, per_session=2, seed=1)
    plain = write_toy_dataset(tmp_path / "plain.h5", subjects=4, per_session=2, seed=1, synthetic=False)
    assert _same_people(mine, {0, 2}, str(again)) == {0, 2}  # the same faces under the same ids
    assert _same_people(mine, {0, 2}, str(other_seed)) == set()  # same ids, other faces
    assert _same_people(mine, {0, 2}, str(plain)) == {0, 2}  # no face parameters: an equal id counts
    assert _same_people(mine, {0, 2}, str(tmp_path / "gone.h5")) == {0, 2}  # file gone: an equal id counts

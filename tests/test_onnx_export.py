"""ONNX export (regaze/export/, `regaze export`): the graph matches PyTorch eager within the parity bound for both
decoders and the shipped reference model, at batch sizes 1 and 5 from one file, under every switch; its
metadata reads back; the file is written atomically; bad input is a clear error."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from regaze.checkpoint import file_sha256, save_checkpoint
from regaze.cli import main as cli_main
from regaze.config import ModelConfig
from regaze.errors import RegazeError
from regaze.export import (INPUT_NAMES, OUTPUT_NAMES, RedirectionGraph, example_inputs, export_checkpoint,
                           export_redirector, onnx_session, parity_report, read_metadata, run_onnx, to_uint8)
from regaze.export.onnx_graph import onnx_bytes
from regaze.model import Redirector
from regaze.model.decoder import FLOW_MAX
from regaze.model.framing import Framing
from regaze.model.pretrained import reference_checkpoint

onnx = pytest.importorskip("onnx", reason="the export extra: pip install 'regaze[export]'")
pytest.importorskip("onnxruntime", reason="the export extra: pip install 'regaze[export]'")

MAX_ABS = 2e-3
WITHIN_ONE_LEVEL = 0.999


def _model(mode: str, *, seed: int = 0) -> Redirector:
    """A small random Redirector; the warp head gets random weights too (it starts at zero: identity warp, a
    flat 50 % blend), so that the graph's grid_sample moves pixels and its mask varies."""
    torch.manual_seed(seed)
    refine = 4 if mode == "warp_refine" else 0
    upsample = "convex" if mode == "warp_convex" else "bilinear"
    cfg = ModelConfig(image_size=64, k=8, channel_max=32, flat_channels=8, estimator_hidden=16,
                      decoder_mode="warp" if mode.startswith("warp") else mode, decoder_warp_refine=refine,
                      decoder_warp_upsample=upsample)
    model = Redirector(cfg)
    if model.decoder.to_warp is not None:
        torch.nn.init.normal_(model.decoder.to_warp.weight, std=0.3)
        torch.nn.init.normal_(model.decoder.to_warp.bias, std=0.5)
    if model.decoder.refine is not None:  # zero-initialised too: give its correction something to do
        torch.nn.init.normal_(model.decoder.refine[-1].weight, std=0.05)
    if model.decoder.upsample_weights is not None:  # zero-initialised: the 3x3 mean; make the weights vary
        torch.nn.init.normal_(model.decoder.upsample_weights.weight, std=0.3)
    model.framing = Framing(focal_px=180.0, distance_mm=600.0)
    return model.requires_grad_(False).eval()


def _assert_parity(report: dict) -> None:
    for name in ("decoded", "eyes"):
        worst = report["worst"][name]
        assert worst["max_abs_diff"] <= MAX_ABS, (name, worst)
        assert worst["uint8_within_one_level"] >= WITHIN_ONE_LEVEL, (name, worst)
    for name in ("gaze_est", "head_est"):
        assert report["worst"][name]["max_abs_diff"] <= MAX_ABS, (name, report["worst"][name])
    assert report["passed"]


@pytest.mark.parametrize("mode", ["pure", "warp", "warp_refine", "warp_convex"])
def test_onnx_runtime_matches_pytorch_for_both_decoders(mode, tmp_path):
    model = _model(mode)
    info = export_redirector(model, path=tmp_path / f"{mode}.onnx")
    session = onnx_session(info["path"])
    report = parity_report(session, model, batch_sizes=(1, 5))  # one file, two batch sizes
    _assert_parity(report)
    assert set(report["batches"]) == {"1", "5"}
    if mode != "pure":  # the warp does something: its flow moves pixels by more than a third of a pixel
        flows = []
        hook = model.decoder.to_warp.register_forward_hook(lambda m, i, o: flows.append(torch.tanh(o[:, :2])))
        model(example_inputs(batch_size=2, image_size=64)["images"])
        hook.remove()
        assert FLOW_MAX * flows[0].abs().max() * 32 > 0.3  # [-1, 1] coordinates -> pixels at 64 px


def test_every_switch_is_exercised_and_acts_per_row(tmp_path):
    """The parity batch holds every (change_gaze, change_head) pair and both sources; kept features are kept:
    with nothing changed the graph is the plain reconstruction, and `eyes` equals `decoded` wherever gaze is kept."""
    inputs = example_inputs(batch_size=5, image_size=64)
    pairs = {(int(g), int(h)) for g, h in zip(inputs["change_gaze"][:, 0], inputs["change_head"][:, 0])}
    assert pairs == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert set(inputs["estimate_source"].flatten().tolist()) == {0.0, 1.0}
    model = _model("pure")
    session = onnx_session(onnx_bytes(model))
    out = run_onnx(session, inputs)
    kept = inputs["change_gaze"][:, 0] == 0
    assert np.array_equal(out["eyes"][kept.numpy()], out["decoded"][kept.numpy()])
    still = {**inputs, "change_gaze": torch.zeros(5, 1), "change_head": torch.zeros(5, 1)}
    recon = run_onnx(session, still)["decoded"]
    assert np.abs(recon - model(inputs["images"]).numpy()).max() <= MAX_ABS
    # a changed gaze changes the output; the eye composite leaves pixels far from the eyes as they were
    moved = run_onnx(session, {**still, "change_gaze": torch.ones(5, 1)})
    assert np.abs(moved["decoded"] - recon).max() > 1e-3
    corner = (slice(None), slice(None), slice(0, 4), slice(0, 4))
    assert np.abs(moved["eyes"][corner] - inputs["images"].numpy()[corner]).max() < 1e-3


def test_graph_module_is_the_computation_exported(tmp_path):
    """RedirectionGraph in eager PyTorch and the file give the same outputs (what the benchmark compares)."""
    model = _model("warp")
    session = onnx_session(onnx_bytes(model))
    inputs = example_inputs(batch_size=3, image_size=64, seed=7)
    with torch.no_grad():
        eager = RedirectionGraph(model)(*(inputs[n] for n in INPUT_NAMES))
    onnx_out = run_onnx(session, inputs)
    for name, value in zip(OUTPUT_NAMES, eager):
        assert onnx_out[name].shape == tuple(value.shape)
        assert np.abs(onnx_out[name] - value.numpy()).max() <= MAX_ABS, name


def test_metadata_reads_back_and_the_file_is_written_atomically(tmp_path):
    model = _model("pure")
    path = tmp_path / "out" / "model.onnx"  # the folder is created
    path.parent.mkdir()
    path.write_bytes(b"old")  # replaced whole
    info = export_redirector(model, path=path, checkpoint={"sha256": "abc", "step": 3})
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no temporary file left
    assert path.stat().st_size == info["bytes"] > 1000
    meta = read_metadata(path)
    assert meta["regaze_framing"] == {"focal_px": 180.0, "distance_mm": 600.0, "image_size": 64}
    assert meta["regaze_config"]["model"] == model.config.to_dict()
    assert meta["regaze_checkpoint"] == {"sha256": "abc", "step": 3}
    assert list(meta["regaze_interface"]["inputs"]) == list(INPUT_NAMES)
    assert list(meta["regaze_interface"]["outputs"]) == list(OUTPUT_NAMES)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == list(INPUT_NAMES)
    assert all(i.type.tensor_type.shape.dim[0].dim_param == "batch" for i in graph.input)  # dynamic batch


def test_uint8_conversion_matches_redirect():
    x = np.array([-1.5, -1.0, -0.00196, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
    ours = to_uint8(x)
    theirs = ((torch.from_numpy(x).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(ours, theirs)


@pytest.mark.skipif(reference_checkpoint() is None, reason="this install ships no reference model")
def test_reference_model_exports_with_parity_and_provenance(tmp_path):
    path = tmp_path / "reference.onnx"
    info, model = export_checkpoint(reference_checkpoint(), path=path)
    assert model.config.decoder_mode == "warp"
    _assert_parity(parity_report(onnx_session(path), model, batch_sizes=(1, 5)))
    meta = read_metadata(path)
    card = json.loads((reference_checkpoint().parent / "card.json").read_text())
    assert meta["regaze_checkpoint"]["sha256"] == file_sha256(reference_checkpoint()) == card["file_sha256"]
    assert meta["regaze_checkpoint"]["trained_checkpoint_sha256"] == card["source_checkpoint"]["sha256"]
    assert meta["regaze_checkpoint"]["reference"] is True and meta["regaze_checkpoint"]["step"] == info["step"]
    assert meta["regaze_framing"]["focal_px"] == pytest.approx(model.framing.focal_px)
    assert meta["regaze_config"]["model"]["decoder_mode"] == "warp"


def _fake_run(tmp_path, mode: str = "warp"):
    """A run directory as training leaves it, as far as load_redirector reads it."""
    model = _model(mode)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", {
        "ema": model.state_dict(), "config": {"model": model.config.to_dict()}, "step": 12,
        "framing": {"focal_px": 180.0, "distance_mm": 600.0}})
    return run


def test_cli_writes_and_checks_the_file(tmp_path, capsys):
    run = _fake_run(tmp_path)
    out = tmp_path / "a" / "r.onnx"
    assert cli_main(["export", "--onnx", str(out), "--run", str(run), "--check", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert out.is_file() and result["path"] == str(out) and result["step"] == 12
    assert result["parity"]["passed"]
    assert read_metadata(out)["regaze_checkpoint"]["sha256"] == file_sha256(run / "checkpoints" / "best.pt")
    assert cli_main(["export", "--onnx", str(out), "--run", str(run)]) == 0
    assert "wrote" in capsys.readouterr().out


def test_cli_refuses_bad_input_with_a_clear_message(tmp_path, capsys):
    not_a_run = tmp_path / "photos"
    not_a_run.mkdir()
    (not_a_run / "face.png").write_bytes(b"x")
    target = tmp_path / "x.onnx"
    assert cli_main(["export", "--onnx", str(target), "--run", str(not_a_run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("regaze export: error:") and "not a regaze run directory" in err and "face.png" in err
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    assert cli_main(["export", "--onnx", str(target), "--run", str(bogus)]) == 1
    assert "not a readable regaze checkpoint" in capsys.readouterr().err
    run = _fake_run(tmp_path)
    assert cli_main(["export", "--onnx", str(bogus / "x.onnx"), "--run", str(run)]) == 1  # under a file
    assert "cannot write" in capsys.readouterr().err
    assert cli_main(["export", "--onnx", str(tmp_path), "--run", str(run)]) == 1  # a directory
    assert "is a directory" in capsys.readouterr().err
    assert cli_main(["export", "--onnx", str(target), "--run", str(run), "--opset", "12"]) == 1
    assert "opset must be" in capsys.readouterr().err
    assert not target.exists()


def test_missing_onnx_packages_are_a_clear_error(tmp_path, monkeypatch, capsys):
    run = _fake_run(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(RegazeError, match=r"regaze\[export\]"):
        onnx_bytes(_model("pure"))
    assert cli_main(["export", "--onnx", str(tmp_path / "x.onnx"), "--run", str(run)]) == 1
    assert "needs the onnx package" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", onnx)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert cli_main(["export", "--onnx", str(tmp_path / "x.onnx"), "--run", str(run), "--check"]) == 1
    assert "needs the onnxruntime package" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()

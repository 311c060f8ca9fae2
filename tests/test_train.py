"""The training loop: runs, resumes exactly (with the run's own config), stops loudly on NaN, refuses
mismatched checkpoints, holds out validation subjects of files without a split, chooses best.pt by the
redirection-inclusive score, and trains identically across 2 gloo processes (DDP), which stop together even
when their clocks disagree and train with a zero loss weight."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from regaze.checkpoint import load_checkpoint
from regaze.cli import main as cli_main
from regaze.config import TrainConfig, build_config, config_from_dict, parse_overrides
from regaze.data.dataset import open_dataset
from regaze.errors import RegazeError
from regaze.model.pretrained import find_checkpoint, load_redirector
from regaze.training.loop import train
from regaze.training.run_config import train_config
from regaze.training.val_split import train_val_split

sys.path.insert(0, str(Path(__file__).parent))
from data_fixtures import write_ethxgaze, write_sted  # noqa: E402
from train_fixtures import TINY_MODEL, write_tiny_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 2, "val_every": 100, "ckpt_every": 3,
        "val_pairs": 4, "threads": 1}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5")


def _cfg(**kw) -> TrainConfig:
    return config_from_dict(TrainConfig, {**TINY, **kw})


def _stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if '"total"' in line]


@pytest.mark.isolated(timeout=120)
def test_resume_replays_the_same_loss_sequence(tiny_data, tmp_path):
    straight = tmp_path / "straight"
    train(_cfg(max_steps=8), data=tiny_data, out=straight, progress=False)
    split = tmp_path / "split"
    train(_cfg(max_steps=4), data=tiny_data, out=split, progress=False)
    train(_cfg(max_steps=8), data=tiny_data, out=split, resume=True, progress=False)
    a, b = _stats(straight), _stats(split)
    assert [r["step"] for r in a] == [2, 4, 6, 8] and [r["step"] for r in b] == [2, 4, 6, 8]
    for ra, rb in zip(a, b):
        for key in ("rec", "label", "ort", "gen", "disc", "total"):
            assert ra[key] == rb[key], (ra["step"], key)
    wa = load_checkpoint(find_checkpoint(straight, which="latest"))["generator"]
    wb = load_checkpoint(find_checkpoint(split, which="latest"))["generator"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.isolated(timeout=120)
def test_new_run_refuses_to_overwrite_and_resume_refuses_other_config(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(_cfg(max_steps=3), data=tiny_data, out=run, progress=False)
    with pytest.raises(RegazeError, match="pass --resume"):
        train(_cfg(max_steps=3), data=tiny_data, out=run, progress=False)
    other = _cfg(max_steps=6, model={**TINY["model"], "k": 16})
    with pytest.raises(RegazeError, match="another configuration"):
        train(other, data=tiny_data, out=run, resume=True, progress=False)
    with pytest.raises(RegazeError, match="no checkpoints"):
        train(_cfg(max_steps=3), data=tiny_data, out=tmp_path / "empty", resume=True, progress=False)


@pytest.mark.isolated(timeout=120)
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_data, tmp_path, monkeypatch):
    import regaze.training.loop as train_module

    calls = {"n": 0}
    real = train_module.losses.reconstruction_loss

    def poisoned(*, output, target, weight=None):
        calls["n"] += 1
        value = real(output=output, target=target, weight=weight)
        return value * float("nan") if calls["n"] > 8 else value  # two calls per step: NaN from step 5

    monkeypatch.setattr(train_module.losses, "reconstruction_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(RegazeError, match="NaN/inf"):
        train(_cfg(max_steps=20), data=tiny_data, out=run, progress=False)
    ckpt = find_checkpoint(run, which="latest")
    state = load_checkpoint(ckpt)
    assert state["step"] == 3  # saved before the NaN; nothing after it
    assert all(torch.isfinite(v).all() for v in state["generator"].values())
    model, info = load_redirector(run, which="latest")
    assert info["step"] == 3


def test_image_size_mismatch_is_a_clear_error(tiny_data, tmp_path):
    with pytest.raises(RegazeError, match=r"images are 32² but model.image_size=64"):
        train(_cfg(model={**TINY["model"], "image_size": 64}), data=tiny_data, out=tmp_path / "r", progress=False)


def test_overrides_parse_nested_values_and_reject_unknown_keys(tmp_path):
    assert parse_overrides(["loss.ort=0", "identity_swap=false", "target=gaze", "model.k=64"]) == {
        "loss": {"ort": 0}, "identity_swap": False, "target": "gaze", "model": {"k": 64}}
    cfg = build_config(config_file=None, overrides=["loss.ort=0", "cross_swap=false"])
    assert cfg.loss.ort == 0.0 and cfg.cross_swap is False
    with pytest.raises(RegazeError, match="unknown field"):
        build_config(config_file=None, overrides=["loss.nope=1"])
    with pytest.raises(RegazeError, match="expected key=value"):
        build_config(config_file=None, overrides=["batch_size"])
    with pytest.raises(RegazeError, match="target must be"):
        build_config(config_file=None, overrides=["target=eyes"])
    with pytest.raises(RegazeError, match="config file not found"):
        build_config(config_file=str(tmp_path / "none.json"), overrides=[])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overrides(*extra: str, image_size: bool = True) -> list[str]:
    """TINY as `key=value` command-line overrides, then `extra`."""
    out = [f"{k}={json.dumps(v)}" for k, v in TINY.items() if k != "model"]
    out += [f"model.{k}={v}" for k, v in TINY["model"].items() if image_size or k != "image_size"]
    return out + list(extra)


def _torchrun_train(data, run, *extra: str) -> dict:
    """`torchrun --nproc_per_node=2 -m regaze.cli train` with TINY and `extra` -> the run's summary.json."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "regaze.cli", "train", "--data", str(data), "--out", str(run), "--no-progress", *_overrides(*extra)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run / "summary.json").read_text())


@pytest.mark.isolated(timeout=600)
@pytest.mark.parametrize("loader", ["in-process", "streamed"])
def test_two_process_gloo_ddp_disjoint_data_and_identical_weights(tiny_data, tmp_path, loader):
    """"streamed": each rank's pairs come from a DataLoader worker reading the file (no cache) through its own handles."""
    extra = ["data.loader_workers=1", "data.cache_mb=0"] if loader == "streamed" else []
    summary = _torchrun_train(tiny_data, tmp_path / "ddp", "max_steps=4", *extra)
    assert summary["step"] == 4
    assert len(summary["rank_anchor_counts"]) == 2 and min(summary["rank_anchor_counts"]) > 0
    assert summary["rank_anchor_overlap"] == 0
    assert summary["rank_trained_anchor_overlap"] == 0 and summary["rank_foreign_anchors"] == [0, 0]
    a, b = summary["rank_param_checksums"]
    assert a == b


@pytest.mark.isolated(timeout=600)
def test_two_process_ddp_trains_with_the_label_loss_off(tiny_data, tmp_path):
    """loss.label=0: no loss reaches the auxiliary estimators; they are frozen, so DDP expects no gradient."""
    summary = _torchrun_train(tiny_data, tmp_path / "ddp", "max_steps=3", "loss.label=0")
    assert summary["step"] == 3
    a, b = summary["rank_param_checksums"]
    assert a == b
    state = load_checkpoint(find_checkpoint(tmp_path / "ddp", which="latest"))
    assert state["config"]["loss"]["label"] == 0.0


# One rank of a 2-process run started by hand (RANK, WORLD_SIZE, MASTER_* in its environment): rank 1's clock
# runs 1000x fast, so by its own clock the time budget is spent after a few milliseconds.
_SKEWED_RANK = """
import json, os, sys, time
import regaze.training.loop as loop
from regaze.config import TrainConfig, config_from_dict
if os.environ["RANK"] == "1":
    t0 = time.monotonic()
    loop.clock = lambda: t0 + 1000.0 * (time.monotonic() - t0)
summary = loop.train(config_from_dict(TrainConfig, json.loads(sys.argv[1])), data=sys.argv[2], out=sys.argv[3],
                     progress=False)
print("RESULT " + json.dumps({"step": summary["step"], "stop_reason": summary["stop_reason"],
                              "checksums": summary["rank_param_checksums"]}))
"""


@pytest.mark.isolated(timeout=300)
def test_two_processes_whose_clocks_disagree_stop_at_the_same_step(tiny_data, tmp_path):
    """...and, under a cosine over the minutes, train at the same rate (rank 0's clock): identical weights."""
    config = {**TINY, "max_steps": 100000, "max_minutes": 0.05, "log_every": 1, "val_every": 4, "ckpt_every": 4,
              "lr_schedule": "cosine"}
    port = _free_port()
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-c", _SKEWED_RANK, json.dumps(config), str(tiny_data),
                                       str(tmp_path / "run")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=200)[0])
    except subprocess.TimeoutExpired:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("the two ranks hung: they disagreed about stopping")
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    results = [json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]) for out in outputs]
    assert results[0] == results[1], results
    assert results[0]["stop_reason"] == "max_minutes=0.05 reached"
    assert 1 < results[0]["step"] < 100000  # rank 0's clock decided, not rank 1's (which was out of time at step 1)
    a, b = results[0]["checksums"]
    assert a == b


# --------------------------------------------------------------------- the config of `regaze train`
@pytest.mark.isolated(timeout=120)
def test_resume_takes_the_runs_own_config_and_the_image_size_comes_from_the_data(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_config(data=tiny_data, out=run, overrides=_overrides(image_size=False)).model.image_size == 32
    assert train_config(data=tiny_data, out=run, overrides=_overrides()).model.image_size == 32
    with pytest.raises(RegazeError, match="holds no config.json"):
        train_config(data=tiny_data, out=run, resume=True)
    base = ["train", "--data", str(tiny_data), "--out", str(run), "--no-progress"]
    assert cli_main([*base, *_overrides("max_steps=3", image_size=False)]) == 0  # no model.image_size given
    assert cli_main([*base, "--resume", "max_steps=5"]) == 0  # nothing repeated but what changes
    state = load_checkpoint(find_checkpoint(run, which="latest"))
    assert state["step"] == 5 and state["config"]["model"] == {**state["config"]["model"], **TINY["model"]}
    assert json.loads((run / "config.json").read_text())["max_steps"] == 5  # the config now in force
    assert cli_main([*base, "--resume", "max_steps=7", "model.k=16"]) != 0  # what contradicts the run is refused
    assert "another configuration" in capsys.readouterr().err


def test_a_data_size_the_model_cannot_take_is_a_clear_error(tmp_path):
    data = write_tiny_dataset(tmp_path / "t40.h5", size=40)
    with pytest.raises(RegazeError, match="images are 40 px.*multiple of 16"):
        train_config(data=data, out=tmp_path / "r")


# ------------------------------------------------------------------ validation subjects and best.pt
def test_files_without_a_split_hold_out_their_highest_subject_ids(tmp_path, tiny_data):
    write_ethxgaze(tmp_path / "x", counts={0: 6, 3: 4, 7: 5, 9: 4})
    xgaze = open_dataset(tmp_path / "x")
    auto = train_val_split(xgaze)
    assert auto.val_subjects == [9] and set(xgaze.subject[auto.val]) == {9}
    assert set(xgaze.subject[auto.train]) == {0, 3, 7} and "highest subject ids" in auto.rule
    assert train_val_split(xgaze, val_subjects=2).val_subjects == [7, 9]
    assert train_val_split(xgaze, val_subjects=0).val is None
    with pytest.raises(RegazeError, match="every subject"):
        train_val_split(xgaze, val_subjects=4)
    write_sted(tmp_path / "s.h5", counts={"p01": 5, "p02": 3, "p10": 4})
    assert train_val_split(open_dataset(tmp_path / "s.h5")).val_subjects == [2]  # p10: the last group
    own = train_val_split(open_dataset(tiny_data))  # a file with a split keeps it
    assert own.val_subjects == [4] and own.rule == "the file's own split"


def test_stop_at_psnr_without_validation_subjects_is_refused(tmp_path):
    write_sted(tmp_path / "s.h5", counts={"p01": 8, "p02": 8}, size=32)
    with pytest.raises(RegazeError, match="needs validation subjects"):
        train(_cfg(stop_at_psnr=30.0, data={"val_subjects": 0}), data=tmp_path / "s.h5", out=tmp_path / "r", progress=False)


@pytest.mark.isolated(timeout=120)
def test_an_sted_file_without_a_split_gets_validation_best_pt_and_grids(tmp_path):
    write_sted(tmp_path / "s.h5", counts={f"p{i:02d}": 8 for i in range(4)}, size=32)
    run = tmp_path / "run"
    summary = train(_cfg(max_steps=2, val_every=2), data=tmp_path / "s.h5", out=run, progress=False)
    assert summary["split"]["val_subjects"] == [3] and summary["split"]["val_images"] == 8
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "grids" / "step_0000002.png").is_file()
    val = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if "val_score" in line]
    assert len(val) == 1 and val[0]["val_score_kind"] == "aux" and val[0]["best_pt"] is True
    assert np.isfinite(val[0]["val_gaze_aux_err_deg"]) and "auxiliary estimators" in summary["best_by"]


@pytest.mark.isolated(timeout=120)
def test_best_pt_follows_the_redirection_score_and_the_stop_follows_psnr(tiny_data, tmp_path, monkeypatch):
    import regaze.training.loop as train_module

    scripted = iter([(30.0, 1.0), (20.0, 3.0), (25.0, 2.0)] * 2)  # (val_psnr_db, val_score) per validation

    def scripted_validate(vs, **kw):
        psnr, score = next(scripted)
        return {"val_psnr_db": psnr, "val_l1": 0.1, "val_score": score, "val_score_kind": "aux"}

    monkeypatch.setattr(train_module, "validate", scripted_validate)
    run = tmp_path / "run"
    summary = train(_cfg(max_steps=6, val_every=2, ckpt_every=100), data=tiny_data, out=run, progress=False)
    assert load_checkpoint(run / "checkpoints" / "best.pt")["step"] == 4  # the best score, not the best PSNR (2)
    assert summary["best_step"] == 4 and summary["best_val_score"] == 3.0 and summary["best_val_psnr_db"] == 30.0
    flags = [json.loads(line)["best_pt"] for line in (run / "stats.jsonl").read_text().splitlines() if "best_pt" in line]
    assert flags == [True, True, False]
    stopped = train(_cfg(max_steps=6, val_every=2, stop_at_psnr=29.0), data=tiny_data, out=tmp_path / "stop", progress=False)
    assert stopped["step"] == 2 and "stop_at_psnr" in stopped["stop_reason"]  # PSNR 30 >= 29, though the score is low


# ------------------------------------------------------------------------------ torch versions, memory
def test_fused_adam_only_where_this_torch_has_it(monkeypatch):
    from regaze.training.loop import fused_adam_available

    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    for version, on_cpu in (("2.3.1", False), ("2.4.0", True), ("2.13.0+cpu", True), ("2.5.0a0+git1234", True)):
        monkeypatch.setattr(torch, "__version__", version)
        assert fused_adam_available(cpu) is on_cpu, version
        assert fused_adam_available(cuda) is True


@pytest.mark.isolated(timeout=120)
def test_out_of_memory_is_a_clear_error(tiny_data, tmp_path, monkeypatch):
    import regaze.training.loop as train_module

    def out_of_memory(**kw):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train_module.losses, "reconstruction_loss", out_of_memory)
    with pytest.raises(RegazeError, match=r"out of memory at batch_size=4: try a smaller batch \(batch_size=2\)"):
        train(_cfg(max_steps=2), data=tiny_data, out=tmp_path / "r", progress=False)


@pytest.mark.isolated(timeout=120)
def test_eye_weighted_training_records_the_data_framing_for_the_model(tiny_data, tmp_path):
    from regaze.model.framing import framing_from_attrs

    run = tmp_path / "eyes"
    stats = train(_cfg(max_steps=3, loss={"rec_eye": 10.0}), data=tiny_data, out=run, progress=False)
    assert stats["step"] == 3 and torch.isfinite(torch.tensor(stats["total"]))
    model, _ = load_redirector(run, which="latest")
    assert model.framing == framing_from_attrs({}, size=32)  # the tiny file names no camera: ETH-XGaze's
    state = load_checkpoint(find_checkpoint(run, which="latest"))
    assert state["framing"] == {"focal_px": model.framing.focal_px, "distance_mm": model.framing.distance_mm}


# ---------------------------------------------------------- the validation score against exact targets
class _Redirecting(torch.nn.Module):
    """A stand-in for the validated model: `images` decides what redirect() returns; encode, framing and config are a
    tiny real Redirector's."""

    def __init__(self, inner, images):
        super().__init__()
        self.inner, self.images, self.framing, self.config = inner, images, inner.framing, inner.config

    def encode(self, x):
        return self.inner.encode(x)

    def redirect(self, x, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        return self.images(x, gaze=gaze, head=head), None


def test_the_validation_score_sees_redirection_against_exact_synthetic_targets(tmp_path, monkeypatch):
    from regaze.config import ModelConfig
    from regaze.data.pairs import PairSampler
    from regaze.data.synth import write_synthetic_dataset
    from regaze.geometry import gaze_in_head
    from regaze.model.redirector import Redirector
    from regaze.training.batches import ImageSource
    from regaze.training.pair_step import PairForward
    from regaze.training.validation import build_validation_set, validate

    path = write_synthetic_dataset(tmp_path / "synth.h5", subjects=6, per_subject=12, size=64, seed=3, workers=1,
                                   progress=False)
    ds = open_dataset(path)
    split = train_val_split(ds)
    assert split.rule == "the file's own split"
    pairs = PairSampler(gaze=ds.gaze, head=ds.head, subject=ds.subject, session=ds.session,
                        indices=split.val, seed=1).sample(8, rng=np.random.default_rng(1))
    vs = build_validation_set(ds, pairs, redirect_pairs=6, estimators_trained=True)
    assert vs.kind == "exact" and vs.exact_gaze.shape == (6, 64, 64, 3)
    a, b = pairs[:6, 0], pairs[:6, 1]
    np.testing.assert_allclose(gaze_in_head(vs.gaze_target, ds.head[a]), gaze_in_head(ds.gaze[b], ds.head[b]),
                               atol=1e-5)  # b's gaze relative to the head, on a's head: in the data's range
    torch.manual_seed(0)
    inner = Redirector(ModelConfig(image_size=64, k=4, channel_max=16, flat_channels=4, estimator_hidden=8)).eval()
    source = ImageSource(ds, split.val, cache_mb=64)
    unit = lambda u8: torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # noqa: E731
    oracle = _Redirecting(inner, lambda x, gaze, head: unit(vs.exact_gaze if gaze is not None else vs.exact_head))
    copier = _Redirecting(inner, lambda x, gaze, head: x)  # redirection does nothing: the autoencoder shortcut
    kw = dict(pair_forward=PairForward(inner), source=source, dataset=ds, device=torch.device("cpu"), batch_size=8)
    good, bad = validate(vs, model=oracle, **kw), validate(vs, model=copier, **kw)
    assert good["val_psnr_db"] == bad["val_psnr_db"]  # reconstruction alone cannot tell them apart ...
    assert good["val_gaze_eye_psnr_db"] == pytest.approx(100.0) and good["val_head_psnr_db"] == pytest.approx(100.0)
    assert bad["val_gaze_eye_psnr_db"] < 60.0 and bad["val_head_psnr_db"] < 60.0
    assert good["val_score"] > bad["val_score"] + 10.0  # ... the score can
    assert good["val_score_kind"] == "exact"

    import regaze.data.synth as synth

    real_render = synth.render
    monkeypatch.setattr(synth, "render", lambda **kw: real_render(**kw) // 2)  # another renderer version
    assert build_validation_set(ds, pairs, redirect_pairs=6, estimators_trained=True).kind == "aux"
    assert build_validation_set(ds, pairs, redirect_pairs=6, estimators_trained=False).kind == "reconstruction"
    assert build_validation_set(ds, pairs, redirect_pairs=0, estimators_trained=True).kind == "reconstruction"


@pytest.mark.isolated(timeout=120)
def test_init_from_starts_from_the_given_models_weights_and_refuses_another_model(tiny_data, tmp_path):
    base = tmp_path / "base"
    train(_cfg(max_steps=3), data=tiny_data, out=base, progress=False)
    start = load_redirector(base, which="latest")[0].state_dict()  # the EMA weights a fine-tuning run starts from
    tuned = tmp_path / "tuned"
    train(_cfg(max_steps=1, init_from=str(base), seed=1, lr_g=0.0), data=tiny_data, out=tuned, progress=False)
    got = load_checkpoint(find_checkpoint(tuned, which="latest"))
    assert got["step"] == 1  # the step count starts fresh
    # lr_g = 0: the generator is exactly the initial weights, so they were loaded (a random init differs)
    assert all(torch.equal(got["generator"][k], start[k]) for k in start)
    fresh = tmp_path / "fresh"
    train(_cfg(max_steps=1, seed=1, lr_g=0.0), data=tiny_data, out=fresh, progress=False)
    other = load_checkpoint(find_checkpoint(fresh, which="latest"))["generator"]
    assert not all(torch.equal(other[k], start[k]) for k in start)
    with pytest.raises(RegazeError, match="another configuration"):
        train(_cfg(max_steps=1, init_from=str(base), model={**TINY["model"], "k": 16}), data=tiny_data,
              out=tmp_path / "bad", progress=False)

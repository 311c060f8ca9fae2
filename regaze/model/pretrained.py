"""A trained Redirector from a run directory or a checkpoint file: `load_redirector(RUN_DIR or FILE.pt)` gives the
EMA generator, in eval mode, for evaluation, augmentation, redirection and export.

Checkpoints are plain dicts (regaze/checkpoint.py, loaded with weights_only=True) that training writes as
RUN_DIR/checkpoints/step_XXXXXXX.pt and best.pt (regaze/training/run_dir.py). The shipped reference model,
REFERENCE_DIR/reference.pt, is a slim checkpoint holding only what load_redirector reads (`export_reference`,
`regaze model export-reference`), and `resolve_run` is the one rule for which model a command uses without --run.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path

import torch

from regaze.checkpoint import check_config_matches, file_sha256, load_checkpoint, save_checkpoint
from regaze.config import ModelConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.model.framing import Framing
from regaze.model.redirector import Redirector

__all__ = ["load_redirector", "initial_weights", "find_checkpoint", "checkpoint_step", "REFERENCE_DIR", "reference_checkpoint",
           "is_reference", "resolve_run", "slim_checkpoint", "export_reference", "check_reference_size"]

STEP_RE = re.compile(r"step_(\d+)\.pt$")

# The reference model shipped with the package: trained on synthetic faces (regaze/reference/synth64/card.json
# records its training command, data seed and measured figures). Users with real photos should train on their data.
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference" / "synth64"
REFERENCE_MAX_BYTES = 25 * 10**6  # the shipped file lives in git and in every wheel
REFERENCE_NOTICE = ("using the shipped reference model (trained on synthetic faces; for real photos train on your "
                    "own data: regaze train ...)")
DEMO_RUN = Path("runs/demo/run")  # `make demo`'s model, relative to the working directory
# Half-precision weights halve the shipped file; kept only when the model's outputs move less than this
# ([-1, 1] image units, max abs over a random batch), else the export stores float32.
HALF_MAX_ABS_DIFF = 2e-3
SLIM_KEYS = ("config", "step", "framing", "split")  # beside "ema": all that load_redirector and a card need


def reference_checkpoint() -> Path | None:
    """The shipped reference checkpoint (REFERENCE_DIR/reference.pt), or None where this install has none."""
    path = REFERENCE_DIR / "reference.pt"
    return path if path.is_file() else None


def is_reference(path: str | os.PathLike) -> bool:
    """Whether the checkpoint file `path` is the shipped reference model."""
    ref = reference_checkpoint()
    return ref is not None and Path(path).resolve() == ref.resolve()


def resolve_run(run: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The model a command uses -> (run directory or checkpoint, a one-line notice for stderr or None).

    `run` when given; else the shipped reference model; else `make demo`'s runs/demo/run in the working
    directory; else a RegazeError that says how to get a model."""
    if run is not None:
        return Path(run), None
    ref = reference_checkpoint()
    if ref is not None:
        return ref, REFERENCE_NOTICE
    if DEMO_RUN.exists():
        return DEMO_RUN, f"using the demo model {DEMO_RUN} (made by `make demo`; --run RUN_DIR picks another)"
    raise RegazeError(f"no model to use: this install ships no reference model ({REFERENCE_DIR / 'reference.pt'}) "
                      f"and there is no {DEMO_RUN} here; train one with `make demo` (synthetic faces) or "
                      f"`regaze train --data FILE --out RUN_DIR`, then pass --run RUN_DIR")


def checkpoint_step(p: Path) -> int:
    """The step in a `step_XXXXXXX.pt` name, -1 for other names."""
    m = STEP_RE.search(p.name)
    return int(m.group(1)) if m else -1


def find_checkpoint(path: str | os.PathLike, *, which: str = "best") -> Path:
    """A checkpoint file itself, or the `best` / `latest` one of a run directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise RegazeError(f"no run directory or checkpoint at {path}")
    ckpt_dir = path / "checkpoints"
    steps = sorted(ckpt_dir.glob("step_*.pt"), key=checkpoint_step)
    if which == "best" and (ckpt_dir / "best.pt").is_file():
        return ckpt_dir / "best.pt"
    if not steps:
        raise RegazeError(f"{path}: no checkpoints in {ckpt_dir} (was training started with --out {path}?)")
    return steps[-1]


def _redirector(state: dict, *, source) -> Redirector:
    """A Redirector (train mode, CPU) with the EMA weights of a loaded checkpoint dict; half-precision weights
    of a slim checkpoint become float32 again."""
    model = Redirector(config_from_dict(ModelConfig, state["config"]["model"]))
    ema = {k: v.float() if v.is_floating_point() else v for k, v in state["ema"].items()}
    try:
        model.load_state_dict(ema)
    except RuntimeError as e:
        raise RegazeError(f"{source}: weights do not fit the model its config describes ({e})") from e
    if "framing" in state:  # the training data's camera (older checkpoints: ETH-XGaze's, the model default)
        model.framing = Framing(**state["framing"])
    return model


def load_redirector(path: str | os.PathLike, *, which: str = "best", device="cpu"):
    """The EMA generator of a run directory (or of one checkpoint file, a training or a slim reference one),
    in eval mode.

    Returns (redirector, info) with info = {"checkpoint": path, "step": int, "config": dict}.
    """
    ckpt = find_checkpoint(path, which=which)
    state = load_checkpoint(ckpt, required_keys=("ema", "config", "step"))
    model = _redirector(state, source=ckpt)
    model.requires_grad_(False).eval().to(device)
    return model, {"checkpoint": str(ckpt), "step": int(state["step"]), "config": state["config"]}


def initial_weights(path: str | os.PathLike, *, model_config: ModelConfig, which: str = "best") -> dict:
    """The EMA generator weights (float32) of a run directory, checkpoint or slim reference file, for a run that
    starts from them (TrainConfig.init_from); a RegazeError when that model's config differs from `model_config`."""
    ckpt = find_checkpoint(path, which=which)
    state = load_checkpoint(ckpt, required_keys=("ema", "config", "step"))
    saved = config_from_dict(ModelConfig, state["config"]["model"]).to_dict()
    check_config_matches(saved={"model": saved}, current={"model": model_config.to_dict()}, keys=("model",),
                         source=f"init_from={os.fspath(path)} ({ckpt})")
    return {k: v.float() if v.is_floating_point() else v for k, v in state["ema"].items()}


# ------------------------------------------------------------------------------------ the slim reference file
def slim_checkpoint(state: dict, *, source_sha256: str, dtype: torch.dtype = torch.float32) -> dict:
    """A training checkpoint dict -> the plain dict load_redirector needs: "ema" (floating tensors as `dtype`),
    "config", "step", "framing" and "split" where present, "weights_dtype", "source_checkpoint_sha256"."""
    ema = {k: (v.to(dtype) if v.is_floating_point() else v).clone() for k, v in state["ema"].items()}
    slim = {"ema": ema, **{k: state[k] for k in SLIM_KEYS if k in state}}
    slim.update(weights_dtype=str(dtype).removeprefix("torch."), source_checkpoint_sha256=source_sha256)
    return slim


@torch.no_grad()
def _max_output_diff(a: Redirector, b: Redirector, *, batch: int = 4, seed: int = 0) -> float:
    """Largest |a - b| over the reconstructions and the gaze-and-head redirections of a random batch."""
    gen = torch.Generator().manual_seed(seed)
    s = a.config.image_size
    x = torch.rand(batch, 3, s, s, generator=gen) * 2 - 1  # (B, 3, S, S) in [-1, 1]
    angles = {k: (torch.rand(batch, 2, generator=gen) - 0.5) * math.radians(60) for k in ("gaze", "head")}  # (B, 2) rad
    a.eval(), b.eval()
    diffs = [(a(x) - b(x)).abs().max()]
    for compose in ("decode", "eyes"):
        kw = dict(gaze=angles["gaze"], head=None if compose == "eyes" else angles["head"], compose=compose)
        diffs.append((a.redirect(x, **kw)[0] - b.redirect(x, **kw)[0]).abs().max())
    return float(max(diffs))


def _serialized_bytes(state: dict) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def check_reference_size(nbytes: int, *, limit: int = REFERENCE_MAX_BYTES, path="reference.pt") -> None:
    """RegazeError when a reference checkpoint of `nbytes` would exceed `limit` bytes (25 MB: it ships)."""
    if nbytes > limit:
        raise RegazeError(f"{path} would be {nbytes / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB limit of the shipped "
                          f"reference model; export a smaller model (fewer channels: model.channel_max, model.k)")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as e:
        raise RegazeError(f"{path}: not readable JSON ({e})") from e


def _training_record(run_dir: Path | None, state: dict, *, data, config_file: Path) -> dict:
    """What the run directory says about its training: config, steps, minutes, why it stopped, data."""
    summary = (_read_json(run_dir / "summary.json") if run_dir else None) or {}
    config = (_read_json(run_dir / "config.json") if run_dir else None) or state["config"]
    elapsed_s = summary.get("elapsed_s")
    stats = run_dir / "stats.jsonl" if run_dir else None
    if elapsed_s is None and stats is not None and stats.is_file():
        for line in stats.read_text().splitlines():  # the last interval that logged the time
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut short by a killed run
                continue
            elapsed_s = rec.get("elapsed_s", elapsed_s)
    if data is None:  # newer runs may record their data file
        data = next((v for v in (summary.get("data_path"), summary.get("data")) if isinstance(v, str)), None)
    run_name = os.fspath(run_dir) if run_dir else "RUN_DIR"
    return {"command": f"regaze train --data {data or 'DATA.h5'} --out {run_name} --config {os.fspath(config_file)}",
            "config": config, "steps": int(summary.get("step", state["step"])),
            "elapsed_minutes": None if elapsed_s is None else round(float(elapsed_s) / 60, 2),
            "stop_reason": summary.get("stop_reason"), "best_step": summary.get("best_step"),
            "best_by": summary.get("best_by"), "data": None if data is None else os.fspath(data),
            "split": state.get("split", summary.get("split"))}


def export_reference(source: str | os.PathLike, *, out_dir: str | os.PathLike, which: str = "best",
                     note: str | None = None, data: str | os.PathLike | None = None, data_seed: int | None = None,
                     dtype: str = "auto", trained_on: str = "synthetic faces (regaze synth)",
                     max_bytes: int = REFERENCE_MAX_BYTES) -> dict:
    """Write OUT_DIR/reference.pt (the slim checkpoint of a run directory's `which` checkpoint, or of a checkpoint
    file), OUT_DIR/card.json (provenance, returned) and OUT_DIR/train_config.json (the run's resolved config).

    dtype: "float32", "float16", or "auto" = float16 when the outputs move less than HALF_MAX_ABS_DIFF, else
    float32. data / data_seed / trained_on: the training data file, its seed and what it holds, for the card (the
    run directory does not record them).
    Nothing is written when the file would exceed `max_bytes`.
    """
    source = Path(source)
    if source.is_dir() and not (source / "checkpoints").is_dir():
        found = sorted(p.name for p in source.iterdir())[:8]
        raise RegazeError(f"{source}: not a training run directory (expected config.json and checkpoints/ written by "
                          f"`regaze train --out {source}`); found {found or 'nothing'}")
    if dtype not in ("auto", "float32", "float16"):
        raise RegazeError(f"dtype must be auto, float32 or float16; got {dtype!r}")
    ckpt = find_checkpoint(source, which=which)
    state = load_checkpoint(ckpt, required_keys=("ema", "config", "step"))
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else (source if source.is_dir() else None)
    sha = file_sha256(ckpt)
    full = _redirector(state, source=ckpt)
    slim, diff = None, None
    for candidate in (("float16", "float32") if dtype == "auto" else (dtype,)):
        slim = slim_checkpoint(state, source_sha256=sha, dtype=getattr(torch, candidate))
        diff = _max_output_diff(full, _redirector(slim, source=ckpt))
        if diff < HALF_MAX_ABS_DIFF:
            break
    out_dir = Path(out_dir)
    path = out_dir / "reference.pt"
    check_reference_size(_serialized_bytes(slim), limit=max_bytes, path=path)
    save_checkpoint(path, slim)
    path.chmod(0o644)  # a package file: readable by everyone who installs it (the temp file was 0600)
    training = _training_record(run_dir, state, data=data, config_file=out_dir / "train_config.json")
    card = {"model": "regaze Redirector (EMA generator)", "file": path.name, "file_bytes": path.stat().st_size,
            "file_sha256": file_sha256(path), "weights_dtype": slim["weights_dtype"],
            "max_abs_output_diff_vs_source": diff, "trained_on": trained_on,
            "image_size": int(state["config"]["model"]["image_size"]),
            "source_checkpoint": {"path": os.fspath(ckpt), "sha256": sha, "bytes": ckpt.stat().st_size,
                                  "step": int(state["step"])},
            "training": training, "data_seed": data_seed, "note": note, "metrics": {}}
    for name, obj in (("train_config.json", training["config"]), ("card.json", card)):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
        os.replace(tmp, out_dir / name)
    return card

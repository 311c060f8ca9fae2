"""The downstream experiment (DESIGN §4): does augmentation with redirected samples make a gaze estimator
better on people it has never seen?

Two arms, each trained over several seeds with the same network, schedule and number of optimizer steps
(equal compute; the step budget is `epochs` passes over the larger, augmented arm):
  (a) restricted   a few training subjects (`n_subjects`), only images with a narrow gaze and head range
                   (angular distance from frontal at most `gaze_max_deg` / `head_max_deg`; by default the
                   `range_quantile` quantile of the training split's distances, so "narrow" adapts to the data)
  (b) augmented    (a) plus `per_source` redirected samples per restricted image, each redirected to a
                   (gaze, head) pair drawn from the labels of the whole training split (the full range),
                   labelled with those target angles; or the samples of an augmented file made from (a)
Both are tested on every image of the held-out subjects (test split, else val) over the full range.
Reported: gaze and head errors per seed, mean ± std over seeds, and the paired improvement (a) - (b).

Caveat, recorded in the output: a redirector trained on the full training split has seen the full range and
all training subjects; its samples then carry information beyond (a). That is the realistic use (a model
trained elsewhere augments a small dataset), but for a clean ablation train the redirector on (a) alone
(`--write-restricted FILE` writes (a) as a regaze file). "baseline:oracle" as the model (synthetic data)
renders exact samples: the upper bound of what redirection can add.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from regaze.errors import RegazeError
from regaze.evaluation.estimator.network import EstimatorConfig, to_model_input
from regaze.evaluation.estimator.trainer import (EstimatorTrainConfig, ImageBank, LabelledImages, train_estimator,
                                                  validate_estimator)
from regaze.evaluation.baselines import to_u8
from regaze.evaluation.eval_pairs import held_out_indices
from regaze.evaluation.report import write_json_atomic, write_text_atomic
from regaze.geometry import angular_error_deg

__all__ = ["DownstreamConfig", "restricted_indices", "generate_samples", "downstream_experiment",
           "write_restricted"]


@dataclass(frozen=True)
class DownstreamConfig:
    n_subjects: int = 10  # training subjects in the restricted set
    range_quantile: float = 0.5  # default narrow range: this quantile of the angular distance from frontal
    gaze_max_deg: float = 0.0  # 0 = from range_quantile
    head_max_deg: float = 0.0  # 0 = from range_quantile
    per_source: int = 2  # redirected samples per restricted image
    seeds: tuple[int, ...] = (0, 1, 2)
    subset_seed: int = 0  # which subjects form the restricted set (fixed across seeds)
    max_eval_images: int = 5000  # held-out images tested (a seeded subset when there are more)
    redirect_batch: int = 32
    estimator: EstimatorConfig = EstimatorConfig()
    train: EstimatorTrainConfig = EstimatorTrainConfig(epochs=30, identity_weight=0.0)


def _distance_from_frontal_deg(angles: np.ndarray) -> np.ndarray:
    return angular_error_deg(np.asarray(angles, np.float64), np.zeros((len(angles), 2)))


def restricted_indices(dataset, *, train_idx: np.ndarray, cfg: DownstreamConfig) -> tuple[np.ndarray, dict]:
    """The restricted set (a) -> (sorted indices, {"subjects", "gaze_max_deg", "head_max_deg"})."""
    gaze_d = _distance_from_frontal_deg(dataset.gaze[train_idx])
    head_d = _distance_from_frontal_deg(dataset.head[train_idx])
    gaze_max = cfg.gaze_max_deg or float(np.quantile(gaze_d, cfg.range_quantile))
    head_max = cfg.head_max_deg or float(np.quantile(head_d, cfg.range_quantile))
    subjects = np.unique(dataset.subject[train_idx])
    if cfg.n_subjects > len(subjects):
        raise RegazeError(f"restricted set: {cfg.n_subjects} subjects asked for, the training split has {len(subjects)}")
    chosen = np.sort(np.random.default_rng(cfg.subset_seed).choice(subjects, size=cfg.n_subjects, replace=False))
    keep = np.isin(dataset.subject[train_idx], chosen) & (gaze_d <= gaze_max) & (head_d <= head_max)
    idx = np.sort(train_idx[keep])
    if len(idx) < 2:
        raise RegazeError(f"restricted set is empty: {cfg.n_subjects} subjects with gaze <= {gaze_max:.1f}° and head "
                          f"<= {head_max:.1f}° from frontal leave {len(idx)} images; widen the range or add subjects")
    return idx, {"subjects": [int(s) for s in chosen], "gaze_max_deg": gaze_max, "head_max_deg": head_max,
                 "n_images": int(len(idx))}


@torch.no_grad()
def generate_samples(model, *, dataset, source_idx: np.ndarray, target_pool_idx: np.ndarray, per_source: int,
                     seed: int, batch_size: int = 32, device="cpu", progress: bool = True) -> LabelledImages:
    """`per_source` redirected copies of every source image, each to the (gaze, head) labels of a random
    image of `target_pool_idx`, labelled with those targets -> in-memory LabelledImages."""
    from tqdm import tqdm

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x61756700]))
    src = np.repeat(np.asarray(source_idx, np.int64), per_source)  # (n,)
    tgt = target_pool_idx[rng.integers(len(target_pool_idx), size=len(src))]
    gaze, head = dataset.gaze[tgt].astype(np.float32), dataset.head[tgt].astype(np.float32)
    images = np.empty((len(src), dataset.size, dataset.size, 3), np.uint8)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)  # noqa: E731
    for start in tqdm(range(0, len(src), batch_size), desc="redirect", unit="batch", disable=not progress, file=sys.stderr):
        sl = slice(start, start + batch_size)
        x = to_model_input(dataset.read_images(src[sl])).to(device)  # (b, 3, S, S)
        out = model.redirect(x, gaze=t(gaze[sl]), head=t(head[sl]), source_gaze=t(dataset.gaze[src[sl]]),
                             source_head=t(dataset.head[src[sl]]))
        images[sl] = to_u8(out[0] if isinstance(out, tuple) else out)
    return LabelledImages(images=ImageBank([images]), gaze=gaze, head=head, subject=dataset.subject[src])


def write_restricted(dataset, indices: np.ndarray, path) -> Path:
    """Write the restricted set as a regaze file (with `source_index` into the original file)."""
    from regaze.data.writer import write_regaze

    extra = {k: dataset.read_array(k, indices) for k in ("synth_identity", "synth_session") if k in dataset.array_keys}
    subjects = np.unique(dataset.subject[indices])
    return write_regaze(path, images=dataset.read_images(indices), gaze=dataset.gaze[indices],
                        head=dataset.head[indices], subject=dataset.subject[indices],
                        session=None if dataset.session is None else dataset.session[indices],
                        attrs={"split": "train", "subjects_train": subjects}, source_index=indices, **extra)


def _mean_std(values: list[float]) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v)),
            "values": [float(x) for x in v]}


def downstream_experiment(*, data, augmented=None, run=None, out=None, config: DownstreamConfig | None = None,
                          which: str = "best", device="cpu", renderer=None, progress: bool = True, log=None) -> dict:
    """Run both arms over `config.seeds` (see the module docstring) -> result dict; with `out`, also write
    OUT/downstream.json and OUT/downstream.md. Give exactly one of `augmented` (a regaze file of samples
    generated from the restricted set) or `run` (a run directory, checkpoint, baseline name or model object;
    samples are generated here with its `redirect`, anew for every seed). `renderer` is for "baseline:oracle"."""
    from regaze.data.dataset import open_dataset

    cfg = config or DownstreamConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if (augmented is None) == (run is None):
        raise RegazeError("downstream: give exactly one of an augmented file (--augmented) or a model (--run)")
    dataset = open_dataset(data)
    if not dataset.has_gaze_labels:
        raise RegazeError(f"{data}: has no gaze labels; the downstream experiment needs labelled data")
    try:
        train_idx = dataset.split_indices("train")
    except RegazeError as e:
        raise RegazeError(f"{data}: the downstream experiment needs a train split and held-out subjects ({e})") from e
    restricted, restricted_info = restricted_indices(dataset, train_idx=train_idx, cfg=cfg)
    eval_idx, eval_split = held_out_indices(dataset, split="auto")
    if len(eval_idx) > cfg.max_eval_images:
        eval_idx = np.sort(np.random.default_rng(cfg.subset_seed).choice(eval_idx, cfg.max_eval_images, replace=False))
    test = LabelledImages.from_dataset(dataset, eval_idx, cache_mb=cfg.train.cache_mb)
    base = LabelledImages.from_dataset(dataset, restricted, cache_mb=cfg.train.cache_mb)
    notes = ["the redirector's own training data decide how much (b) can know beyond (a); see the module "
             "docstring of regaze/evaluation/downstream.py"]

    model, source_info, fixed_samples = None, {}, None
    if augmented is not None:
        aug_ds = open_dataset(augmented)
        if aug_ds.size != dataset.size or not aug_ds.has_gaze_labels:
            raise RegazeError(f"{augmented}: augmented samples must be labelled {dataset.size}² images; found "
                              f"{aug_ds.size}², gaze labels {'present' if aug_ds.has_gaze_labels else 'absent'}")
        rows = np.arange(len(aug_ds))
        if "sample_k" in aug_ds.array_keys:  # `regaze augment --include-source` copies: (a) has them already
            rows = rows[aug_ds.read_array("sample_k") >= 0]
        if len(rows) == 0:
            raise RegazeError(f"{augmented}: holds no generated samples")
        fixed_samples = LabelledImages.from_dataset(aug_ds, rows, cache_mb=cfg.train.cache_mb)
        source_info = {"augmented": str(augmented), "n_samples": int(len(rows))}
        notes.append("augmented file: its samples are taken as made from the restricted set (e.g. `regaze "
                     "augment` on the --write-restricted file); this is not checked")
    else:
        from regaze.evaluation.protocol import load_model

        model, source_info = load_model(run, dataset=dataset, held_out=restricted, which=which, device=device,
                                        renderer=renderer)
    n_aug = len(fixed_samples) if fixed_samples is not None else len(restricted) * cfg.per_source
    steps = cfg.train.steps or cfg.train.epochs * -(-(len(restricted) + n_aug) // cfg.train.batch_size)
    log(f"downstream: restricted set {len(restricted)} images ({restricted_info['subjects']}, gaze <= "
        f"{restricted_info['gaze_max_deg']:.1f}°, head <= {restricted_info['head_max_deg']:.1f}°), {n_aug} added "
        f"samples, {steps} steps per estimator, test on {len(eval_idx)} {eval_split} images")

    per_seed = []
    t_start = time.time()
    for seed in cfg.seeds:
        samples = fixed_samples
        if samples is None:
            samples = generate_samples(model, dataset=dataset, source_idx=restricted, target_pool_idx=train_idx,
                                       per_source=cfg.per_source, seed=seed, batch_size=cfg.redirect_batch,
                                       device=device, progress=progress)
        row = {"seed": int(seed)}
        for arm, train_set in (("restricted", base), ("augmented", LabelledImages.concat([base, samples]))):
            tc = replace(cfg.train, seed=int(seed), steps=steps)
            est, _ = train_estimator(train=train_set, val=None, config=cfg.estimator, train_config=tc, device=device,
                                     progress=progress, log=lambda msg: None)
            row[arm] = validate_estimator(est, test, device=device)
            log(f"downstream seed {seed} {arm}: gaze {row[arm]['gaze_err_deg']:.2f}°, head {row[arm]['head_err_deg']:.2f}°")
        per_seed.append(row)

    summary = {arm: {k: _mean_std([r[arm][k] for r in per_seed]) for k in ("gaze_err_deg", "head_err_deg")}
               for arm in ("restricted", "augmented")}
    for k in ("gaze_err_deg", "head_err_deg"):
        summary[f"improvement_{k}"] = _mean_std([r["restricted"][k] - r["augmented"][k] for r in per_seed])
    result = {"data": str(data), "source": source_info, "config": asdict(cfg), "restricted": restricted_info,
              "n_added_samples": int(n_aug), "steps_per_estimator": int(steps),
              "test": {"split": eval_split, "n_images": int(len(eval_idx)),
                       "n_subjects": int(len(np.unique(dataset.subject[eval_idx])))},
              "per_seed": per_seed, "summary": summary, "notes": notes,
              "time_s": round(time.time() - t_start, 1)}
    if out is not None:
        write_json_atomic(Path(out) / "downstream.json", result)
        write_text_atomic(Path(out) / "downstream.md", render_downstream_markdown(result))
        log(f"wrote {Path(out) / 'downstream.json'} and {Path(out) / 'downstream.md'}")
    return result


def render_downstream_markdown(result: dict) -> str:
    s, r = result["summary"], result["restricted"]
    f = lambda d: f"{d['mean']:.2f} ± {d['std']:.2f}"  # noqa: E731
    lines = ["# Downstream: estimator trained without / with redirected samples", "",
             f"- data: `{result['data']}`; samples from: `{result['source'].get('name') or result['source'].get('augmented')}`",
             f"- (a) restricted: {r['n_images']} images of {len(r['subjects'])} subjects, gaze <= {r['gaze_max_deg']:.1f}°, "
             f"head <= {r['head_max_deg']:.1f}° from frontal; (b) adds {result['n_added_samples']} redirected samples "
             f"over the full range",
             f"- test: {result['test']['n_images']} images of {result['test']['n_subjects']} held-out subjects "
             f"(`{result['test']['split']}`), full range; {result['steps_per_estimator']} steps per estimator; "
             f"seeds {[p['seed'] for p in result['per_seed']]}", "",
             "| training set | gaze error (°) | head error (°) |", "|---|---|---|",
             f"| (a) restricted | {f(s['restricted']['gaze_err_deg'])} | {f(s['restricted']['head_err_deg'])} |",
             f"| (b) restricted + redirected | {f(s['augmented']['gaze_err_deg'])} | {f(s['augmented']['head_err_deg'])} |",
             f"| improvement (a) - (b), paired by seed | {f(s['improvement_gaze_err_deg'])} | {f(s['improvement_head_err_deg'])} |",
             "", "Mean ± standard deviation over seeds.", ""]
    lines += [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"

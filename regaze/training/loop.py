"""The training loop (patent claims 5–8), top to bottom.

    train(cfg, data=FILE, out=RUN_DIR, resume=False)     # `regaze train` (regaze/commands/train.py) calls this
    torchrun --nproc_per_node=N -m regaze.cli train --data FILE --out RUN_DIR ...

One step: take the step's same-person pairs (made ahead, in this process or in DataLoader workers:
pair_stream.py), choose the target feature per sample (claim 4), rotate and swap across the pair
(claims 5–6, `PairForward`), then
    D step:  λ1 L_disc on real images vs reconstructions made under no_grad
    G step:  λ2 L_gen + λ3 L_R + λ4 L_PL + λ5 L_ort, with D frozen
    EMA:     an exponential moving average of the generator, used for validation and export
    upkeep:  stats, validation (validation.py: reconstruction PSNR, the [0041]/[0055] stop criterion, and
             the redirection-inclusive score that chooses best.pt), image grids, atomic checkpoints

Every random draw of a step is seeded by (seed, rank, step), so a resumed run replays exactly the same
pairs and targets: on the CPU, resuming gives the same loss sequence as an uninterrupted run.

Several processes: every decision that changes what the processes do next (the time budget, validation's
results: best.pt and stop_at_psnr) is rank 0's, handed to the others (dist.broadcast_object) at log and
validation steps; the NaN check is an all-reduce. So the ranks always stop at the same step. The clock is
`clock` below: tests replace it in one process to check that a disagreeing clock changes nothing.
"""
from __future__ import annotations

import copy
import math
import os
import sys
import time
from dataclasses import asdict

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from regaze import dist
from regaze.config import TrainConfig
from regaze.data.dataset import open_dataset
from regaze.data.pairs import PairSampler
from regaze.errors import RegazeError
from regaze.model.discriminator import Discriminator
from regaze.model.framing import eye_weight_map, framing_from_attrs
from regaze.model.pretrained import initial_weights
from regaze.model.redirector import Redirector
from regaze.model.separation import CrossAttributeSeparation
from regaze.training import losses
from regaze.training.batches import ImageSource
from regaze.training.lr_schedule import budget_progress, lr_factor
from regaze.training.pair_step import PairForward, generator_terms
from regaze.training.pair_stream import StepBatches, StepBatchMaker, on_device, step_torch_generator
from regaze.training.run_dir import RunDir, write_image_grid
from regaze.training.val_split import train_val_split
from regaze.training.validation import build_validation_set, describe_score, validate

__all__ = ["train", "clock"]

clock = time.monotonic  # seconds; the loop's only clock (max_minutes, pairs/s), replaceable by tests


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def fused_adam_available(device: torch.device) -> bool:
    """Does this torch have the fused Adam kernel (one kernel per step for all parameters) for `device`?
    CUDA has had it since torch 1.13, the CPU since 2.4; elsewhere the plain loop runs."""
    major, minor = (int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
    return device.type == "cuda" or (device.type == "cpu" and (major, minor) >= (2, 4))


# ------------------------------------------------------------------------------------------ the loop
def train(cfg: TrainConfig, *, data: str | os.PathLike, out: str | os.PathLike, resume: bool = False, progress: bool = True,
          guide: torch.nn.Module | None = None) -> dict:
    """Train a redirector on `data`, writing the run directory `out`. Returns the final stats.

    guide: the frozen training-time estimator of loss.guide / loss.guide_random (images (N, 3, S, S) in [-1, 1]
    -> {"gaze", "head": (N, 2) rad}), loaded by the caller from cfg.guide_estimator (`regaze train` does)."""
    if (cfg.loss.guide or cfg.loss.guide_random) and guide is None:
        raise RegazeError(f"loss.guide / loss.guide_random need the training-time estimator {cfg.guide_estimator!r} "
                          "passed as train(..., guide=...); `regaze train` loads it")
    info = dist.init(device=cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = info.device
    torch.manual_seed(cfg.seed * info.world_size + info.rank)
    run = RunDir(out, create=info.is_main)
    # precision in one place: bf16 autocast (cfg.amp; on CUDA by default), float32 angles and losses
    amp = torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                         enabled=cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda"))

    # ---- data: training subjects for pairs, validation subjects for the stop criterion and best.pt
    dataset = open_dataset(data)
    if not dataset.has_gaze_labels:
        raise RegazeError(f"{data}: has no gaze labels; training needs gaze and head labels")
    if dataset.size != cfg.model.image_size:
        raise RegazeError(f"{data}: images are {dataset.size}² but model.image_size={cfg.model.image_size}; set model.image_size={dataset.size} or convert the data with `regaze data convert --size`")
    split = train_val_split(dataset, val_subjects=cfg.data.val_subjects)
    if split.val is None and cfg.stop_at_psnr:
        raise RegazeError(f"stop_at_psnr={cfg.stop_at_psnr} needs validation subjects, and {data} has none "
                          f"({split.rule}); set data.val_subjects or drop stop_at_psnr")
    sampler_kw = dict(gaze=dataset.gaze, head=dataset.head, subject=dataset.subject, session=dataset.session,
                      min_gaze_deg=cfg.data.min_gaze_deg, min_head_deg=cfg.data.min_head_deg)
    sampler = PairSampler(**sampler_kw, indices=split.train, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    has_val, val_set = split.val is not None, None
    if has_val and info.is_main:  # validation runs on rank 0 only
        val_sampler = PairSampler(**sampler_kw, indices=split.val, seed=cfg.seed + 1)
        val_pairs = val_sampler.sample(cfg.val_pairs, rng=np.random.default_rng(cfg.seed + 1))  # (P, 2)
        val_set = build_validation_set(dataset, val_pairs, redirect_pairs=cfg.val_redirect_pairs,
                                       estimators_trained=bool(cfg.loss.label))
    source = ImageSource(dataset, np.concatenate([split.train, split.val if has_val else []]).astype(np.int64), cache_mb=cfg.data.cache_mb)
    if info.is_main:
        print(f"data: {len(split.train)} training images, pairs by {sampler.rule} "
              f"({sampler.skipped_groups} single-image groups skipped); validation: "
              + (f"{len(split.val)} images of subjects {_some(split.val_subjects)} ({split.rule}); best.pt by "
                 f"val_score, kind {val_set.kind!r} (regaze/training/validation.py)" if has_val else f"none ({split.rule})"),
              file=sys.stderr)

    # ---- models and optimisers (models own neither)
    generator = Redirector(cfg.model).to(device)
    framing = framing_from_attrs(dataset.attrs, size=dataset.size)  # where the eyes are: loss.rec_eye, compose="eyes"
    generator.framing = framing
    discriminator = Discriminator(**cfg.model.discriminator_kwargs()).to(device)
    if cfg.channels_last:  # the images already arrive channels-last in memory (pair_stream.on_device)
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    if not cfg.loss.label:  # no loss reaches the auxiliary estimators: frozen, or DDP waits for their gradients
        generator.decomposition.gaze_estimator.requires_grad_(False)
        generator.decomposition.head_estimator.requires_grad_(False)
    if cfg.init_from and not resume:  # fine-tuning: both start from the given model's EMA weights
        init = initial_weights(cfg.init_from, model_config=cfg.model)
        generator.load_state_dict(init)
        if info.is_main:
            print(f"starting from the weights of {cfg.init_from} (init_from; fresh optimisers and step count)", file=sys.stderr)
    ema = copy.deepcopy(generator).requires_grad_(False).eval()
    if guide is not None:  # frozen: gradients pass through it to the images, none reach its weights
        guide = guide.to(device).requires_grad_(False).eval()
    # fused where available: the 128² model step went from 33.5 to 36.6 pairs/s on the 2-core CPU
    # (benchmarks/results/model_speed.json)
    fused = fused_adam_available(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), fused=fused)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), fused=fused)
    step, best_score, best_psnr, best_step = 0, -math.inf, -math.inf, None
    trained_before_s = 0.0  # the loop's clock seconds of earlier invocations (--resume): the lr schedule's budget
    best_by = "no validation yet: no best.pt" if has_val else f"no validation subjects ({split.rule}): no best.pt"
    if resume:
        state = run.load_latest(config=cfg)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        ema.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step, best_psnr = state["step"], state.get("best_psnr_db", -math.inf)
        trained_before_s = float(state.get("trained_s", 0.0))
        best_score = state.get("best_val_score", -math.inf)  # absent in checkpoints chosen by PSNR alone
        best_step, best_by = state.get("best_step"), state.get("best_by", best_by)
        if info.is_main:
            run.write_json("config.json", cfg.to_dict())  # the config in force from here (load_latest checked it)
    elif info.is_main:
        run.start(config=cfg)
    saved_at = step  # the step of the newest checkpoint

    # The modules a step calls. Several processes: the generator and the discriminator are wrapped in DDP
    # separately, and the calls that no gradient leaves (the D step's fakes, D frozen in the G step) bypass DDP.
    pair_forward = PairForward(generator, cross_swap=cfg.cross_swap, identity_swap=cfg.identity_swap, latent=bool(cfg.loss.latent))
    ema_forward = PairForward(ema, cross_swap=cfg.cross_swap, identity_swap=cfg.identity_swap)
    compiled = torch.compile if cfg.compile else (lambda module: module)
    ddp = lambda module: DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)  # noqa: E731
    pf_train = compiled(ddp(pair_forward) if info.world_size > 1 else pair_forward)
    pf_fakes = pf_train if info.world_size == 1 else compiled(pair_forward)
    d_train = compiled(ddp(discriminator) if info.world_size > 1 else discriminator)
    d_frozen = d_train if info.world_size == 1 else compiled(discriminator)
    weights = asdict(cfg.loss)

    # ---- the pair stream: step s's pairs depend on (seed, rank, s) only, so --resume replays them
    maker = StepBatchMaker(source=source, sampler=sampler, seed=cfg.seed, rank=info.rank, batch_size=cfg.batch_size,
                           random_pool=split.train if weights["guide_random"] else None)
    stream = StepBatches(maker, start_step=step, stop_step=cfg.max_steps, workers=cfg.data.loader_workers,
                         prefetch=cfg.data.prefetch, pin_memory=device.type == "cuda")
    # the multi-process tests' evidence: anchors this rank trained on (the first 4096) and those outside its shard
    trained_anchors, foreign_anchors = set(), 0

    def check_finite() -> None:
        if float(dist.all_reduce_mean(nonfinite)) > 0:
            raise RegazeError(f"loss became NaN/inf at or before step {step}; stopping. The last good checkpoint is kept in "
                              f"{run.ckpt_dir}. Try lower learning rates (lr_g, lr_d) or a smaller loss.gen.")

    def save(tag_best: bool = False, val: dict | None = None) -> None:
        nonlocal saved_at
        check_finite()  # never write weights that a NaN step has touched
        if info.is_main:
            state = {
                "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
                "ema": ema.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "config": cfg.to_dict(), "step": step, "best_psnr_db": best_psnr, "best_val_score": best_score,
                "best_step": best_step, "best_by": best_by, "val": val or {}, "framing": asdict(framing), "split": split.record(),
                "trained_s": trained_before_s + elapsed_s,
            }
            run.save_checkpoint(state, step=step, best=tag_best, keep_last=cfg.keep_last)
        saved_at = step
        dist.barrier()

    t_start = t_log = clock()
    elapsed_s = 0.0  # rank 0's clock - t_start, shared at log and validation steps, so every rank sets the same lr

    def set_lr() -> None:
        f = lr_factor(schedule=cfg.lr_schedule, final=cfg.lr_final, progress=budget_progress(
            step=step, max_steps=cfg.max_steps, trained_s=trained_before_s + elapsed_s, max_minutes=cfg.max_minutes))
        for opt, base in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * f

    pairs_since_log = 0
    sums, nonfinite = {}, torch.zeros((), device=device)
    last = {}
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        # With a time budget the step count says little about the end: show minutes left instead of an ETA.
        bar = tqdm(total=None if cfg.max_minutes else cfg.max_steps, initial=step, desc="train", unit="step",
                   dynamic_ncols=True, file=sys.stderr)
    stop_reason = "max_steps"
    try:
        while step < cfg.max_steps:
            set_lr()  # from this step and the clock of the last log step
            host = stream.next(step)
            if info.world_size > 1:
                anchors = host["pairs"][:, 0]  # (B,)
                pos = np.minimum(np.searchsorted(sampler.anchors, anchors), len(sampler.anchors) - 1)  # anchors are sorted
                foreign_anchors += int((sampler.anchors[pos] != anchors).sum())
                if len(trained_anchors) < 4096:
                    trained_anchors.update(anchors.tolist())
            # random_targets: loss.guide_random's angles of random training images for X_a, or None
            batch, random_targets = on_device(host, device=device)
            tgen = step_torch_generator(cfg.seed, info.rank, step)
            gaze_sel, head_sel = CrossAttributeSeparation.choose_target(cfg.batch_size, mode=cfg.target, generator=tgen)
            sel = {"gaze_sel": gaze_sel.to(device), "head_sel": head_sel.to(device)}
            use_gan = bool(weights["disc"] and weights["gen"]) and step >= cfg.gan_start_step

            # -- D step: real vs reconstructions made without gradients to the generator
            if use_gan:
                with torch.no_grad(), amp:
                    fakes = pf_fakes(**batch, **sel)
                discriminator.requires_grad_(True)
                real = torch.cat([batch["x_a"], batch["x_b"]])
                fake = torch.cat([fakes["out_a"], fakes["out_b"]]).detach()
                with amp:
                    logits = d_train(torch.cat([real, fake]))  # one pass: (4B, ...) logits
                real_logits, fake_logits = logits.float().chunk(2)
                d_loss = weights["disc"] * losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                sums["disc"] = sums.get("disc", 0.0) + d_loss.detach()

            # -- G step: D frozen; gradients flow through it to the generator only
            discriminator.requires_grad_(False)
            rand = {} if random_targets is None else {"random_gaze": random_targets["gaze"], "random_head": random_targets["head"]}
            with amp:
                out = pf_train(**batch, **sel, **rand)
                fake_logits = None
                if use_gan:
                    fake_logits = d_frozen(torch.cat([out["out_a"], out["out_b"]]))
            rec_weights = None
            if weights["rec_eye"] != 1.0:
                rec_weights = {k: eye_weight_map(batch[f"head_{k}"], size=dataset.size, framing=framing, weight=weights["rec_eye"])
                               for k in ("a", "b")}  # (B, 1, S, S) each
            terms = generator_terms(out, batch, fake_logits=None if fake_logits is None else fake_logits.float(),
                                    rec_weights=rec_weights, guide=guide if (weights["guide"] or weights["guide_random"]) else None,
                                    random_targets=random_targets, edge=bool(weights["edge"]))
            total, logs = losses.generator_total(terms=terms, weights=weights)
            opt_g.zero_grad(set_to_none=True)
            total.backward()
            opt_g.step()
            nonfinite += (~torch.isfinite(total)).float()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v

            # -- EMA of the generator
            if cfg.ema_decay:
                _ema_update(ema, generator, cfg.ema_decay if step >= 100 else 0.0)
            else:
                ema.load_state_dict(generator.state_dict())
            step += 1
            pairs_since_log += cfg.batch_size * info.world_size
            if bar is not None:
                bar.update(1)

            # -- upkeep: the only host syncs are here; the decisions are rank 0's
            at_log = step % cfg.log_every == 0 or step == cfg.max_steps
            at_val = has_val and (step % cfg.val_every == 0 or step == cfg.max_steps)
            if at_log:
                check_finite()
                n_steps = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
                now = clock()
                last = {k: float(dist.all_reduce_mean(v)) / n_steps for k, v in sums.items()}
                last.update(step=step, pairs_per_s=pairs_since_log / max(now - t_log, 1e-9), elapsed_s=now - t_start,
                            lr_g=opt_g.param_groups[0]["lr"])
                with torch.no_grad():
                    fa = out["feats_a"]
                    last.update(norm_id=float(fa.z_id.float().norm(dim=-1).mean()), norm_gaze=float(fa.z_gaze.float().norm(dim=-1).mean()),
                                norm_head=float(fa.z_head.float().norm(dim=-1).mean()))
                sums, t_log, pairs_since_log = {}, now, 0
                if info.is_main:
                    run.log(last)
                    if bar is not None:
                        left = {"min_left": f"{cfg.max_minutes - last['elapsed_s'] / 60:.1f}"} if cfg.max_minutes else {}
                        bar.set_postfix(pairs_s=f"{last['pairs_per_s']:.0f}", rec=f"{last['rec']:.3f}", label=f"{last['label']:.3f}", **left)
            timed_out = False
            if at_log or at_val:
                elapsed_s = dist.broadcast_object(clock() - t_start)
                timed_out = bool(cfg.max_minutes) and elapsed_s > cfg.max_minutes * 60
            if has_val and (at_val or timed_out):
                val = None
                if info.is_main:
                    val = validate(val_set, model=ema, pair_forward=ema_forward, source=source, dataset=dataset,
                                   device=device, batch_size=cfg.batch_size)
                val = dist.broadcast_object(val)
                improved = val["val_score"] > best_score  # best.pt: the redirection-inclusive score, not PSNR
                best_score, best_psnr = max(best_score, val["val_score"]), max(best_psnr, val["val_psnr_db"])
                best_step, best_by = (step if improved else best_step), describe_score(val["val_score_kind"])
                if info.is_main:
                    run.log({"step": step, **val, "best_pt": improved})
                    write_image_grid(run, ema, source, dataset, val_set.pairs[:4, 0], step=step)
                save(tag_best=improved, val=val)
                if cfg.stop_at_psnr and val["val_psnr_db"] >= cfg.stop_at_psnr:
                    stop_reason = f"validation PSNR {val['val_psnr_db']:.2f} dB reached stop_at_psnr={cfg.stop_at_psnr}"
                    break
            elif step % cfg.ckpt_every == 0:
                save()
            if timed_out:
                stop_reason = f"max_minutes={cfg.max_minutes} reached"
                break
    except torch.cuda.OutOfMemoryError as e:  # torch.OutOfMemoryError of any device from torch 2.5; one name since 1.13
        raise RegazeError(f"out of memory at batch_size={cfg.batch_size}: try a smaller batch (batch_size={max(1, cfg.batch_size // 2)}) or a smaller model.") from e
    finally:
        stream.close()
        if bar is not None:
            bar.close()
    if saved_at != step:
        save()
    summary = {**last, "step": step, "stop_reason": stop_reason, "best_val_psnr_db": best_psnr,
               "best_val_score": best_score, "best_step": best_step, "best_by": best_by, "split": split.record()}
    if info.world_size > 1:  # evidence for the multi-process tests: disjoint data, weights in sync
        summary["rank_anchor_counts"] = dist.all_gather_object(len(sampler.anchors))
        summary["rank_anchor_overlap"] = _overlap(dist.all_gather_object(sampler.anchors.tolist()))
        summary["rank_trained_anchor_overlap"] = _overlap(dist.all_gather_object(sorted(trained_anchors)))
        summary["rank_foreign_anchors"] = dist.all_gather_object(foreign_anchors)
        summary["rank_param_checksums"] = dist.all_gather_object(
            float(sum(p.detach().double().abs().sum() for p in generator.parameters())))
    if info.is_main:
        run.write_json("summary.json", summary)
        print(f"stopped at step {step}: {stop_reason}", file=sys.stderr)
    del pf_train, pf_fakes, d_train, d_frozen  # the DDP wrappers hold the process group: free them before leaving it
    dist.shutdown()
    return summary


def _overlap(per_rank: list[list[int]]) -> int:
    """Number of indices that appear in more than one rank's list."""
    seen: dict[int, int] = {}
    for items in per_rank:
        for i in set(items):
            seen[i] = seen.get(i, 0) + 1
    return sum(1 for c in seen.values() if c > 1)


def _some(ids: list[int], shown: int = 12) -> str:
    """A list of ids for a log line: all of them, or the first `shown` and how many in all."""
    return str(ids) if len(ids) <= shown else f"{ids[:shown]} ... ({len(ids)} in all; summary.json lists them)"

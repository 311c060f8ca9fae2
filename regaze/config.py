"""dataclass configs; defaults are the values we actually use.

`config_to_dict` / `config_from_dict` convert any of these dataclasses (nested ones included) to plain
dicts and back, for JSON files and checkpoints. Reading a dict is a boundary: an unknown key or a value of
the wrong type is a `RegazeError` that names the field and the accepted values.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from regaze.errors import RegazeError

__all__ = ["ModelConfig", "LossWeights", "DataConfig", "TrainConfig", "config_to_dict", "config_from_dict",
           "parse_overrides", "read_config_file", "merged_config_dict", "build_config", "deep_merge"]


def config_to_dict(cfg) -> dict:
    """Dataclass (nested ones included) -> plain dict of JSON-friendly values (tuples become lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def config_from_dict(cls, data: dict | None):
    """Plain dict -> dataclass `cls`; missing keys take the defaults, nested dataclasses are built from
    nested dicts, lists become tuples where the field is a tuple. Unknown keys raise RegazeError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RegazeError(f"{cls.__name__}: expected a dict of fields, found {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RegazeError(f"{cls.__name__}: unknown field(s) {unknown}; known fields: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where=f"{cls.__name__}.{name}")
    return cls(**kwargs)


def _coerce(tp, value, *, where: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise RegazeError(f"{where}: expected a dict of {tp.__name__} fields, found {value!r}")
        return config_from_dict(tp, value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RegazeError(f"{where}: expected a list, found {value!r}")
        return tuple(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise RegazeError(f"{where}: expected true/false, found {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RegazeError(f"{where}: expected an integer, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RegazeError(f"{where}: expected a number, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RegazeError(f"{where}: expected a string, found {value!r}")
        return value
    return value


@dataclass(frozen=True)
class ModelConfig:
    """The redirector (generator) and its PatchGAN discriminator. See regaze/model/redirector.py for the
    reasoning behind the widths; `regaze model summary` prints parameters, FLOPs and a timing.

    K: Z_id must carry everything but gaze and head, so K is in the hundreds (DESIGN §1). Measured on 576
    synthetic faces (72 identities, 64 px, plain autoencoding, 600 Adam steps of 16, 64 held-out faces of 8
    other identities): held-out PSNR 19.6 dB at K = 32 vs 19.8 dB at K = 128 (channel_base 2048), and
    20.3 dB at both K = 128 and K = 256 (channel_base 1536). Past 128 the latent is not what limits a
    model of this size; K = 256 would cost 6.4 M more parameters (15.1 M instead of 8.7 M).
    """

    image_size: int = 128  # pixels (square); 64, 128 and 224 are tested; must be divisible by 16
    k: int = 128  # 3-vectors in Z_g and in Z_h, (B, K, 3) each; Z_id has 2K of them, (B, 2K, 3)
    channel_base: int = 1536  # generator width at feature resolution r: min(channel_max, channel_base // r)
    channel_max: int = 256
    encoder_blocks: tuple[int, ...] = (1, 1)  # residual blocks per level, coarsest first: (at 8x8, at 16x16, ...)
    decoder_blocks: tuple[int, ...] = (1, 1, 1)  # the same for the decoder; levels past the tuple get none
    flat_channels: int = 32  # 1x1-conv width before flattening the grid into the FC layers of IAD / decoder
    norm: str = "none"  # generator normalisation: "none" or "group" (never batch norm)
    # "pure": the patent's decoder (everything through Z); "warp": it also predicts a flow and a blend mask and
    # warps the image whose identity it decodes (regaze/model/decoder.py; issue 13's lever 3)
    decoder_mode: str = "pure"
    decoder_full_res: int = 0  # channels of a 3x3 conv stage at the image's own resolution before RGB; 0 = none
    # channels of the warping decoder's full-resolution flow and mask refinement (it reads the first warp's
    # result; regaze/model/decoder.py); 0 = none; "warp" only
    decoder_warp_refine: int = 0
    # how the warp's flow and mask logits go from S/2 to S: "bilinear", or "convex" (each full-resolution pixel a
    # learned convex combination of its 3x3 coarse neighbours, RAFT-style: edges of the flow stay sharp)
    decoder_warp_upsample: str = "bilinear"
    # The frame of the gaze angles Z_g is rotated by (issue 13's lever 6): "camera" (the labels' own frame,
    # the patent's) or "head" (gaze in head coordinates, geometry.gaze_in_head; the auxiliary gaze estimator then
    # reads head-relative gaze). The user API stays in the camera frame either way: Redirector.redirect converts.
    gaze_frame: str = "camera"
    z_norm: str = "rms"  # "rms": scale each Z block (per sample, over all its elements) to unit RMS; "none"
    estimator_hidden: int = 128  # hidden width of the auxiliary gaze / head estimators (FC on Z_g, Z_h)
    disc_channel_base: int = 2048  # discriminator width at resolution r: min(disc_channel_max, base // r)
    disc_channel_max: int = 256
    disc_layers: int = 3  # stride-2 4x4 convs; 3 -> 38 px receptive field per patch logit
    disc_spectral_norm: bool = True  # spectral normalisation of every discriminator conv

    def __post_init__(self):
        if self.image_size < 32 or self.image_size % 16:
            raise RegazeError(f"model.image_size must be a multiple of 16 and >= 32 (e.g. 64, 128, 224), got {self.image_size}")
        if self.k < 1:
            raise RegazeError(f"model.k must be >= 1, got {self.k}")
        if self.norm not in ("none", "group"):
            raise RegazeError(f"model.norm must be 'none' or 'group', got {self.norm!r}")
        if self.decoder_mode not in ("pure", "warp"):
            raise RegazeError(f"model.decoder_mode must be 'pure' or 'warp', got {self.decoder_mode!r}")
        if self.decoder_full_res < 0:
            raise RegazeError(f"model.decoder_full_res must be >= 0 (0 = no full-resolution stage), got {self.decoder_full_res}")
        if self.decoder_warp_refine < 0 or (self.decoder_warp_refine and self.decoder_mode != "warp"):
            raise RegazeError(f"model.decoder_warp_refine must be 0, or > 0 with decoder_mode 'warp' (it refines the warp), "
                              f"got {self.decoder_warp_refine} with decoder_mode {self.decoder_mode!r}")
        if self.decoder_warp_upsample not in ("bilinear", "convex"):
            raise RegazeError(f"model.decoder_warp_upsample must be 'bilinear' or 'convex', got {self.decoder_warp_upsample!r}")
        if self.decoder_warp_upsample == "convex" and self.decoder_mode != "warp":
            raise RegazeError("model.decoder_warp_upsample 'convex' needs decoder_mode 'warp' (it upsamples the warp)")
        if self.gaze_frame not in ("camera", "head"):
            raise RegazeError(f"model.gaze_frame must be 'camera' or 'head', got {self.gaze_frame!r}")
        if self.z_norm not in ("rms", "none"):
            raise RegazeError(f"model.z_norm must be 'rms' or 'none', got {self.z_norm!r}")
        for name in ("channel_base", "channel_max", "flat_channels", "estimator_hidden", "disc_channel_base", "disc_channel_max", "disc_layers"):
            if getattr(self, name) < 1:
                raise RegazeError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("encoder_blocks", "decoder_blocks"):
            blocks = getattr(self, name)
            if isinstance(blocks, list):  # from JSON
                blocks = tuple(blocks)
                object.__setattr__(self, name, blocks)
            if not isinstance(blocks, tuple) or not all(isinstance(n, int) and n >= 0 for n in blocks):
                raise RegazeError(f"model.{name} must be a list of block counts >= 0 (coarsest level first), got {blocks!r}")

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return config_from_dict(cls, data)

    def discriminator_kwargs(self) -> dict:
        """Keyword arguments of `Discriminator` (which is not part of the Redirector)."""
        return dict(
            image_size=self.image_size,
            channel_base=self.disc_channel_base,
            channel_max=self.disc_channel_max,
            layers=self.disc_layers,
            spectral_norm=self.disc_spectral_norm,
        )


@dataclass
class LossWeights:
    """λ1..λ5 of [0051] plus switches. A zero weight turns a term off."""

    disc: float = 1.0  # λ1, discriminator loss (D step)
    gen: float = 0.05  # λ2, non-saturating generator loss
    rec: float = 1.0  # λ3, L1 reconstruction of X_a^T, X_b^T
    label: float = 0.5  # λ4, angular label loss of the auxiliary estimators (radians)
    ort: float = 0.1  # λ5, orthogonality of Z_id, Z_g, Z_h
    rec_eye: float = 1.0  # weight of the eye regions inside L_R (regaze/eye_regions.py); 1 = the patent's plain L1
    # Not in the patent (issue 13's levers; training/losses.py has the formulas):
    latent: float = 0.0  # latent consistency: R^{ab} Z^a ~ Z^b, Z_id^a ~ Z_id^b, E(R^{ab} Z^a) ~ angles of b
    guide: float = 0.0  # redirection loss: a frozen training-time estimator reads X_a^T, X_b^T (radians)
    guide_random: float = 0.0  # ... and redirections of X_a to random in-range targets of the training labels
    edge: float = 0.0  # L1 of the image gradients' difference on X_a^T, X_b^T (sharp, well-placed edges)


@dataclass
class DataConfig:
    """How training pairs are drawn (DESIGN §1: same session when the data says which)."""

    min_gaze_deg: float = 5.0  # a pair differs by at least this much in gaze ...
    min_head_deg: float = 5.0  # ... or at least this much in head pose
    cache_mb: int = 4096  # load the training images into memory when they fit; 0 = always read from disk
    # Files without a split (raw ETH-XGaze, ST-ED / FAZE): hold out this many subjects, the highest subject ids,
    # for validation (regaze/training/val_split.py); -1 = auto (5 % of the subjects, at least 1); 0 = none.
    # Files with a split (regaze files, synthetic data) use their own subjects_val.
    val_subjects: int = -1
    # Each step's pairs are made ahead of the step (regaze/training/pair_stream.py): in the training process
    # (0), or in this many DataLoader worker processes per rank, each with its own HDF5 handles. Workers pay
    # when the images are read from disk (data larger than cache_mb) and a GPU does the step; on a 2-core CPU
    # they take cores from the step itself. The pairs are the same for any number of workers.
    loader_workers: int = 0
    prefetch: int = 4  # batches each worker makes ahead of the step that needs them

    def __post_init__(self):
        if self.val_subjects < -1:
            raise RegazeError(f"data.val_subjects must be -1 (auto), 0 (none) or a number of subjects; got {self.val_subjects}")
        if self.loader_workers < 0:
            raise RegazeError(f"data.loader_workers must be >= 0 (0 = make the batches in the training process), got {self.loader_workers}")
        if self.prefetch < 1:
            raise RegazeError(f"data.prefetch must be >= 1 (batches per worker made ahead), got {self.prefetch}")


@dataclass
class TrainConfig:
    """Everything `regaze train` needs; the defaults are the ones `make demo` and our runs use."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    data: DataConfig = field(default_factory=DataConfig)
    # ablation switches (DESIGN §1)
    cross_swap: bool = True  # claim 5: swap the rotated target feature across the pair
    identity_swap: bool = True  # claim 6: swap Z_id across the pair
    target: str = "random"  # claim 4: random | gaze | head | both
    # the frozen training-time estimator of loss.guide / loss.guide_random: an `regaze estimator train` directory
    # trained on this data's training subjects only; never the evaluation estimator. "" = none
    guide_estimator: str = ""
    gan_start_step: int = 0  # the D step and L_gen begin at this step (a warm-up on the other losses); 0 = from the start
    # fine-tuning: start the generator and its EMA from this model's EMA weights (a run directory, a checkpoint file
    # or the shipped regaze/reference/synth64/reference.pt; same model config). The discriminator, the optimisers and
    # the step count start fresh. Ignored by --resume, which continues a run's own state. "" = random initialisation
    init_from: str = ""
    # optimisation
    batch_size: int = 16  # pairs per process
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.99
    ema_decay: float = 0.995  # EMA of the generator for evaluation and export; 0 = off
    # the learning rates over the budget (regaze/training/lr_schedule.py): constant, or cosine from lr_* down to
    # lr_final * lr_* at the end of max_minutes (or max_steps, whichever the run reaches first)
    lr_schedule: str = "constant"
    lr_final: float = 0.05
    # stopping: whichever comes first; decided by rank 0 and shared, so every process stops at the same step
    max_steps: int = 20000
    max_minutes: float = 0.0  # wall-clock budget, read at log and validation steps; 0 = none
    stop_at_psnr: float = 0.0  # [0041]/[0055]: stop when validation reconstruction PSNR (dB) reaches this; 0 = off
    # maintenance
    log_every: int = 50  # steps between stats lines (and the only host syncs)
    val_every: int = 500  # steps between validation / best checkpoint / image grid
    ckpt_every: int = 500  # steps between checkpoints
    keep_last: int = 3  # checkpoints kept besides best.pt
    val_pairs: int = 64  # fixed validation pairs on held-out subjects (reconstruction PSNR: the stop criterion)
    # held-out sources redirected gaze-only and head-only at each validation; their score chooses best.pt
    # (regaze/training/validation.py); 0 = best.pt by reconstruction PSNR alone
    val_redirect_pairs: int = 32
    seed: int = 0
    device: str = "auto"  # auto = CUDA when available, else CPU
    threads: int = 0  # torch CPU threads; 0 = torch's default
    # precision and speed switches (the loop applies them in one place). amp: "auto" = bf16 autocast on CUDA and
    # float32 elsewhere; "bf16" = bf16 autocast on any device; "off" = float32. Angles, normalisation and
    # losses stay float32 under autocast.
    amp: str = "auto"
    channels_last: bool = False  # NHWC memory format for the convolutions (faster with tensor cores)
    compile: bool = False  # torch.compile the generator's pair forward and the discriminator (compiles on the first steps)

    def __post_init__(self):
        if self.target not in ("random", "gaze", "head", "both"):
            raise RegazeError(f"target must be random, gaze, head or both, got {self.target!r}")
        for name in ("batch_size", "max_steps", "log_every", "val_every", "ckpt_every", "keep_last", "val_pairs"):
            if getattr(self, name) < 1:
                raise RegazeError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise RegazeError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.val_redirect_pairs < 0:
            raise RegazeError(f"val_redirect_pairs must be >= 0 (0 = best.pt by reconstruction PSNR), got {self.val_redirect_pairs}")
        if (self.loss.guide or self.loss.guide_random) and not self.guide_estimator:
            raise RegazeError("loss.guide / loss.guide_random need guide_estimator=DIR (a `regaze estimator train` "
                              "directory trained on this data's training subjects)")
        if self.amp not in ("auto", "bf16", "off"):
            raise RegazeError(f"amp must be 'auto' (bf16 on CUDA), 'bf16' or 'off', got {self.amp!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise RegazeError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 <= self.lr_final <= 1.0:
            raise RegazeError(f"lr_final (the cosine's last learning rate as a fraction of lr_g / lr_d) must be in [0, 1], got {self.lr_final}")
        if self.gan_start_step < 0:
            raise RegazeError(f"gan_start_step must be >= 0, got {self.gan_start_step}")
        if not self.loss.rec and not self.loss.gen:
            raise RegazeError("loss.rec and loss.gen are both 0: no loss reaches the decoder; keep at least one")

    def to_dict(self) -> dict:
        return config_to_dict(self)


# ------------------------------------------------------------------ from files and the command line
def parse_overrides(pairs: list[str]) -> dict:
    """['loss.gen=0.1', 'model.k=64', 'cross_swap=false'] -> nested dict with JSON-parsed values."""
    nested: dict = {}
    for item in pairs:
        if "=" not in item:
            raise RegazeError(f"override {item!r}: expected key=value, e.g. loss.ort=0 or batch_size=8")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw.lower() if raw.lower() in ("true", "false") else raw)
        except json.JSONDecodeError:
            value = raw
        node = nested
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


def read_json_object(path: Path) -> dict:
    """An existing JSON file holding one object of TrainConfig fields -> dict; RegazeError otherwise."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RegazeError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise RegazeError(f"{path}: expected a JSON object of TrainConfig fields, found {type(data).__name__}")
    return data


def read_config_file(path: str | Path) -> dict:
    """A JSON file of TrainConfig fields (configs/*.json) -> dict. Keys that start with "_" are comments
    ("_about": "...") and are dropped, at any depth."""
    path = Path(path)
    if not path.is_file():
        raise RegazeError(f"config file not found: {path}")
    data = read_json_object(path)

    def uncommented(d: dict) -> dict:
        return {k: uncommented(v) if isinstance(v, dict) else v for k, v in d.items() if not k.startswith("_")}

    return uncommented(data)


def merged_config_dict(*, base: dict | None = None, config_file: str | None = None, overrides: list[str] = ()) -> dict:
    """The layers of a config as one nested dict, each on top of the one before: `base` (e.g. a resumed run's
    own config.json), then the JSON file, then the `key=value` overrides. Fields no layer names are absent."""
    merged = deep_merge(base or {}, read_config_file(config_file) if config_file else {})
    return deep_merge(merged, parse_overrides(list(overrides)))


def build_config(*, config_file: str | None, overrides: list[str], base: dict | None = None) -> "TrainConfig":
    """A TrainConfig from `base`, an optional JSON file, then `key=value` overrides (dotted for nested fields)."""
    return config_from_dict(TrainConfig, merged_config_dict(base=base, config_file=config_file, overrides=overrides))


def deep_merge(a: dict, b: dict) -> dict:
    """Nested dicts: `b`'s values over `a`'s, merged key by key where both are dicts (neither is modified)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

"""The TrainConfig a `regaze train` command runs with, from its layers, each on top of the one before:

    TrainConfig defaults
    model.image_size = the data's image size           (only when no layer below names model.image_size)
    RUN_DIR/config.json                                  (--resume: the run's own config)
    --config FILE                                        (configs/*.json)
    key=value overrides                                  (e.g. max_steps=40000 to train a resumed run longer)

So `regaze train --data synth64.h5 --out runs/r64` trains a 64 px model without being told, and
`regaze train --data synth64.h5 --out runs/r64 --resume` continues that run with the config it was started
with. A layer that contradicts the checkpoint (another model, another method) is still refused on resume
(RunDir.load_latest).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from regaze.config import TrainConfig, config_from_dict, deep_merge, merged_config_dict, read_json_object
from regaze.errors import RegazeError

__all__ = ["train_config", "saved_run_config"]


def saved_run_config(run_dir: str | os.PathLike) -> dict:
    """RUN_DIR/config.json (the resolved config a run was started with) -> dict; a RegazeError when absent."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RegazeError(f"--resume: {run_dir} holds no config.json, so it is not a regaze run directory "
                          f"(or the run never started); drop --resume to start a new run there")
    return read_json_object(path)


def train_config(*, data: str | os.PathLike, out: str | os.PathLike, config_file: str | None = None,
                 overrides: list[str] = (), resume: bool = False) -> TrainConfig:
    """The resolved TrainConfig of `regaze train` (see the module docstring for the layers)."""
    layers = merged_config_dict(base=saved_run_config(out) if resume else None, config_file=config_file,
                                overrides=list(overrides))
    if "image_size" in layers.get("model", {}):
        return config_from_dict(TrainConfig, layers)
    from regaze.data.dataset import open_dataset

    with open_dataset(data) as dataset:
        size = dataset.size
    if size < 32 or size % 16:
        raise RegazeError(f"{data}: its images are {size} px, and the model needs a side that is a multiple of 16 "
                          f"and >= 32 (64, 128, 224); convert the data with `regaze data convert --size 128`")
    cfg = config_from_dict(TrainConfig, deep_merge({"model": {"image_size": size}}, layers))
    print(f"model.image_size={size} (the image size of {data})", file=sys.stderr)
    return cfg

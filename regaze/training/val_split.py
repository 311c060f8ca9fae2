"""Which subjects train and which validate.

A file with split information (regaze files: attributes subjects_train / subjects_val; the synthetic data has
both) uses its own split. A file without one (a raw ETH-XGaze directory or an ST-ED / FAZE file: their
readers say split="all") holds out validation subjects by default, so that best.pt, the image grids and
`stop_at_psnr` work on it too: `data.val_subjects` of them (-1 = auto: 5 % of the subjects, at least 1), the
highest subject ids. For ETH-XGaze the id is the number in subjectNNNN.h5; for ST-ED / FAZE it is the
group's position in the file's sorted key order (the names are in the dataset's attrs["subject_names"]).
The loop prints which, and records them in summary.json and in every checkpoint (`split`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from regaze.errors import RegazeError
from regaze.training.batches import split_or_none

__all__ = ["TrainValSplit", "train_val_split", "AUTO_VAL_FRACTION"]

AUTO_VAL_FRACTION = 0.05  # data.val_subjects = -1: this share of the subjects, at least one


@dataclass(frozen=True)
class TrainValSplit:
    train: np.ndarray  # (n_train,) int64 image indices
    val: np.ndarray | None  # (n_val,) int64 image indices; None: no validation
    val_subjects: list[int]  # subject ids of `val`
    rule: str  # where the split comes from, in words

    def record(self) -> dict:
        """The split as plain values, for summary.json and checkpoints."""
        return {"rule": self.rule, "val_subjects": self.val_subjects, "train_images": int(len(self.train)),
                "val_images": 0 if self.val is None else int(len(self.val))}


def train_val_split(dataset, *, val_subjects: int = -1) -> TrainValSplit:
    """The training and validation images of `dataset` (a GazeDataset); see the module docstring."""
    train = split_or_none(dataset, "train")
    if train is not None:
        val = split_or_none(dataset, "val")
        if val is not None and len(val):
            return TrainValSplit(train=train, val=val, val_subjects=_ids(dataset, val), rule="the file's own split")
        return TrainValSplit(train=train, val=None, val_subjects=[],
                             rule="the file's own split, which has no validation subjects")
    subjects = np.unique(dataset.subject)  # sorted
    n = val_subjects if val_subjects >= 0 else max(1, round(AUTO_VAL_FRACTION * len(subjects)))
    if n == 0 or len(subjects) < 2:
        why = "data.val_subjects=0" if n == 0 else "the file has one subject"
        return TrainValSplit(train=np.arange(len(dataset), dtype=np.int64), val=None, val_subjects=[],
                             rule=f"no split in the file and none held out ({why})")
    if n >= len(subjects):
        raise RegazeError(f"data.val_subjects={n} would hold out every subject of {dataset.path} "
                          f"({len(subjects)} subjects); use fewer, or 0 for no validation")
    held = subjects[-n:]
    is_val = np.isin(dataset.subject, held)
    how = f"data.val_subjects={val_subjects}" if val_subjects >= 0 else f"auto: {AUTO_VAL_FRACTION:.0%} of {len(subjects)}"
    return TrainValSplit(train=np.flatnonzero(~is_val).astype(np.int64), val=np.flatnonzero(is_val).astype(np.int64),
                         val_subjects=[int(s) for s in held],
                         rule=f"no split in the file: the {n} highest subject ids held out ({how})")


def _ids(dataset, indices: np.ndarray) -> list[int]:
    return [int(s) for s in np.unique(dataset.subject[indices])]

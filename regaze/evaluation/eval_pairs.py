"""Fixed, seeded evaluation pairs on held-out subjects (DESIGN §4).

A pair (source i, target j) is two different images of one held-out subject: the model redirects i to j's
gaze and head (source angles = i's labels) and the result is compared with j. Pairs are drawn within a
session (same light and background: synthetic sessions, ETH-XGaze frames) when the data has sessions with
at least two images, else within a subject; `rule` records which. Each pair also gets an `other` image of a
different held-out subject, the reference for the identity measure. Everything is a function of the
dataset's labels and `seed`, and the indices are stored in eval.json, so runs are compared on the same pairs.
"""
from __future__ import annotations

import numpy as np

from regaze.errors import RegazeError

__all__ = ["held_out_indices", "sample_pairs", "HELD_OUT_SPLITS"]

HELD_OUT_SPLITS = ("auto", "test", "val", "all")


def held_out_indices(dataset, *, split: str = "auto") -> tuple[np.ndarray, str]:
    """Images of held-out subjects -> (sorted indices, split name used).

    auto: the `test` split, else the `val` split; all: every image of the file (a file that is itself a
    test set). A file without split information needs split="all"; that is an explicit choice, since
    evaluating on training subjects flatters every number.
    """
    if split not in HELD_OUT_SPLITS:
        raise RegazeError(f"unknown held-out split '{split}'; expected one of {HELD_OUT_SPLITS}")
    if split == "all":
        return np.arange(len(dataset), dtype=np.int64), "all"
    for name in (("test", "val") if split == "auto" else (split,)):
        try:
            idx = dataset.split_indices(name)
        except RegazeError:
            continue
        if len(idx):
            return idx, name
    raise RegazeError(f"{dataset.path}: no held-out subjects: the file lists no non-empty "
                      f"{'test or val' if split == 'auto' else split} split (attribute subjects_test / "
                      f"subjects_val). Pass --split all if the whole file is held out from training.")


def sample_pairs(*, subject: np.ndarray, session: np.ndarray | None, indices: np.ndarray, n_pairs: int,
                 seed: int, rule: str = "auto") -> dict:
    """Draw `n_pairs` (source, target) pairs among `indices` -> dict of int64 arrays and facts.

    subject, session: (N,) per-image ids of the whole dataset (session may be None).
    rule: "auto" (session when sessions give pairs, else subject), "session" or "subject".
    Returns {"source": (n,), "target": (n,), "other": (n,) or None, "rule", "seed", "n_subjects"}.
    Sources are drawn without replacement while there are enough usable images.
    """
    if n_pairs <= 0:
        raise RegazeError(f"number of pairs must be positive; got {n_pairs}")
    idx = np.unique(np.asarray(indices, dtype=np.int64))
    subject = np.asarray(subject, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6576616C]))  # "eval"
    if rule not in ("auto", "session", "subject"):
        raise RegazeError(f"unknown pair rule '{rule}'; expected auto, session or subject")
    if rule == "session" and session is None:
        raise RegazeError("pair rule 'session' asked for, but the data has no session labels")

    def groups_of(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        members = [idx[inverse == g] for g in range(len(counts))]
        usable = np.concatenate([m for m in members if len(m) >= 2] or [np.zeros(0, np.int64)])
        return usable, members

    chosen_rule = "subject"
    if session is not None and rule in ("auto", "session"):
        keys = np.stack([subject[idx], np.asarray(session, dtype=np.int64)[idx]], axis=1)
        usable, members = groups_of(keys)
        if len(usable) or rule == "session":
            chosen_rule = "session"
    if chosen_rule == "subject":
        usable, members = groups_of(subject[idx][:, None])
    if len(usable) == 0:
        raise RegazeError(f"no {chosen_rule} among the {len(idx)} held-out images has two images; "
                          f"evaluation pairs need two images of one {chosen_rule}")
    group_of = {int(i): g for g, m in enumerate(members) for i in m}
    source = rng.choice(usable, size=n_pairs, replace=n_pairs > len(usable))
    target = np.empty(n_pairs, np.int64)
    for k, i in enumerate(source):
        m = members[group_of[int(i)]]
        j = rng.integers(len(m) - 1)
        target[k] = m[j] if m[j] != i else m[-1]  # uniform over the group without i
    subjects = np.unique(subject[idx])
    other = None
    if len(subjects) >= 2:
        other = np.empty(n_pairs, np.int64)
        not_of = {int(s): idx[subject[idx] != s] for s in subjects}  # images of every other subject
        for k, i in enumerate(source):
            candidates = not_of[int(subject[i])]
            other[k] = candidates[rng.integers(len(candidates))]
    return {"source": source.astype(np.int64), "target": target, "other": other, "rule": chosen_rule,
            "seed": int(seed), "n_subjects": int(len(subjects))}

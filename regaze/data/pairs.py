"""Pair sampling for pair training (patent claim 5): two images of one person with different pose.

A pair (a, b) is valid when a != b, both are in the same group, and the angular difference is at least
`min_gaze_deg` in gaze OR at least `min_head_deg` in head pose. Groups are sessions (same subject and
session: same light and background, DESIGN §1 pitfall) when the data has them and they give pairs, else
subjects; `sampler.rule` says which. Groups with fewer than two usable images are skipped and counted
(`sampler.skipped_groups`).

Anchors are sharded across distributed ranks after one seeded permutation, so the ranks' anchor sets are
disjoint and together cover every usable image; partners come from the whole group. All draws use
`numpy.random.Generator`s derived from `seed` (and rank), so the pairs are reproducible.

Usability is exact for groups of up to `exact_group_limit` images; in larger groups (whole ETH-XGaze
subjects) an image counts as usable when it has a valid partner among a seeded sample of that many
members, which can only drop, never admit, an image. Partners are drawn uniformly among the valid ones
(rejection sampling, then an exact search for the rare anchor that keeps missing).
"""
from __future__ import annotations

import numpy as np

from regaze.errors import RegazeError
from regaze.geometry import angular_error_deg, pitchyaw_to_vector

__all__ = ["PairSampler", "RULES"]

RULES = ("session", "subject")
_REJECTION_ROUNDS = 16
_BLOCK_ELEMENTS = 2**20  # pairwise differences computed at most this many at a time


class PairSampler:
    """Seeded, rank-sharded sampler of same-person pairs with different pose; see the module docstring.

    gaze: (N, 2) radians or None (head-only criterion); head: (N, 2) radians; subject: (N,) ints;
    session: (N,) ints or None. indices: the images to use (e.g. a training split); default all.
    rule: "auto" (session if possible, else subject), "session" or "subject".
    """

    def __init__(self, gaze, head, subject, session=None, *, min_gaze_deg: float = 5.0,
                 min_head_deg: float = 5.0, seed: int = 0, rank: int = 0, world_size: int = 1,
                 indices=None, rule: str = "auto", exact_group_limit: int = 2048):
        if not 0 <= rank < world_size:
            raise RegazeError(f"rank {rank} outside world size {world_size}")
        if rule not in ("auto", *RULES):
            raise RegazeError(f"unknown pair rule '{rule}'; expected 'auto', 'session' or 'subject'")
        if rule == "session" and session is None:
            raise RegazeError("pair rule 'session' asked for, but the data has no session labels")
        self.min_gaze_deg, self.min_head_deg = float(min_gaze_deg), float(min_head_deg)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.exact_group_limit = int(exact_group_limit)
        self._head_vec = pitchyaw_to_vector(np.asarray(head, dtype=np.float64))  # (N, 3)
        self._gaze_vec = None if gaze is None else pitchyaw_to_vector(np.asarray(gaze, dtype=np.float64))  # (N, 3)
        subject = np.asarray(subject, dtype=np.int64)
        n = len(subject)
        idx = np.arange(n, dtype=np.int64) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
        if len(idx) and (idx[0] < 0 or idx[-1] >= n):
            raise RegazeError(f"pair sampler: indices must lie in [0, {n}); found {idx[0]}..{idx[-1]}")

        rules = ["session", "subject"] if rule == "auto" and session is not None else \
            ["subject"] if rule == "auto" else [rule]
        for candidate in rules:  # the first rule that gives any pair wins
            self.rule = candidate
            keys = [subject] if candidate == "subject" else [subject, np.asarray(session, dtype=np.int64)]
            self._build_groups(idx, keys)
            if len(self._usable_all):
                break
        if not len(self._usable_all):
            raise RegazeError(f"no valid pairs among {len(idx)} images: no two images of one "
                              f"{' or '.join(rules)} differ by >= {self.min_gaze_deg} deg in gaze or "
                              f">= {self.min_head_deg} deg in head pose")
        perm = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(2,))).permutation(self._usable_all)
        self.anchors = np.sort(perm[self.rank::self.world_size])  # this rank's shard, (A,)
        if not len(self.anchors):
            raise RegazeError(f"rank {rank}: no anchors ({len(perm)} usable images for {world_size} ranks)")
        self._rng = np.random.default_rng(self.seed * self.world_size + self.rank)

    # ----------------------------------------------------------------------------------- groups
    def _build_groups(self, idx: np.ndarray, keys: list[np.ndarray]) -> None:
        """Group `idx` by equal keys; find the usable images (those with at least one valid partner)."""
        order = np.lexsort([idx] + [k[idx] for k in reversed(keys)])
        members = idx[order]  # (M,) grouped, ascending within a group
        key_rows = np.stack([k[members] for k in keys], axis=1)  # (M, K)
        new = np.ones(len(members), dtype=bool)
        new[1:] = (key_rows[1:] != key_rows[:-1]).any(axis=1)
        starts = np.flatnonzero(new)
        sizes = np.diff(np.append(starts, len(members)))
        usable = self._find_usable(members, starts, sizes)  # (M,) bool
        group_usable = np.add.reduceat(usable.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
        self._members, self._starts, self._sizes = members, starts, sizes
        self._group_of = np.full(len(self._head_vec), -1, dtype=np.int64)
        self._group_of[members] = np.repeat(np.arange(len(starts)), sizes)
        self._usable_all = members[usable]
        self.n_groups = int((group_usable >= 2).sum())
        self.skipped_groups = int(len(starts) - self.n_groups)
        self.skipped_images = int(len(members) - usable.sum())

    def _valid(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Broadcast index arrays -> bool: a != b and (gaze diff >= min_gaze_deg or head diff >= min_head_deg)."""
        ok = angular_error_deg(self._head_vec[a], self._head_vec[b], is_vector=True) >= self.min_head_deg
        if self._gaze_vec is not None:
            ok |= angular_error_deg(self._gaze_vec[a], self._gaze_vec[b], is_vector=True) >= self.min_gaze_deg
        return ok & (a != b)

    def _find_usable(self, members: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        usable = np.zeros(len(members), dtype=bool)
        small = sizes <= 64
        for s in np.unique(sizes[small & (sizes >= 2)]):  # equal-size small groups in one array op
            groups = np.flatnonzero(small & (sizes == s))
            per = max(1, _BLOCK_ELEMENTS // (s * s))
            for c in range(0, len(groups), per):
                pos = starts[groups[c:c + per], None] + np.arange(s)  # (G, s)
                mat = members[pos]
                usable[pos] = self._valid(mat[:, :, None], mat[:, None, :]).any(axis=-1)
        probe_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1,)))
        for g in np.flatnonzero(~small):
            usable[starts[g]:starts[g] + sizes[g]] = self._usable_in_large_group(
                members[starts[g]:starts[g] + sizes[g]], probe_rng)
        return usable

    def _usable_in_large_group(self, group: np.ndarray, probe_rng: np.random.Generator) -> np.ndarray:
        """(s,) bool for one large group: compare with shuffled members a chunk at a time, dropping the images
        already known usable, so typical data costs about s * chunk comparisons, not s * s."""
        probe = probe_rng.permutation(group)[:self.exact_group_limit]  # all members when s <= the limit
        usable = np.zeros(len(group), dtype=bool)
        chunk = 64
        for c in range(0, len(probe), chunk):
            todo = np.flatnonzero(~usable)
            if not len(todo):
                break
            cand = probe[c:c + chunk]
            per = max(1, _BLOCK_ELEMENTS // len(cand))
            for r in range(0, len(todo), per):
                rows = todo[r:r + per]
                usable[rows] = self._valid(group[rows, None], cand[None, :]).any(axis=-1)
            chunk = min(chunk * 2, 4096)
        return usable

    # ---------------------------------------------------------------------------------- sampling
    def __len__(self) -> int:
        return len(self.anchors)

    def partners(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A valid partner for each anchor (uniform among its valid partners) -> (n,) int64."""
        anchors = np.asarray(anchors, dtype=np.int64)
        groups = self._group_of[anchors]
        out = np.full(len(anchors), -1, dtype=np.int64)
        todo = np.arange(len(anchors))
        for _ in range(_REJECTION_ROUNDS):
            if not len(todo):
                break
            g = groups[todo]
            cand = self._members[self._starts[g] + rng.integers(0, self._sizes[g])]
            ok = self._valid(anchors[todo], cand)
            out[todo[ok]] = cand[ok]
            todo = todo[~ok]
        for t in todo:  # anchors with few valid partners: search their whole group
            g = groups[t]
            group = self._members[self._starts[g]:self._starts[g] + self._sizes[g]]
            out[t] = rng.choice(group[self._valid(anchors[t], group)])
        return out

    def sample(self, n: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """n pairs with anchors drawn uniformly (with replacement) from this rank's shard -> (n, 2) int64.

        Without `rng` the sampler's own seeded stream is used (seed * world_size + rank)."""
        rng = self._rng if rng is None else rng
        anchors = self.anchors[rng.integers(0, len(self.anchors), size=n)]
        return np.stack([anchors, self.partners(anchors, rng)], axis=1)

    def epoch(self, epoch: int) -> np.ndarray:
        """Every anchor of this rank once, shuffled, with a partner each -> (A, 2) int64; seeded by
        (seed, rank, epoch), so any epoch can be replayed on its own."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(3, self.rank, int(epoch))))
        anchors = rng.permutation(self.anchors)
        return np.stack([anchors, self.partners(anchors, rng)], axis=1)

    def summary(self) -> dict:
        return {"rule": self.rule, "groups": self.n_groups, "skipped_groups": self.skipped_groups,
                "skipped_images": self.skipped_images, "usable_images": int(len(self._usable_all)),
                "anchors_this_rank": int(len(self.anchors)), "rank": self.rank, "world_size": self.world_size,
                "min_gaze_deg": self.min_gaze_deg, "min_head_deg": self.min_head_deg}

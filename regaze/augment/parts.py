"""Crash-safe storage for `regaze augment`: one small part file per finished chunk, merged in order.

    OUT.parts/part_00012.h5     chunk 12, a complete regaze-layout file (written to a temp name, then renamed)
    OUT                         the merge of all parts in chunk order (temp name, then renamed); OUT.parts removed

Rank 0 merges while the chunks are being computed (PartMerger appends part c as soon as it exists), so at the
end only the last parts remain to be copied. Parts are uncompressed (images are compressed once, in OUT).

A part exists under its final name only when complete, so after a SIGKILL at any moment the parts present
are exactly the finished chunks, and a re-run recomputes only the missing ones. Every part carries the
run's fingerprint (a hash of the data labels, the checkpoint and the augmentation arguments): parts of a
different augmentation are never mixed into this one. Leftover temp files of a killed write are deleted by
the process that owns their chunk before it writes that chunk again.

A part records how many items its chunk planned and how many it left out (targets out of range, images
failing --max-residual-deg); a part may hold no image at all. The merge checks every count and writes the
totals into OUT (augment_planned_images, augment_left_out_of_range, augment_left_out_residual).
"""
from __future__ import annotations

import queue
import shutil
import threading
from pathlib import Path

import h5py

from regaze.data.h5_files import read_attrs
from regaze.data.writer import RegazeWriter
from regaze.errors import RegazeError

__all__ = ["parts_dir_for", "part_path", "part_status", "remove_stale_temps", "read_fingerprint", "PartWriter",
           "PartMerger", "background", "FINGERPRINT_ATTR", "PART_COMPRESSION", "PART_COUNT_ATTRS", "TOTAL_ATTRS"]

FINGERPRINT_ATTR = "augment_fingerprint"
# per part: items planned for its chunk, left out as out of range, left out by the residual check
PART_COUNT_ATTRS = {"planned": "augment_part_planned", "out_of_range": "augment_part_left_out_of_range",
                    "residual": "augment_part_left_out_residual"}
# in OUT: the same counts summed over the parts
TOTAL_ATTRS = {"planned": "augment_planned_images", "out_of_range": "augment_left_out_of_range",
               "residual": "augment_left_out_residual"}
# Parts are temporary: stored uncompressed so that images are compressed once, by the merge, not twice.
PART_COMPRESSION = "none"


def parts_dir_for(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def part_path(parts_dir: Path, chunk: int) -> Path:
    return parts_dir / f"part_{chunk:05d}.h5"


def part_status(path: Path, *, fingerprint: str) -> str:
    """'missing', 'done' (complete part of this run) or 'foreign' (a part of another augmentation)."""
    if not path.is_file():
        return "missing"
    try:
        with h5py.File(path, "r") as f:
            found = f.attrs.get(FINGERPRINT_ATTR)
    except OSError as e:  # renamed only when complete, so this is outside damage
        raise RegazeError(f"{path}: unreadable part file ({e}); delete it and run again to recompute it") from e
    found = found.decode() if isinstance(found, bytes) else found
    return "done" if found == fingerprint else "foreign"


def remove_stale_temps(parts_dir: Path, chunk: int) -> None:
    """Delete temp files left by a killed write of `chunk` (only its owner calls this)."""
    for tmp in parts_dir.glob(f".part_{chunk:05d}.h5.tmp*"):
        tmp.unlink(missing_ok=True)


class PartWriter:
    """Writes parts on a background thread (compute goes on meanwhile); errors surface on the next call."""

    def __init__(self, *, size: int, compression: str = PART_COMPRESSION, depth: int = 2):
        self.size, self.compression = size, compression
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._work, name="augment-writer", daemon=True)
        self._thread.start()

    def submit(self, path: Path, *, arrays: dict, attrs: dict) -> None:
        """Queue a part: arrays = images (n, S, S, 3) uint8, gaze, head (n, 2), subject, session, extras (n, ...)."""
        if self.error is not None:
            raise self.error
        self._queue.put((path, arrays, attrs))

    def close(self) -> None:
        """Finish the queued parts; re-raise a write error."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: nothing more is written after a failure
            path, arrays, attrs = job
            try:
                with RegazeWriter(path, size=self.size, attrs=attrs, compression=self.compression,
                                  allow_empty=True) as w:  # every item of a chunk may have been left out
                    w.append(**arrays)
            except BaseException as e:  # noqa: BLE001 (handed to the main thread)
                self.error = e


def _read_part(path: Path) -> tuple[dict | None, dict]:
    """A part file -> (keyword arguments of RegazeWriter.append, or None when it holds no image; its counts)."""
    with h5py.File(path, "r") as f:
        arrays = {key: f[key][()] for key in f}
        counts = {k: int(f.attrs.get(a, -1)) for k, a in PART_COUNT_ATTRS.items()}
    if "face_patch" not in arrays:
        return None, counts
    return {"images": arrays.pop("face_patch"), "gaze": arrays.pop("face_gaze"), "head": arrays.pop("face_head_pose"),
            "subject": arrays.pop("subject"), "session": arrays.pop("session", None), **arrays}, counts


class PartMerger:
    """Rank 0: appends parts 0..n_chunks-1 in order to OUT's temporary file as soon as each appears, on a
    background thread, so the merge overlaps compute; `finish()` publishes OUT (rename) and removes the parts.

    chunk_items(c) -> the number of items part c planned (it holds that many less those it left out).
    A part of another run is an error.
    """

    def __init__(self, *, parts_dir: Path, out: Path, n_chunks: int, chunk_items, fingerprint: str, size: int,
                 attrs: dict, compression: str):
        self.parts_dir, self.n_chunks, self.chunk_items, self.fingerprint = parts_dir, n_chunks, chunk_items, fingerprint
        self.error: BaseException | None = None
        self.merged_images = 0
        self.totals = {k: 0 for k in PART_COUNT_ATTRS}
        for tmp in out.parent.glob(f".{out.name}.tmp*"):  # a merge killed earlier
            tmp.unlink(missing_ok=True)
        self._writer = RegazeWriter(out, size=size, attrs=attrs, compression=compression)
        self._stop = threading.Event()
        self._all_written = threading.Event()  # set once every rank has written its parts
        self._thread = threading.Thread(target=self._work, name="augment-merger", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            for c in range(self.n_chunks):
                path = part_path(self.parts_dir, c)
                while not path.is_file():  # parts appear under their final name only when complete
                    if self._stop.is_set():
                        return
                    if self._all_written.is_set() and not path.is_file():
                        raise RegazeError(f"{path}: missing after every process finished; run the same command "
                                          f"again to compute it")
                    self._all_written.wait(0.05)
                if part_status(path, fingerprint=self.fingerprint) != "done":
                    raise RegazeError(f"{path}: belongs to another augmentation; delete {self.parts_dir} or pass --force")
                rows, counts = _read_part(path)
                n = 0 if rows is None else len(rows["images"])
                expected = counts["planned"] - counts["out_of_range"] - counts["residual"]
                if counts["planned"] != self.chunk_items(c) or min(counts.values()) < 0 or n != expected:
                    raise RegazeError(f"{path}: holds {n} images and counts {counts}; expected {self.chunk_items(c)} "
                                      f"planned items less those left out; delete it and run again")
                if rows is not None:
                    self._writer.append(**rows)
                self.merged_images += n
                for k, v in counts.items():
                    self.totals[k] += v
        except BaseException as e:  # noqa: BLE001 (re-raised by finish)
            self.error = e

    def finish(self) -> dict:
        """Call when every part has been written: merge the rest, publish OUT, remove the parts.
        Returns {"images": N written, "planned", "out_of_range", "residual"}."""
        self._all_written.set()
        self._thread.join()
        nothing_kept = self.error is None and self.merged_images == 0
        if nothing_kept:
            self.error = RegazeError(
                f"every one of the {self.totals['planned']} planned images was left out ({self.totals['out_of_range']} "
                f"targets outside the ranges or the data's eye range, {self.totals['residual']} above "
                f"--max-residual-deg); widen the ranges (a grid's corners are rarely poses a face takes), pass "
                f"--eye-range, or raise --max-residual-deg. Nothing was written")
        if self.error is not None:
            self._writer.abort()
            if nothing_kept:  # definitive: the same arguments would fail again, so the parts are of no use
                shutil.rmtree(self.parts_dir, ignore_errors=True)
            raise self.error
        self._writer.set_attrs({TOTAL_ATTRS[k]: v for k, v in self.totals.items()})
        self._writer.close()
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return {"images": self.merged_images, **self.totals}

    def abort(self) -> None:
        """Stop merging and drop OUT's temporary file (the parts stay for the next run)."""
        self._stop.set()
        self._thread.join()
        self._writer.abort()


_DONE = object()


def background(fn, items, *, depth: int = 2):
    """Yield (position, fn(item)) for `items` in order, computed up to `depth` ahead on a daemon thread.

    An exception in `fn` is re-raised here; stopping early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for pos, item in enumerate(items):
                if not put((pos, fn(item), None)):
                    return
        except BaseException as e:  # noqa: BLE001 (re-raised in the consumer)
            put((None, None, e))
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="augment-reader", daemon=True)
    thread.start()
    try:
        while (entry := q.get()) is not _DONE:
            pos, value, error = entry
            if error is not None:
                raise error
            yield pos, value
    finally:
        stop.set()
        thread.join(timeout=5)


def read_fingerprint(path: Path) -> str | None:
    """The fingerprint attribute of a finished output file, or None."""
    try:
        with h5py.File(path, "r") as f:
            return read_attrs(f).get(FINGERPRINT_ATTR)
    except OSError:
        return None


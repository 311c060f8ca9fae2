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
           "PartMerger", "background", "FINGERPRINT_ATTR", "PART_COMPRESSION"]

FINGERPRINT_ATTR = "augment_fingerprint"
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
                with RegazeWriter(path, size=self.size, attrs=attrs, compression=self.compression) as w:
                    w.append(**arrays)
            except BaseException as e:  # noqa: BLE001 (handed to the main thread)
                self.error = e


def _read_part(path: Path) -> dict:
    """A part file -> keyword arguments of RegazeWriter.append."""
    with h5py.File(path, "r") as f:
        arrays = {key: f[key][()] for key in f}
    return {"images": arrays.pop("face_patch"), "gaze": arrays.pop("face_gaze"), "head": arrays.pop("face_head_pose"),
            "subject": arrays.pop("subject"), "session": arrays.pop("session", None), **arrays}


class PartMerger:
    """Rank 0: appends parts 0..n_chunks-1 in order to OUT's temporary file as soon as each appears, on a
    background thread, so the merge overlaps compute; `finish()` publishes OUT (rename) and removes the parts.

    chunk_items(c) -> the number of images part c must hold. A part of another run is an error.
    """

    def __init__(self, *, parts_dir: Path, out: Path, n_chunks: int, chunk_items, fingerprint: str, size: int,
                 attrs: dict, compression: str):
        self.parts_dir, self.n_chunks, self.chunk_items, self.fingerprint = parts_dir, n_chunks, chunk_items, fingerprint
        self.error: BaseException | None = None
        self.merged_images = 0
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
                rows = _read_part(path)
                n = len(rows["images"])
                if n != self.chunk_items(c):
                    raise RegazeError(f"{path}: holds {n} images, expected {self.chunk_items(c)}; delete it and run again")
                self._writer.append(**rows)
                self.merged_images += n
        except BaseException as e:  # noqa: BLE001 (re-raised by finish)
            self.error = e

    def finish(self) -> int:
        """Call when every part has been written: merge the rest, publish OUT, remove the parts. Returns N."""
        self._all_written.set()
        self._thread.join()
        if self.error is not None:
            self._writer.abort()
            raise self.error
        self._writer.close()
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return self.merged_images

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


"""`regaze data inspect|convert`: look inside a dataset in any supported layout; convert it to the regaze layout."""
from __future__ import annotations

import argparse
import json
import sys

from regaze.data.readers.cameras import FRAMING_ATTRS

_EXAMPLES = """\
examples:
  regaze data inspect /data/xgaze_224/train              # ETH-XGaze directory of subject*.h5
  regaze data inspect GazeCapture_128.h5 --json          # ST-ED/FAZE file, machine-readable summary
  regaze data convert /data/xgaze_224/train xgaze128.h5 --size 128 --val-subjects 3,7
  regaze data convert synth.h5 synth64.h5 --size 64 --resample area --force

Layouts are detected from the path: a directory of ETH-XGaze subject*.h5 files (or one of them; BGR on disk),
an ST-ED/FAZE file (one group per person with 'pixels' and 'labels'), or a regaze file (attribute
'regaze_version'). Angles are printed in degrees; files store radians (pitch, yaw).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="inspect datasets, convert them to the regaze layout",
        description="Inspect a dataset (ETH-XGaze, ST-ED/FAZE or regaze layout) or convert it to the regaze layout.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")

    inspect = actions.add_parser(
        "inspect", help="print layout, subjects, sessions, image size, framing, label ranges, splits and residuals",
        description="Print what a dataset holds: layout, colour order, subjects and sessions, number and size\n"
                    "of images, the normalized camera (framing), label ranges in degrees, split attributes, and\n"
                    "for augmented files checked by an estimator the distribution of the residuals (degrees\n"
                    "between the estimator's reading of each image and its label). Reads labels only, no images.",
        epilog="example:\n  regaze data inspect data/synth.h5 --json > summary.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    inspect.add_argument("path", help="dataset: a regaze .h5, an ST-ED/FAZE .h5, an ETH-XGaze subject*.h5 or a directory of them")
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    convert = actions.add_parser(
        "convert", help="convert any supported layout to the regaze layout (optionally resized)",
        description="Convert SRC (any supported layout) to a regaze-layout file DST: images stored RGB, labels\n"
                    "and sessions copied, extra per-image arrays kept, plus source_index (row in SRC).\n"
                    "DST appears only when the conversion succeeds; on failure nothing is left at DST.",
        epilog="examples:\n  regaze data convert /data/xgaze_224/train xgaze128.h5 --size 128\n"
               "  regaze data convert GazeCapture_128.h5 gc.h5 --val-subjects 0,1 --test-subjects 2,3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    convert.add_argument("src", help="source dataset (any supported layout)")
    convert.add_argument("dst", help="destination .h5 file (regaze layout)")
    convert.add_argument("--size", type=int, default=None, help="output image side in pixels (default: keep)")
    convert.add_argument("--resample", choices=("auto", "bicubic", "area"), default="auto",
                         help="resize filter: auto = area when shrinking, bicubic when enlarging (default auto)")
    convert.add_argument("--batch-size", type=int, default=64, help="images read and written at a time (default 64)")
    convert.add_argument("--compression", choices=("lzf", "gzip", "none"), default="lzf",
                         help="HDF5 compression of the output (default lzf: fastest to read)")
    convert.add_argument("--split", choices=("train", "val", "test", "all"), default=None,
                         help="value of the file's 'split' attribute (default: the source's, else 'all')")
    convert.add_argument("--val-subjects", type=_id_list, default=None, metavar="IDS",
                         help="comma-separated subject ids for validation (sets subjects_train/val/test)")
    convert.add_argument("--test-subjects", type=_id_list, default=None, metavar="IDS",
                         help="comma-separated subject ids for testing (train = the other subjects)")
    convert.add_argument("--force", action="store_true", help="replace DST if it exists")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run, data_parser=parser)


def _id_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integer subject ids, got {text!r}") from e


def _run(args) -> int:
    if args.data_action == "inspect":
        return _inspect(args)
    if args.data_action == "convert":
        return _convert(args)
    args.data_parser.print_help()
    return 2


# ---------------------------------------------------------------------------------------- inspect
def _stats(values) -> dict:
    import numpy as np

    return {"min": float(np.min(values)), "median": float(np.median(values)), "max": float(np.max(values))}


def _plain(value):
    """Attribute value -> JSON-friendly value."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def residual_summary(ds) -> dict | None:
    """Residuals of an augmented file read by an estimator (residual_gaze_deg, residual_head_deg) -> per group
    ("redirected": change_mode != 0, "source copies": change_mode == 0) and angle: count, mean and quantiles in
    degrees. None when the file has none."""
    import numpy as np

    if not {"residual_gaze_deg", "residual_head_deg"} <= set(ds.array_keys):
        return None
    mode = ds.read_array("change_mode") if "change_mode" in ds.array_keys else np.ones(len(ds), np.int8)
    out = {}
    for group, rows in (("redirected", mode != 0), ("source copies", mode == 0)):
        if not rows.any():
            continue
        out[group] = {}
        for angle in ("gaze", "head"):
            r = ds.read_array(f"residual_{angle}_deg")[rows].astype(np.float64)
            q = np.quantile(r, [0.5, 0.9, 0.99])
            out[group][angle] = {"count": int(len(r)), "mean": float(r.mean()), "median": float(q[0]),
                                 "p90": float(q[1]), "p99": float(q[2]), "max": float(r.max())}
    return out


def summarize(ds) -> dict:
    """A JSON-friendly summary of a GazeDataset (labels only; no image is read)."""
    import numpy as np

    subjects, per_subject = np.unique(ds.subject, return_counts=True)
    out = {
        "path": str(ds.path),
        "layout": ds.layout,
        "colour_order_on_disk": ds.colour_order,
        "colour_order_read": "RGB",
        "images": len(ds),
        "size": ds.size,
        "subjects": {"count": int(len(subjects)), "images_per_subject": _stats(per_subject),
                     "counts": {int(s): int(c) for s, c in zip(subjects, per_subject)}},
        "sessions": None,
        "has_gaze_labels": ds.has_gaze_labels,
        "labels_deg": {},
        "split": ds.attrs.get("split"),
        "split_subjects": {k[len("subjects_"):]: _plain(v) for k, v in ds.attrs.items() if k.startswith("subjects_")},
        "framing": {k: _plain(ds.attrs[k]) for k in FRAMING_ATTRS if k in ds.attrs},
        "residuals_deg": residual_summary(ds),
        "arrays": ds.array_keys,
        "attrs": {k: _plain(v) for k, v in ds.attrs.items() if not k.startswith("subjects_") and k not in FRAMING_ATTRS},
    }
    if ds.session is not None:
        _, per_session = np.unique(np.stack([ds.subject, ds.session], 1), axis=0, return_counts=True)
        out["sessions"] = {"count": int(len(per_session)), "images_per_session": _stats(per_session)}
    labels = {"head": ds.head} if ds.gaze is None else {"gaze": ds.gaze, "head": ds.head}
    for name, arr in labels.items():
        deg = np.degrees(arr.astype(np.float64))
        for col, angle in enumerate(("pitch", "yaw")):
            out["labels_deg"][f"{name}_{angle}"] = {"min": float(deg[:, col].min()), "mean": float(deg[:, col].mean()),
                                                    "max": float(deg[:, col].max())}
    return out


def _short(values, limit: int = 8) -> str:
    values = list(values)
    head = ", ".join(str(v) for v in values[:limit])
    return f"[{head}{', ...' if len(values) > limit else ''}]"


def format_summary(s: dict) -> str:
    def counts(d: dict) -> str:
        return f"min {d['min']:g}, median {d['median']:g}, max {d['max']:g}"

    read_note = "converted to RGB on read" if s["colour_order_on_disk"] != "RGB" else "read as RGB"
    lines = [
        f"path         {s['path']}",
        f"layout       {s['layout']}",
        f"colour order {s['colour_order_on_disk']} on disk ({read_note})",
        f"images       {s['images']}, {s['size']}x{s['size']}x3 uint8",
        f"subjects     {s['subjects']['count']} (images per subject: {counts(s['subjects']['images_per_subject'])}) "
        f"{_short(f'{k}:{v}' for k, v in s['subjects']['counts'].items())}",
        "sessions     " + ("none (pairs will be drawn within subjects)" if s["sessions"] is None else
                           f"{s['sessions']['count']} (images per session: {counts(s['sessions']['images_per_session'])})"),
        "gaze labels  " + ("yes" if s["has_gaze_labels"] else "NONE (test split?): gaze is NaN, head pose only"),
        f"labels (deg) {'':<12}{'min':>9}{'mean':>9}{'max':>9}",
    ]
    for name, r in s["labels_deg"].items():
        lines.append(f"  {name.replace('_', ' '):<23}{r['min']:9.2f}{r['mean']:9.2f}{r['max']:9.2f}")
    lines.append(f"split        {s['split']}")
    order = {"train": 0, "val": 1, "test": 2}
    for name, ids in sorted(s["split_subjects"].items(), key=lambda kv: (order.get(kv[0], 3), kv[0])):
        ids = ids if isinstance(ids, list) else [ids]
        lines.append(f"  subjects_{name:<6}{len(ids)} {_short(ids)}")
    f = s.get("framing") or {}
    if "camera_focal_px" in f:
        lines.append(f"framing      f {f['camera_focal_px']:.2f} px, d {f['camera_distance_mm']:g} mm at "
                     f"{s['size']} px ({f.get('camera_framing', 'from the file')})")
    if s.get("residuals_deg"):
        lines.append(f"residuals    (deg, estimate vs label){'':<2}{'n':>7}{'mean':>7}{'median':>7}{'p90':>7}{'p99':>7}{'max':>7}")
        for group, angles in s["residuals_deg"].items():
            for angle, r in angles.items():
                lines.append(f"  {group + ' ' + angle:<36}{r['count']:>7d}{r['mean']:7.2f}{r['median']:7.2f}"
                             f"{r['p90']:7.2f}{r['p99']:7.2f}{r['max']:7.2f}")
    lines.append(f"arrays       {', '.join(s['arrays'])}")
    skip = {"split", "colour_order"}
    for k, v in s["attrs"].items():
        if k not in skip:
            text = _short(v) if isinstance(v, list) else repr(v)
            lines.append(f"attr         {k} = {text}")
    return "\n".join(lines)


def _inspect(args) -> int:
    from regaze.data.dataset import open_dataset

    with open_dataset(args.path) as ds:
        summary = summarize(ds)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0


# ---------------------------------------------------------------------------------------- convert
def _convert(args) -> int:
    from regaze.data.convert import convert_to_regaze
    from regaze.errors import RegazeError

    if args.size is not None and args.size <= 0:
        raise RegazeError(f"--size must be a positive number of pixels; got {args.size}")
    if args.batch_size <= 0:
        raise RegazeError(f"--batch-size must be positive; got {args.batch_size}")
    dst = convert_to_regaze(args.src, args.dst, size=args.size, batch_size=args.batch_size,
                            compression=args.compression, resample=args.resample, split=args.split,
                            val_subjects=args.val_subjects, test_subjects=args.test_subjects,
                            overwrite=args.force, progress=not args.quiet)
    print(f"wrote {dst}", file=sys.stderr)
    return 0

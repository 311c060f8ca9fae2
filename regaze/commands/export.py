"""`regaze export --onnx FILE`: a trained redirector as one ONNX graph (regaze/export/), optionally checked
against PyTorch with ONNX Runtime."""
from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  regaze export --onnx redirector.onnx                      # the shipped reference model (64 px, synthetic faces)
  regaze export --onnx out/r64.onnx --run runs/r64 --check  # a run's best checkpoint, then the parity check
  regaze export --onnx r64_latest.onnx --run runs/r64 --which latest --opset 18

The graph (batch size dynamic, float32, angles (pitch, yaw) radians):
  inputs   images (B, 3, S, S) RGB in [-1, 1]; source_gaze, source_head, target_gaze, target_head (B, 2);
           change_gaze, change_head (B, 1): 1 = rotate to the target, 0 = keep;
           estimate_source (B, 2): columns (gaze, head), 1 = start from the model's own estimate instead of source_*
  outputs  decoded (B, 3, S, S): the decoder's image (`redirect --compose decode`);
           eyes (B, 3, S, S): the decoder's eyes pasted into the input where change_gaze = 1 (`--compose eyes`);
           gaze_est, head_est (B, 2): the model's estimates of the input's angles
The file's metadata_props hold JSON: regaze_interface, regaze_framing (focal_px, distance_mm, image_size: the
normalized camera the inputs must be in), regaze_config, regaze_checkpoint (file, sha256, step), regaze_version.

--check runs ONNX Runtime and PyTorch on the same random batches (sizes 1 and 5, the switches in every combination) and
prints the largest difference; it fails (exit 1) past 2e-3 on [-1, 1] outputs or when fewer than 99.9 % of
uint8 values agree within one level. Needs pip install 'regaze[export]' (onnx, onnxruntime).

The model: --run RUN_DIR (or a checkpoint .pt) when given; else the reference model shipped with regaze
(regaze/reference/synth64/reference.pt); else runs/demo/run (`make demo`). The file is written atomically
(a temporary file, then a rename): an existing FILE is replaced only by a complete one.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a trained model as one ONNX graph",
        description="Export the redirection model (encode, rotate, decode, eye composite) as one ONNX graph.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write (folders are created)")
    p.add_argument("--run", default=None,
                   help="training run directory or checkpoint .pt (default: the shipped reference model; without "
                        "one, runs/demo/run from `make demo`)")
    p.add_argument("--which", choices=("best", "latest"), default="best", help="checkpoint of the run (default best)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset, 16 to 20 (default 17)")
    p.add_argument("--check", action="store_true", help="after writing, compare ONNX Runtime with PyTorch")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from regaze.export.onnx_export import export_checkpoint
    from regaze.export.onnx_graph import DEFAULT_OPSET, require_onnx
    from regaze.model.pretrained import resolve_run

    require_onnx("onnx")  # before the model loads: the missing package is the first thing to hear about
    if args.check:
        require_onnx("onnxruntime")
    run, notice = resolve_run(args.run)
    if notice:
        print(notice, file=sys.stderr)
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    info, model = export_checkpoint(run, path=args.onnx, which=args.which, opset=opset)
    result = {k: info[k] for k in ("path", "bytes", "opset", "checkpoint", "step")}
    if not args.json:
        print(f"wrote {info['path']} ({info['bytes'] / 1e6:.1f} MB, opset {opset}) from {info['checkpoint']} "
              f"(step {info['step']})")
    passed = True
    if args.check:
        from regaze.export.onnx_parity import onnx_session, parity_report

        report = parity_report(onnx_session(info["path"]), model)
        result["parity"] = report
        passed = report["passed"]
        if not args.json:
            for name, w in report["worst"].items():
                extra = (f", uint8 within one level {100 * w['uint8_within_one_level']:.3f} %"
                         if "uint8_within_one_level" in w else "")
                print(f"  {name}: max |onnx - torch| {w['max_abs_diff']:.2e}{extra}")
            bounds = report["bounds"]
            print(f"parity {'passed' if passed else 'FAILED'} (bounds: {bounds['max_abs_diff']:g}, "
                  f"{100 * bounds['uint8_within_one_level']:g} % within one level)")
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0 if passed else 1

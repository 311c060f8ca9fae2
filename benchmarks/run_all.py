"""`make bench`: run every benchmark in turn on a quiet machine; each writes benchmarks/results/NAME.json.

    python -m benchmarks.run_all [--quick] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

# name -> module with main(quick: bool) -> dict. Order: cheap first.
BENCHMARKS = {
    "data_loading": "benchmarks.data_loading",
    "pair_loading": "benchmarks.pair_loading",
    "synth_speed": "benchmarks.synth_speed",
    "model_speed": "benchmarks.model_speed",
    "training_speed": "benchmarks.training_speed",
    "evaluation_speed": "benchmarks.evaluation_speed",
    "augment_speed": "benchmarks.augment_speed",
    "onnx_speed": "benchmarks.onnx_speed",
    "app_speed": "benchmarks.app_speed",
    "photo_normalization": "benchmarks.photo_normalization",  # accuracy of the photo chain, not a timing
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test of the benchmarks)")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    failed = []
    for name, module_name in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                print(f"[{name}] not present, skipped", file=sys.stderr)
                continue
            raise
        t0 = time.time()
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        try:
            result = module.main(quick=args.quick)
        except Exception as e:  # keep going: one broken benchmark must not hide the others
            print(f"[{name}] FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(name)
            continue
        print(f"[{name}] {time.time() - t0:.0f} s: {json.dumps(result.get('summary', result), default=str)[:400]}", file=sys.stderr)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

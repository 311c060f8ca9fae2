"""Updates per second of `regaze app`: how fast the page follows a slider, on the shipped reference model (64 px).

    python -m benchmarks.app_speed [--quick] [--threads 2]

Two figures, each a slider drag (gaze yaw stepping through its range, one face, eye composite, head kept):
  handler  AppHandler.update called directly: Redirector.redirect of one image (regaze/app/handler.py);
  http     the same through the app's HTTP server in this process (POST /api/update: JSON in, two PNG data URLs
           out), one request at a time as the page sends them; the browser's decoding is not counted.
Target: >= 10 updates/s on the project's 2-core CPU. Median / min / max over the repeats; other processes on the
machine make figures pessimistic. Writes benchmarks/results/app_speed.json with the machine description.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

import torch

from benchmarks.machine import describe
from benchmarks.result_file import write_result
from regaze.app import AppHandler
from regaze.app.server import make_server
from regaze.model.pretrained import load_redirector, resolve_run

RESULTS = Path(__file__).parent / "results" / "app_speed.json"
TARGET_UPDATES_PER_S = 10.0


def _rates(step, *, updates: int, repeats: int, warmup: int) -> dict:
    """Updates/s of each repeat of `updates` calls step(i) (min / median / max)."""
    for i in range(warmup):
        step(i)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(updates):
            step(i)
        rates.append(updates / (time.perf_counter() - t0))
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates), "runs": rates}


def _yaw(i: int) -> float:
    return float((i * 3) % 81 - 40)  # degrees, -40 .. 40 as a drag across the slider


def _http_rates(app: AppHandler, **plan) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server(app, host="127.0.0.1", port=port, model_note="benchmark")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}/api/update"

    def step(i):
        body = json.dumps({"face": "sample:0", "gaze": [0, _yaw(i)], "head": None, "compose": "eyes"}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=60) as r:
            json.loads(r.read())

    try:
        return _rates(step, **plan)
    finally:
        server.shutdown()
        server.server_close()


def main(quick: bool = False, *, threads: int = 2) -> dict:
    torch.set_num_threads(threads)
    run, _ = resolve_run(None)
    model, info = load_redirector(run)
    app = AppHandler(model, sample_count=1)
    plan = dict(updates=20, repeats=1, warmup=5) if quick else dict(updates=100, repeats=5, warmup=5)
    handler = _rates(lambda i: app.update(face="sample:0", gaze_deg=(0, _yaw(i)), compose="eyes"), **plan)
    http = _http_rates(app, **plan)
    result = {
        "benchmark": "app_speed",
        "quick": quick,
        "machine": {**describe(), "torch_threads": threads},
        "model": {"checkpoint": info["checkpoint"], "step": info["step"], "image_size": model.config.image_size},
        "workload": "one 64 px face, gaze yaw stepped -40..40 deg, head kept, eye composite",
        "handler_updates_per_s": handler,
        "http_updates_per_s": http,
        "target_updates_per_s": TARGET_UPDATES_PER_S,
        "summary": {"handler_updates_per_s_median": round(handler["median"], 1),
                    "http_updates_per_s_median": round(http["median"], 1),
                    "meets_target": min(handler["median"], http["median"]) >= TARGET_UPDATES_PER_S},
    }
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    a = parser.parse_args()
    r = main(quick=a.quick, threads=a.threads)
    json.dump(r["summary"], sys.stdout, indent=2)
    print()

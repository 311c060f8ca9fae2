"""Updates per second of `regaze app`: how fast the Gradio page follows a slider, on the shipped reference model
(64 px).

    python -m benchmarks.app_speed [--quick] [--threads 2] [--note TEXT]

Three figures, each a slider drag (gaze yaw stepping through its range, one face, eye composite, head kept), one
update at a time as the page sends them (its slider events are trigger_mode="always_last"):
  handler  AppHandler.update called directly: Redirector.redirect of one image (regaze/app/handler.py);
  page     the same through the Gradio server in this process, as the page's script does it: the slider's event
           (POST gradio_api/run/predict, JSON in; Gradio's routing, pre- and postprocessing, the image written to
           its cache as PNG) and then the GET of the redirected image's file;
  browser  headless Chromium on that page (needs /usr/bin/chromium, chromedriver, selenium; else skipped): set the
           range input, dispatch `input`, wait until the new image has loaded and the angles line names the target.
Target: >= 10 updates/s on the project's 2-core CPU. Median / min / max over the repeats; other processes on the
machine make figures pessimistic. Writes benchmarks/results/app_speed.json with the machine description.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import torch

from benchmarks.machine import describe
from benchmarks.result_file import write_result
from regaze.app import AppHandler
from regaze.model.pretrained import load_redirector, resolve_run

RESULTS = Path(__file__).parent / "results" / "app_speed.json"
TARGET_UPDATES_PER_S = 10.0
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# in the page: move the gaze yaw slider to arguments[0], call back once that image is shown (arguments[1])
BROWSER_STEP = """
const [yaw, done] = arguments, range = document.querySelector('#gaze_yaw input[type=range]');
const img = () => document.querySelector('#redirected img'), before = img() && img().src;
range.value = yaw; range.dispatchEvent(new Event('input', {bubbles: true}));
const wanted = ', ' + (yaw >= 0 ? '+' : '') + yaw.toFixed(1) + '); head: kept';
(function poll() {
  const i = img();
  if (i && i.src !== before && i.complete && document.getElementById('angles').textContent.includes(wanted)) done(true);
  else requestAnimationFrame(poll);
})();
"""


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


def _page_rates(url: str, **plan) -> dict:
    with urllib.request.urlopen(url + "config", timeout=30) as r:
        fn_index = [d.get("api_name") for d in json.loads(r.read())["dependencies"]].index("gaze_yaw")

    def step(i):
        body = json.dumps({"data": ["sample:0", "eyes", 0, _yaw(i), 0, 0, None, None], "fn_index": fn_index,
                           "session_hash": "benchmark"}).encode()
        request = urllib.request.Request(url + "gradio_api/run/predict", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            image = json.loads(r.read())["data"][0]
        with urllib.request.urlopen(image["url"], timeout=60) as r:
            r.read()

    return _rates(step, **plan)


def _browser_rates(url: str, **plan) -> dict | None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_script_timeout(30)
        driver.get(url)
        end = time.monotonic() + 60
        while not driver.execute_script("const i = document.querySelector('#redirected img'); return i && i.complete"):
            if time.monotonic() > end:
                raise TimeoutError("the page showed no image in 60 s")
            time.sleep(0.1)
        # _yaw(i) != _yaw(i - 1): every step is a new image for the page to show
        return _rates(lambda i: driver.execute_async_script(BROWSER_STEP, _yaw(i)), **plan)
    finally:
        driver.quit()


def main(quick: bool = False, *, threads: int = 2, note: str = "") -> dict:
    load_before = os.getloadavg()  # (1, 5, 15 min): other jobs on the machine show here
    from regaze.app.page import CSS, build_page
    from regaze.app.server import serve

    torch.set_num_threads(threads)
    run, _ = resolve_run(None)
    model, info = load_redirector(run)
    app = AppHandler(model, sample_count=1)
    plan = dict(updates=20, repeats=1, warmup=5) if quick else dict(updates=100, repeats=5, warmup=5)
    handler = _rates(lambda i: app.update(face="sample:0", gaze_deg=(0, _yaw(i)), compose="eyes"), **plan)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = build_page(app, model_note="benchmark")
    url = serve(page, host="127.0.0.1", port=port, css=CSS)
    try:
        page_rates = _page_rates(url, **plan)
        browser = _browser_rates(url, **plan)
    finally:
        page.close(verbose=False)
    medians = {"handler": handler["median"], "page": page_rates["median"],
               **({"browser": browser["median"]} if browser else {})}
    result = {
        "benchmark": "app_speed",
        "quick": quick,
        "machine": {**describe(), "torch_threads": threads, "load_average_before": load_before},
        "note": note,
        "model": {"checkpoint": info["checkpoint"], "step": info["step"], "image_size": model.config.image_size},
        "gradio": version("gradio"),
        "workload": "one 64 px face, gaze yaw stepped -40..40 deg, head kept, eye composite",
        "handler_updates_per_s": handler,
        "page_updates_per_s": page_rates,
        "browser_updates_per_s": browser,  # None: no Chromium / chromedriver / selenium here
        "target_updates_per_s": TARGET_UPDATES_PER_S,
        "summary": {**{f"{k}_updates_per_s_median": round(v, 1) for k, v in medians.items()},
                    "meets_target": min(medians.values()) >= TARGET_UPDATES_PER_S},
    }
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--note", default="", help="written into the result (say whether the machine was quiet)")
    a = parser.parse_args()
    r = main(quick=a.quick, threads=a.threads, note=a.note)
    json.dump(r["summary"], sys.stdout, indent=2)
    print()

"""`regaze app` (regaze/app/): the update handler is Redirector.redirect, bad uploads and bad starts give messages,
the page needs nothing from the network, and (browser test) a slider moved in headless Chromium shows the
model's image for those angles."""
from __future__ import annotations

import base64
import io
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from regaze.app import AppHandler, UploadError, sample_faces
from regaze.app.server import make_server
from regaze.cli import main
from regaze.errors import RegazeError
from regaze.model.pretrained import load_redirector, resolve_run

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "app_screenshot.png"


@pytest.fixture(scope="module")
def model():
    return load_redirector(resolve_run(None)[0])[0]


@pytest.fixture(scope="module")
def app(model):
    return AppHandler(model, sample_count=3)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _from_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,"), url[:40]
    return np.array(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("gaze_deg, head_deg, compose", [((10, -20), None, "eyes"), ((10, -20), None, "decode"),
                                                         (None, (5, 30), "eyes"), ((-30, 35), (-20, -40), "decode")])
def test_update_is_redirector_redirect(app, model, gaze_deg, head_deg, compose):
    out = app.update(face="sample:1", gaze_deg=gaze_deg, head_deg=head_deg, compose=compose)
    source = app.samples[1].image
    rad = lambda d: None if d is None else np.radians(d)  # noqa: E731
    expected, sources = model.redirect(source, gaze=rad(gaze_deg), head=rad(head_deg),
                                       compose="auto" if compose == "eyes" else "decode")
    assert np.array_equal(out["source"], source)
    assert out["redirected"].dtype == np.uint8 and np.array_equal(out["redirected"], expected)
    assert out["source_gaze_deg"] == pytest.approx(np.degrees(sources["gaze"].numpy()), abs=0.01)
    assert out["source_head_deg"] == pytest.approx(np.degrees(sources["head"].numpy()), abs=0.01)


def test_sample_faces_are_fixed_distinct_and_at_the_model_size(app):
    again = sample_faces(size=64, count=3)
    assert [s.image.shape for s in again] == [(64, 64, 3)] * 3
    assert all(np.array_equal(a.image, b.image) for a, b in zip(again, app.samples))
    assert not np.array_equal(again[0].image, again[1].image)


def test_out_of_range_angles_and_unknown_faces_are_errors(app):
    with pytest.raises(RegazeError, match=r"gaze yaw must be in \[-40, 40\]"):
        app.update(face="sample:0", gaze_deg=(0, 41))
    with pytest.raises(RegazeError, match="head pitch"):
        app.update(face="sample:0", head_deg=(math.nan, 0))
    with pytest.raises(RegazeError, match="compose must be one of"):
        app.update(face="sample:0", compose="blend")
    with pytest.raises(RegazeError, match="unknown face"):
        app.update(face="upload:nope")


def test_square_upload_is_a_crop_resized_to_the_model(app, model):
    big = np.array(Image.fromarray(app.samples[2].image).resize((128, 128), Image.Resampling.BICUBIC))
    reply = app.add_upload(_png(big))
    assert "resized to 64x64" in reply["note"]
    out = app.update(face=reply["face"], gaze_deg=(0, 0))
    assert out["source"].shape == (64, 64, 3)
    assert np.array_equal(out["redirected"], model.redirect(out["source"], gaze=np.radians((0, 0)))[0])


@pytest.mark.parametrize("data, message", [
    (b"", "the upload is empty"),
    (b"%PDF-1.4 not an image", "not an image this page can read"),
    (_png(np.zeros((8, 8, 3), np.uint8)), "too small to hold a face"),
    (_png(np.full((120, 200, 3), 128, np.uint8)), "no face found|photo extra"),
])
def test_bad_uploads_give_a_message(app, data, message):
    with pytest.raises(UploadError, match=message):
        app.add_upload(data)


def test_raw_photo_upload_is_normalized_to_its_largest_face(app):
    pytest.importorskip("cv2")
    skimage = pytest.importorskip("skimage")
    photo = (Path(skimage.__file__).parent / "data" / "astronaut.png").read_bytes()  # 512x512: larger than 4x64
    reply = app.add_upload(photo)
    assert reply["note"].startswith("photo 512x512 px, largest face normalized")
    assert app.update(face=reply["face"], gaze_deg=(0, 0))["source"].shape == (64, 64, 3)


@pytest.fixture(scope="module")
def server(app):
    port = _free_port()
    srv = make_server(app, host="127.0.0.1", port=port, model_note="test model")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    srv.shutdown()
    srv.server_close()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_server_answers_with_the_handler_image_and_messages_not_tracebacks(server, app):
    status, reply = _post(server + "api/update", json.dumps({"face": "sample:0", "gaze": [5, 25], "head": None,
                                                              "compose": "decode"}).encode())
    assert status == 200
    direct = app.update(face="sample:0", gaze_deg=(5, 25), compose="decode")
    assert np.array_equal(_from_data_url(reply["redirected"]), direct["redirected"])
    assert np.array_equal(_from_data_url(reply["source"]), direct["source"])
    for url, body, message in [("api/upload", b"GIF89a broken", "not an image"),
                               ("api/update", b"{not json", "not JSON"),
                               ("api/update", json.dumps({"face": "sample:0", "gaze": [0, 90]}).encode(), "gaze yaw")]:
        status, reply = _post(server + url, body)
        assert status == 400 and message in reply["error"] and "Traceback" not in reply["error"]


def test_page_fetches_nothing_from_the_network(server):
    with urllib.request.urlopen(server, timeout=30) as r:
        page = r.read().decode()
    assert 'id="gaze_yaw"' in page and 'id="redirected"' in page
    assert "http://" not in page and "https://" not in page and "//fonts." not in page


def test_a_port_in_use_is_a_clear_error(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port), "--no-browser"]) == 1
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_a_checkpoint_that_is_not_a_regaze_run_is_a_clear_error(tmp_path, capsys):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    assert main(["app", "--run", str(tmp_path / "other.pt"), "--port", str(_free_port()), "--no-browser"]) == 1
    assert "checkpoint lacks keys" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the real browser
def _wait(predicate, *, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.mark.browser
def test_a_slider_moved_in_chromium_shows_the_models_image(model, tmp_path):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.keys import Keys

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen([sys.executable, "-m", "regaze.cli", "app", "--port", str(port), "--no-browser"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = None
    try:
        def up():
            assert proc.poll() is None, f"regaze app exited: {proc.stdout.read()}"
            try:
                return urllib.request.urlopen(url, timeout=2).status == 200
            except OSError:
                return False

        _wait(up, timeout_s=40, what=f"regaze app at {url}")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1120,820",
                    "--disable-gpu", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(30)
        driver.get(url)
        count = lambda: int(driver.execute_script("return document.getElementById('redirected').dataset.count || 0"))  # noqa: E731
        _wait(lambda: count() >= 1, timeout_s=30, what="the first image")
        first = driver.find_element("id", "redirected").get_attribute("src")

        slider = driver.find_element("id", "gaze_yaw")
        slider.click()  # focus (and a click moves it to the middle: 0)
        for _ in range(20):
            slider.send_keys(Keys.ARROW_RIGHT)  # an `input` event per key, as a user's drag
        target = [float(driver.find_element("id", i).get_attribute("value")) for i in ("gaze_pitch", "gaze_yaw")]
        assert target[1] >= 15

        def shown():
            request = driver.execute_script("return document.getElementById('redirected').dataset.request")
            return request and json.loads(request)["gaze"] == target and json.loads(request)

        request = _wait(shown, timeout_s=30, what=f"the image for gaze {target}")
        assert request["head"] is None and request["compose"] == "eyes"
        image = driver.find_element("id", "redirected").get_attribute("src")
        assert image != first
        source = _from_data_url(driver.find_element("id", "source").get_attribute("src"))
        shown_image = _from_data_url(image)
        expected = model.redirect(source, gaze=np.radians(target), head=None, compose="auto")[0]
        within = (np.abs(shown_image.astype(int) - expected.astype(int)) <= 1).all(axis=2).mean()
        assert within >= 0.99, f"only {within:.1%} of pixels within one grey level of Redirector.redirect"

        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(r.startswith((url, "data:")) for r in resources), resources
        assert "updated in" in driver.find_element("id", "status").text
        driver.save_screenshot(str(tmp_path / "app_screenshot.png"))
        if os.environ.get("REGAZE_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():  # the README's picture
            SCREENSHOT.parent.mkdir(exist_ok=True)
            driver.save_screenshot(str(SCREENSHOT))
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

"""`regaze app` (regaze/app/, a Gradio page): the update handler is Redirector.redirect, the page's events answer
with its images, bad uploads and bad starts give messages, the page needs nothing from the network, and (browser
test) a slider moved in headless Chromium shows the model's image for those angles."""
from __future__ import annotations

import io
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from regaze.app import AppHandler, UploadError, sample_faces
from regaze.cli import main
from regaze.errors import RegazeError
from regaze.model.pretrained import load_redirector, resolve_run

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "app_screenshot.png"
# `regaze app` in a child process that refuses (and reports) any connection or name lookup beyond this machine
OFFLINE_APP = r"""
import socket, sys
LOCAL = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::")
def refused(what):
    print(f"NETWORK: {what}", file=sys.stderr, flush=True)
    raise OSError(f"the network is off in this test ({what})")
def guard(original):
    def connect(self, address, *a):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL:
            refused(address)
        return original(self, address, *a)
    return connect
socket.socket.connect, socket.socket.connect_ex = guard(socket.socket.connect), guard(socket.socket.connect_ex)
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    if host is not None and host not in LOCAL and not str(host).startswith("127."):
        refused(host)
    return _getaddrinfo(host, *a, **k)
socket.getaddrinfo = getaddrinfo
from regaze.cli import main
sys.exit(main(sys.argv[1:]))
"""


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


def _read_png(source) -> np.ndarray:
    """A file path or an http URL -> (H, W, 3) uint8."""
    if str(source).startswith("http"):
        with urllib.request.urlopen(source, timeout=30) as r:
            source = io.BytesIO(r.read())
    return np.array(Image.open(source).convert("RGB"))


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


# ------------------------------------------------------------------------------ the Gradio page, in this process
@pytest.fixture(scope="module")
def served(app):
    pytest.importorskip("gradio", reason="needs gradio (the app extra)")
    from regaze.app.page import CSS, build_page
    from regaze.app.server import serve

    page = build_page(app, model_note="test model")
    url = serve(page, host="127.0.0.1", port=_free_port(), css=CSS)
    yield url
    page.close(verbose=False)


def _page_event(url: str, api_name: str, *inputs, session: str = "test") -> list:
    """One event of the page as its script sends it (POST gradio_api/run/predict: the events skip the queue) ->
    every output's value (images as FileData dicts, None for a session state)."""
    with urllib.request.urlopen(url + "config", timeout=30) as r:
        fn_index = [d.get("api_name") for d in json.loads(r.read())["dependencies"]].index(api_name)
    body = json.dumps({"data": list(inputs), "fn_index": fn_index, "session_hash": session}).encode()
    request = urllib.request.Request(url + "gradio_api/run/predict", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())["data"]


def _page_upload(url: str, path: Path) -> dict:
    """A file sent as the page's upload box sends it -> the FileData the upload event gets."""
    import httpx  # a dependency of gradio

    with open(path, "rb") as f:
        reply = httpx.post(url + "gradio_api/upload", files={"files": (path.name, f)}, timeout=60)
    reply.raise_for_status()
    return {"path": reply.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def test_a_slider_event_answers_with_the_handler_image(served, app):
    redirected, angles, message = _page_event(served, "gaze_yaw", "sample:0", "decode", 5, 25, 0, 0, None, None)[:3]
    direct = app.update(face="sample:0", gaze_deg=(5, 25), compose="decode")
    assert np.array_equal(_read_png(redirected["url"]), direct["redirected"]) and message == ""
    assert "Target gaze: (+5.0, +25.0); head: kept" in angles
    assert f"gaze ({direct['source_gaze_deg'][0]:+.1f}, {direct['source_gaze_deg'][1]:+.1f})" in angles


def test_uploads_through_the_page_give_a_crop_or_a_message(served, app, model, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "crop.png").write_bytes(_png(np.array(Image.fromarray(app.samples[2].image).resize((128, 128)))))
    message = _page_event(served, "upload", _page_upload(served, tmp_path / "notes.png"), "eyes", None)[3]
    assert "notes.png: the upload is not an image this page can read" in message and "Traceback" not in message
    out = _page_event(served, "upload", _page_upload(served, tmp_path / "crop.png"), "eyes", None)
    source, redirected, angles, message = out[:4]
    assert "crop.png: normalized crop, 128x128 px resized to 64x64" in message
    crop, face = _read_png(source["url"]), out[-2]["value"]  # the face list: the upload is chosen
    assert face.startswith("upload:") and np.array_equal(crop, app.face_image(face))
    assert np.array_equal(_read_png(redirected["url"]), model.redirect(crop, compose="auto")[0])
    redirected = _page_event(served, "gaze_yaw", face, "eyes", 0, 10, 0, 0, None, None)[0]  # a choice of this session
    assert np.array_equal(_read_png(redirected["url"]), model.redirect(crop, gaze=np.radians((0, 10)))[0])


def test_the_page_loads_nothing_from_other_hosts(served):
    with urllib.request.urlopen(served, timeout=30) as r:
        page = r.read().decode()
    with urllib.request.urlopen(served + "config", timeout=30) as r:
        config = json.loads(r.read())
    assert config["analytics_enabled"] is False and config["footer_links"] == [] and not config["stylesheets"]
    loaded = re.findall(r"<(?:script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", page)
    assert loaded and not [u for u in loaded if re.match(r"(https?:)?//", u) and not u.startswith(served)], loaded
    with urllib.request.urlopen(served + "theme.css", timeout=30) as r:
        theme = r.read().decode()
    assert "googleapis" not in theme and "system-ui" in theme


def test_without_gradio_the_command_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert main(["app", "--port", str(_free_port()), "--no-browser"]) == 1
    assert "pip install 'regaze[app]'" in capsys.readouterr().err


def test_a_port_in_use_is_a_clear_error(capsys):
    pytest.importorskip("gradio", reason="needs gradio (the app extra)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port), "--no-browser"]) == 1
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_a_checkpoint_that_is_not_a_regaze_run_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("gradio", reason="needs gradio (the app extra)")
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
    pytest.importorskip("gradio", reason="needs gradio (the app extra)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.keys import Keys

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", OFFLINE_APP, "app", "--port", str(port), "--no-browser"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    driver = None
    try:
        def up():
            assert proc.poll() is None, f"regaze app exited: {log.read_text()}"
            try:
                return urllib.request.urlopen(url, timeout=2).status == 200
            except OSError:
                return False

        _wait(up, timeout_s=60, what=f"regaze app at {url}")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                    "--disable-gpu", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(30)
        driver.get(url)
        text = lambda ident: driver.find_element("id", ident).text  # noqa: E731
        image_url = lambda ident: driver.execute_script(  # noqa: E731
            f"const i = document.querySelector('#{ident} img'); return i && i.complete ? i.src : null")
        first = _wait(lambda: image_url("redirected"), timeout_s=30, what="the first image")
        assert "Target gaze: kept; head: kept" in text("angles")

        slider = driver.find_element("css selector", "#gaze_yaw input[type=range]")
        slider.click()  # focus (a click in the middle also moves it: to 0)
        for _ in range(20):
            slider.send_keys(Keys.ARROW_RIGHT)  # an `input` event per key, as a user's drag
        target = [float(driver.find_element("css selector", f"#{i} input[type=number]").get_attribute("value"))
                  for i in ("gaze_pitch", "gaze_yaw")]
        assert target[1] >= 15
        wanted = f"Target gaze: ({target[0]:+.1f}, {target[1]:+.1f}); head: kept"
        _wait(lambda: wanted in text("angles") and image_url("redirected") not in (None, first), timeout_s=30,
              what=f"the image for gaze {target}")
        sample_url = _wait(lambda: image_url("source"), timeout_s=30, what="the source image")
        source, shown = _read_png(sample_url), _read_png(image_url("redirected"))
        expected = model.redirect(source, gaze=np.radians(target), head=None, compose="auto")[0]
        within = (np.abs(shown.astype(int) - expected.astype(int)) <= 1).all(axis=2).mean()
        assert within >= 0.999, f"only {within:.2%} of pixels within one grey level of Redirector.redirect"
        driver.save_screenshot(str(tmp_path / "app_screenshot.png"))  # the test's artifact
        if os.environ.get("REGAZE_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():  # the README's picture
            SCREENSHOT.parent.mkdir(exist_ok=True)
            driver.save_screenshot(str(SCREENSHOT))

        gaze_url = image_url("redirected")
        head_pitch = float(driver.find_element("css selector", "#head_pitch input[type=number]").get_attribute("value"))
        typed = driver.find_element("css selector", "#head_yaw input[type=number]")  # past the end of its slider
        typed.clear()
        typed.send_keys("90\n")
        _wait(lambda: f"; head: ({head_pitch:+.1f}, +45.0). Shown" in text("angles") and
              image_url("redirected") not in (None, gaze_url), timeout_s=30, what="head yaw 90 clamped to 45")
        expected = model.redirect(source, gaze=np.radians(target), head=np.radians((head_pitch, 45)), compose="auto")[0]
        shown = _read_png(image_url("redirected"))
        assert (np.abs(shown.astype(int) - expected.astype(int)) <= 1).all(axis=2).mean() >= 0.999

        upload = driver.find_element("css selector", "#upload input[type=file]")
        (tmp_path / "notes.png").write_text("not a picture")
        upload.send_keys(str(tmp_path / "notes.png"))
        _wait(lambda: "notes.png: the upload is not an image this page can read" in text("message"), timeout_s=30,
              what="the message for a file that is not an image")
        crop = sample_faces(size=64, count=3)[2].image
        (tmp_path / "crop.png").write_bytes(_png(crop))
        driver.find_element("css selector", "#upload input[type=file]").send_keys(str(tmp_path / "crop.png"))
        _wait(lambda: "crop.png: normalized crop, 64x64 px" in text("message") and
              image_url("source") not in (None, sample_url), timeout_s=30, what="the uploaded face")
        assert np.array_equal(_read_png(image_url("source")), crop)

        requests = {json.loads(e["message"])["message"]["params"]["request"]["url"]
                    for e in driver.get_log("performance") if '"Network.requestWillBeSent"' in e["message"]}
        assert requests and not [r for r in requests if not r.startswith((url, "data:", "blob:"))], requests
        assert "NETWORK:" not in log.read_text(), log.read_text()
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

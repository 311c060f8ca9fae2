"""The page `regaze app` serves: one HTML document with its CSS and script inline, in system fonts, so that
nothing is fetched from the network.

The script sends the face, target angles and compose choice to POST /api/update on every slider `input` event,
one request at a time: a move made while a request is out is sent when it returns, latest value only, so the
image keeps up with the slider instead of queueing stale frames. Each pair of sliders starts at the source angles
the model read and means "keep" (None) until it is moved; "Keep source angles" returns to that.
"""
from __future__ import annotations

import html
import json

__all__ = ["build_page"]

FONTS = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif'
DISPLAY_PX = 256  # the 64 px images shown 4x, pixels kept square

CSS = """
body { font-family: %(fonts)s; margin: 1rem 1.5rem; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; } p.note { color: #555; margin: 0 0 1rem; font-size: .9rem; }
.layout { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.controls { flex: 0 0 22rem; } .output { flex: 1 1 30rem; min-width: 0; } .controls label { display: block; font-size: .9rem; margin: .6rem 0 .2rem; }
.slider { display: flex; gap: .5rem; align-items: center; } .slider input[type=range] { flex: 1; }
.slider input[type=number] { width: 4rem; }
fieldset { border: 1px solid #ccc; border-radius: 6px; margin: .8rem 0; padding: .4rem .8rem .8rem; }
#message { min-height: 1.2rem; color: #b00020; font-size: .9rem; margin: .4rem 0; }
#message.ok { color: #2e6b2e; }
.images { display: flex; gap: 1rem; } figure { margin: 0; text-align: center; }
figure img { width: %(px)dpx; height: %(px)dpx; image-rendering: pixelated; background: #ddd; border-radius: 4px; }
figcaption { font-size: .9rem; margin-top: .3rem; } #angles { font-size: .9rem; margin-top: .8rem; }
#status { color: #777; font-size: .8rem; margin-top: .4rem; }
"""

SCRIPT = r"""
const CONFIG = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);
const state = {face: CONFIG.faces[0].face, gaze: null, head: null, compose: "eyes"};
let inFlight = false, pending = false, sent = 0;

function pair(name) { return [Number($(name + "_pitch").value), Number($(name + "_yaw").value)]; }
function setPair(name, deg) {
  for (const [i, part] of [[0, "pitch"], [1, "yaw"]]) {
    const r = $(name + "_" + part), v = Math.max(Number(r.min), Math.min(Number(r.max), Math.round(deg[i])));
    r.value = v; $(name + "_" + part + "_num").value = v;
  }
}
function fmt(deg) { return "pitch " + deg[0].toFixed(1) + ", yaw " + deg[1].toFixed(1) + " deg"; }
function message(text, ok) { $("message").textContent = text || ""; $("message").className = ok ? "ok" : ""; }

function schedule() { if (inFlight) { pending = true; } else { send(); } }
async function send() {
  inFlight = true; pending = false;
  const request = {face: state.face, gaze: state.gaze, head: state.head, compose: state.compose};
  const t0 = performance.now();
  try {
    const response = await fetch("api/update", {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify(request)});
    const reply = await response.json();
    if (reply.error) { message(reply.error); }
    else {
      if ($("message").className !== "ok") message("");
      $("source").src = reply.source; $("redirected").src = reply.redirected;
      $("redirected").dataset.request = JSON.stringify(request);
      $("redirected").dataset.count = String(++sent);
      if (request.gaze === null && state.gaze === null) setPair("gaze", reply.source_gaze_deg);
      if (request.head === null && state.head === null) setPair("head", reply.source_head_deg);
      $("angles").textContent = "The model reads the source as gaze " + fmt(reply.source_gaze_deg) + "; head " +
        fmt(reply.source_head_deg) + ". Target gaze: " + (request.gaze ? fmt(request.gaze) : "kept") +
        "; head: " + (request.head ? fmt(request.head) : "kept") + ".";
      $("status").textContent = "updated in " + Math.round(performance.now() - t0) + " ms (" + reply.compose + ")";
    }
  } catch (e) { message("the app did not answer (" + e + "); is `regaze app` still running?"); }
  inFlight = false;
  if (pending) send();
}

function moved(name, part, fromNumber) {
  const r = $(name + "_" + part), n = $(name + "_" + part + "_num");
  if (fromNumber) { if (n.value === "" || isNaN(Number(n.value))) return;
                    r.value = Math.max(Number(r.min), Math.min(Number(r.max), Number(n.value))); }
  n.value = r.value;
  state[name] = pair(name); schedule();
}
for (const name of ["gaze", "head"]) for (const part of ["pitch", "yaw"]) {
  $(name + "_" + part).addEventListener("input", () => moved(name, part, false));
  $(name + "_" + part + "_num").addEventListener("input", () => moved(name, part, true));
}
function keepSource() { state.gaze = null; state.head = null; schedule(); }
$("keep").addEventListener("click", keepSource);
$("face").addEventListener("change", () => { state.face = $("face").value; message(""); keepSource(); });
for (const radio of document.querySelectorAll("input[name=compose]"))
  radio.addEventListener("change", () => { state.compose = radio.value; schedule(); });
$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0]; if (!file) return;
  message("reading " + file.name + " ...", true);
  try {
    const response = await fetch("api/upload", {method: "POST", body: file,
                                                 headers: {"Content-Type": "application/octet-stream"}});
    const reply = await response.json();
    if (reply.error) { message(file.name + ": " + reply.error); return; }
    const option = document.createElement("option");
    option.value = reply.face; option.textContent = "upload: " + file.name;
    $("face").appendChild(option); $("face").value = reply.face;
    state.face = reply.face; message(file.name + ": " + reply.note, true); keepSource();
  } catch (e) { message("the upload failed (" + e + ")"); }
});
schedule();
"""


def _slider(name: str, part: str, lo: int, hi: int) -> str:
    ident = f"{name}_{part}"
    return (f'<label for="{ident}">{name} {part} (deg, {lo} to {hi})</label><div class="slider">'
            f'<input type="range" id="{ident}" min="{lo}" max="{hi}" step="1" value="0">'
            f'<input type="number" id="{ident}_num" min="{lo}" max="{hi}" step="1" value="0" '
            f'aria-label="{name} {part} degrees"></div>')


def build_page(*, faces: list[dict], size: int, ranges: dict, compose_choices: dict, model_note: str) -> str:
    """The whole page. faces: [{"face": key, "name": label}]; ranges: slider -> (min, max) deg;
    compose_choices: value -> (Redirector compose, label); model_note: which model answers."""
    if not faces:
        raise ValueError("the page needs at least one face")
    config = json.dumps({"faces": faces, "size": size}).replace("</", "<\\/")
    options = "".join(f'<option value="{html.escape(f["face"])}">{html.escape(f["name"])}</option>' for f in faces)
    radios = "".join(f'<label><input type="radio" name="compose" value="{html.escape(k)}"'
                     f'{" checked" if i == 0 else ""}> {html.escape(label)}</label>'
                     for i, (k, (_, label)) in enumerate(compose_choices.items()))
    sliders = {name: "".join(_slider(name, part, *ranges[f"{name}_{part}"]) for part in ("pitch", "yaw"))
               for name in ("gaze", "head")}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>regaze: gaze and head redirection</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS % {"fonts": FONTS, "px": DISPLAY_PX}}</style></head>
<body>
<h1>regaze: gaze and head redirection</h1>
<p class="note">{html.escape(model_note)}; {size} px normalized faces; angles (pitch, yaw)
in degrees in the normalized camera.</p>
<div class="layout">
<div class="controls">
<label for="face">Face</label><select id="face">{options}</select>
<label for="upload">Or upload your own: a square normalized crop (resized to {size} px) or a photo</label>
<input type="file" id="upload" accept="image/png,image/jpeg,image/*">
<div id="message" role="status"></div>
<fieldset><legend>Target gaze</legend>{sliders["gaze"]}</fieldset>
<fieldset><legend>Target head</legend>{sliders["head"]}</fieldset>
<fieldset><legend>Compose</legend>{radios}</fieldset>
<button id="keep" type="button">Keep source angles</button>
</div>
<div class="output">
<div class="images">
<figure><img id="source" alt="source face"><figcaption>source</figcaption></figure>
<figure><img id="redirected" alt="redirected face"><figcaption>redirected</figcaption></figure>
</div>
<div id="angles"></div><div id="status"></div>
</div></div>
<script type="application/json" id="config">{config}</script>
<script>{SCRIPT}</script>
</body></html>
"""

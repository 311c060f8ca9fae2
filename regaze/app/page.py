"""The page of `regaze app` as a Gradio gr.Blocks: four sliders (target gaze and head, pitch / yaw degrees), a face
list (held-out samples, then the session's uploads), an upload box, the compose choice, source | redirected images
and the source angles the model read.

Every model call is AppHandler.update. Each pair of sliders starts at the source angles the model read and means
"keep" (None) until it is moved: per-session flags (gr.State) say which pairs the user moved; choosing a face or
"Keep source angles" clears them. Slider events are `.input` (the user's moves, not the values this page sets),
trigger_mode="always_last" (a move made while the model runs is sent when it returns, latest value only) and skip
Gradio's queue, so the image keeps up with a drag. Messages (a bad upload, an angle out of range) are shown in the
page's message line, never a traceback.
"""
from __future__ import annotations

import html
import json
from functools import partial
from pathlib import Path

import numpy as np

from regaze.app.faces import UploadError
from regaze.app.handler import COMPOSE_CHOICES, SLIDER_RANGES_DEG, AppHandler
from regaze.app.server import require_gradio
from regaze.errors import RegazeError

__all__ = ["build_page", "CSS", "SLIDERS"]

SLIDERS = ("gaze_pitch", "gaze_yaw", "head_pitch", "head_yaw")  # also the sliders' elem_id
DISPLAY_PX = 256  # images shown at 256 px (a 64 px model's 4x), pixels kept square
CSS = """
#source img, #redirected img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
#message { min-height: 1.4rem; } #message .error { color: #b00020; } #message .note { color: #2e6b2e; }
#angles { font-size: .95rem; } #title h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
"""
FAST = dict(queue=False, show_progress="hidden")  # answers come straight back: no queue, no spinner


def _fmt(pitchyaw) -> str:
    return f"({pitchyaw[0]:+.1f}, {pitchyaw[1]:+.1f})"


def _message(text: str, *, error: bool) -> str:
    return f'<span class="{"error" if error else "note"}">{html.escape(text)}</span>' if text else ""


def _angles(result: dict, *, gaze_deg, head_deg) -> str:
    """The line under the images: the source angles the model read, the targets it was given, how it composed."""
    how = "the decoder's image" if result["compose"] == "decode" else "the eye composite where only the gaze moves"
    return html.escape(f"The model reads the source as gaze {_fmt(result['source_gaze_deg'])}, head "
                       f"{_fmt(result['source_head_deg'])} deg. Target gaze: "
                       f"{'kept' if gaze_deg is None else _fmt(gaze_deg)}; head: "
                       f"{'kept' if head_deg is None else _fmt(head_deg)}. Shown: {how} "
                       f"(Redirector compose={result['compose']!r}).")


def _clamped_in_page() -> str:
    """The sliders' events' js= hook: face, compose, the four slider values (clamped to their ranges) and the
    states, as sent. A number typed past a slider's end would otherwise reach Gradio's own bounds check, which
    answers with an error toast and a traceback in the terminal."""
    bounds = json.dumps([SLIDER_RANGES_DEG[name] for name in SLIDERS])
    return (f"(face, compose, ...rest) => {{ const b = {bounds}; return [face, compose, ...rest.map((v, i) => "
            f"{{ const x = Number(v); return i < 4 && Number.isFinite(x) ? Math.min(b[i][1], Math.max(b[i][0], x)) "
            f": v; }})]; }}")


def _slider_value(name: str, value_deg: float) -> float:
    lo, hi = SLIDER_RANGES_DEG[name]
    return float(np.clip(round(value_deg), lo, hi))


def build_page(app: AppHandler, *, model_note: str):
    """The gr.Blocks page over `app`, not launched (server.serve does that, with CSS). model_note: which model
    answers."""
    gr = require_gradio()
    sample_choices = [(f["name"], f["face"]) for f in app.face_choices()]

    def redirect(face, compose, gaze_deg, head_deg):
        """-> (redirected image or skip, angles line or skip, message)"""
        try:
            result = app.update(face=face, gaze_deg=gaze_deg, head_deg=head_deg, compose=compose)
        except RegazeError as e:
            return gr.skip(), gr.skip(), _message(str(e), error=True)
        return result["redirected"], _angles(result, gaze_deg=gaze_deg, head_deg=head_deg), ""

    def moved(face, compose, gp, gy, hp, hy, gaze_moved, head_moved, *, pair: str | None = None):
        """A slider of `pair` ("gaze" / "head") moved, or (pair None) the compose choice: redirect, pair now set."""
        gaze_moved, head_moved = gaze_moved or pair == "gaze", head_moved or pair == "head"
        return (*redirect(face, compose, (gp, gy) if gaze_moved else None, (hp, hy) if head_moved else None),
                gaze_moved, head_moved)

    def kept_source(face, compose, note=""):
        """A face shown as it is: sliders set to the angles the model read, both pairs kept."""
        try:
            result = app.update(face=face, compose=compose)
        except RegazeError as e:
            return (gr.skip(),) * 3 + (_message(str(e), error=True),) + (gr.skip(),) * 6
        values = [_slider_value(f"{n}_{p}", v) for n, key in (("gaze", "source_gaze_deg"), ("head", "source_head_deg"))
                  for p, v in zip(("pitch", "yaw"), result[key])]
        return (result["source"], result["redirected"], _angles(result, gaze_deg=None, head_deg=None),
                _message(note, error=False), False, False, *values)

    def uploaded(path, compose, uploads):
        """A file dropped on the upload box -> the face list with it chosen, and the face shown as it is."""
        if not path:
            return (gr.skip(),) * 13
        name = Path(path).name
        try:
            reply = app.add_upload(Path(path).read_bytes())
        except (UploadError, OSError) as e:
            failed = _message(f"{name}: {e}", error=True)
            return (gr.skip(),) * 3 + (failed,) + (gr.skip(),) * 6 + (None, gr.skip(), uploads)
        uploads = [*uploads, (f"upload: {name}", reply["face"])]
        shown = kept_source(reply["face"], compose, note=f"{name}: {reply['note']}")
        return (*shown, None, gr.update(choices=sample_choices + uploads, value=reply["face"]), uploads)

    with gr.Blocks(title="regaze: gaze and head redirection", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as page:  # hourly, the cached images and uploads older than an hour
        gr.HTML(f"<h1>regaze: gaze and head redirection</h1><p>{html.escape(model_note)}; {app.size} px normalized "
                f"faces; angles (pitch, yaw) in degrees in the normalized camera.</p>", elem_id="title")
        gaze_moved, head_moved, uploads = gr.State(False), gr.State(False), gr.State([])
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                face = gr.Dropdown(choices=sample_choices, value=sample_choices[0][1], label="Face", elem_id="face")
                upload = gr.File(label=f"Or upload your own: a square normalized crop (resized to {app.size} px) "
                                       f"or a photo (its largest face is normalized)", file_types=["image"],
                                 type="filepath", height=110, elem_id="upload")
                message = gr.HTML(elem_id="message")
                sliders = []
                for name in SLIDERS:
                    lo, hi = SLIDER_RANGES_DEG[name]
                    sliders.append(gr.Slider(lo, hi, value=0, step=1, label=f"target {name.replace('_', ' ')} (deg)",
                                             buttons=[], elem_id=name))
                compose = gr.Radio(choices=[(label, key) for key, (_, label) in COMPOSE_CHOICES.items()],
                                   value=next(iter(COMPOSE_CHOICES)), label="Compose", elem_id="compose")
                keep = gr.Button("Keep source angles", elem_id="keep")
            with gr.Column(scale=3):
                with gr.Row():
                    images = [gr.Image(label=label, format="png", interactive=False, height=DISPLAY_PX,
                                       width=DISPLAY_PX, buttons=["download"], elem_id=label)
                              for label in ("source", "redirected")]
                angles = gr.HTML(elem_id="angles")

        source, redirected = images
        shown = [source, redirected, angles, message, gaze_moved, head_moved, *sliders]
        state = [face, compose, *sliders, gaze_moved, head_moved]
        answer = [redirected, angles, message, gaze_moved, head_moved]
        clamped = _clamped_in_page()
        for name, slider in zip(SLIDERS, sliders):  # API names: /gaze_pitch ... /head_yaw, /compose, /face, /upload
            slider.input(partial(moved, pair=name.split("_")[0]), inputs=state, outputs=answer, api_name=name,
                         js=clamped, trigger_mode="always_last", **FAST)
        compose.input(moved, inputs=state, outputs=answer, api_name="compose", js=clamped, **FAST)
        face.input(kept_source, inputs=[face, compose], outputs=shown, api_name="face", **FAST)
        for event in (keep.click, page.load):
            event(kept_source, inputs=[face, compose], outputs=shown, api_visibility="private", **FAST)
        upload.upload(uploaded, inputs=[upload, compose, uploads], outputs=[*shown, upload, face, uploads],
                      api_name="upload", **FAST)
    return page

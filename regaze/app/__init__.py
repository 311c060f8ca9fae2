"""The interactive page of `regaze app`: a local Gradio page (the app extra; nothing fetched from the network) with
sliders for target gaze and head, held-out synthetic faces or the user's own upload, and source | redirected side
by side.

    faces.py    the sample faces (synthetic subjects no model trained on) and uploads -> normalized crops
    handler.py  AppHandler: one slider update as a plain function (no server needed; tests and benchmarks call it)
    page.py     the page as a gr.Blocks: components, per-session state, events (live sliders, latest value only)
    server.py   Gradio imported and launched offline (no analytics, share link or web fonts), the free-port check

May import the leaves, regaze.model and regaze.data (photo normalization for raw photos). Only page.py and
server.py need gradio, imported when the page is built: this package imports without the app extra.
"""
from regaze.app.faces import SampleFace, UploadError, sample_faces, upload_crop
from regaze.app.handler import AppHandler, COMPOSE_CHOICES, SLIDER_RANGES_DEG

__all__ = ["SampleFace", "UploadError", "sample_faces", "upload_crop", "AppHandler", "COMPOSE_CHOICES",
           "SLIDER_RANGES_DEG"]

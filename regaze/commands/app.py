"""`regaze app`: the interactive page on a local address (regaze/app/, Gradio: the app extra): sliders for gaze and
head, sample faces or an upload, source | redirected side by side."""
from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  regaze app                                   # the shipped reference model, http://127.0.0.1:7860/
  regaze app --run runs/r64 --port 8000        # a run's best checkpoint
  regaze app --host 0.0.0.0 --no-browser       # reachable from other machines on the network

A Gradio page (pip install 'regaze[app]') that needs nothing from the network: no share link, analytics, update
check or web fonts. Four sliders set the target gaze and head (pitch, yaw) in degrees; each pair starts at the
source angles the model reads and keeps them until moved. Faces: held-out synthetic subjects (no model trained on
them) rendered at the model's size, or an upload: a square normalized crop (up to 4x the model's size, resized to
it) or a photo (its largest face normalized in the model's framing). Compose: the eye composite (the decoder's
eyes pasted into the source where only the gaze moves) or the decoder's image.

The model: --run RUN_DIR (or a checkpoint .pt) when given; else the reference model shipped with regaze
(regaze/reference/synth64/reference.pt); else runs/demo/run (`make demo`). Stop with Ctrl-C.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app", help="the interactive redirection page in a browser",
        description="Serve a local page with sliders for gaze and head over sample faces or your own.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None,
                   help="training run directory or checkpoint .pt (default: the shipped reference model; without "
                        "one, runs/demo/run from `make demo`)")
    p.add_argument("--which", choices=("best", "latest"), default="best", help="checkpoint of the run (default best)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from regaze.app.server import check_port_free, require_gradio, serve, wait_until_closed
    from regaze.model.pretrained import is_reference, load_redirector, resolve_run

    require_gradio()  # before the model loads: a missing extra or a busy port is said at once
    check_port_free(host=args.host, port=args.port)
    run, notice = resolve_run(args.run)
    if notice:
        print(notice, file=sys.stderr)
    model, info = load_redirector(run, which=args.which)
    if is_reference(info["checkpoint"]):
        note = f"the shipped reference model (trained on synthetic faces), step {info['step']}"
    else:
        note = f"model {info['checkpoint']}, step {info['step']}"

    from regaze.app.handler import AppHandler
    from regaze.app.page import CSS, build_page

    page = build_page(AppHandler(model), model_note=note)
    serve(page, host=args.host, port=args.port, css=CSS, open_browser=not args.no_browser)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{args.port}/"
    print(f"regaze app: serving {info['checkpoint']} at {url} (Ctrl-C stops)", flush=True)
    wait_until_closed(page)
    return 0

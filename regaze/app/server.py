"""The HTTP server of `regaze app`: the standard library's ThreadingHTTPServer on a local address.

    GET  /             the page (page.py)
    POST /api/update   JSON {face, gaze: [p, y] deg or null, head: ..., compose} -> JSON {source, redirected:
                       PNG data URLs, source_gaze_deg, source_head_deg, compose} or {error}
    POST /api/upload   the file's bytes -> JSON {face, note} or {error}

Bad requests answer 400 with {"error": message} (the page shows it); no traceback reaches the page.
"""
from __future__ import annotations

import base64
import errno
import io
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from regaze.app.handler import COMPOSE_CHOICES, SLIDER_RANGES_DEG, AppHandler
from regaze.app.page import build_page
from regaze.errors import RegazeError

__all__ = ["make_server", "check_port_free", "png_data_url"]

MAX_JSON_BYTES = 64 * 1024
MAX_BODY_BYTES = 20 * 2**20 + 1024


def png_data_url(image: np.ndarray) -> str:
    """(H, W, 3) uint8 -> "data:image/png;base64,..." (lossless: the page shows the exact pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def check_port_free(*, host: str, port: int) -> None:
    """RegazeError when `port` on `host` cannot be bound (in use, or not allowed)."""
    if not 1 <= port <= 65535:
        raise RegazeError(f"--port must be 1 to 65535; found {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError as e:
            why = "is in use (another `regaze app`?)" if e.errno == errno.EADDRINUSE else f"cannot be opened ({e})"
            raise RegazeError(f"port {port} on {host} {why}; pick another with --port") from e


def _request_handler(app: AppHandler, page: bytes):
    class Handler(BaseHTTPRequestHandler):
        server_version = "regaze-app"

        def log_message(self, format, *args):  # the terminal shows errors only, not every slider move
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: dict) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, page, "text/html; charset=utf-8")
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            else:
                self._json(404, {"error": f"no page {path}"})

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            limit = MAX_JSON_BYTES if path == "/api/update" else MAX_BODY_BYTES
            if length > limit:
                self.close_connection = True
                return self._json(413, {"error": f"the request is {length} bytes; at most {limit}"})
            body = self.rfile.read(length)
            try:
                if path == "/api/update":
                    return self._json(200, _update(app, body))
                if path == "/api/upload":
                    return self._json(200, app.add_upload(body))
                return self._json(404, {"error": f"no endpoint {path}"})
            except RegazeError as e:
                return self._json(400, {"error": str(e)})
            except Exception as e:  # a bug: the page gets one line, the terminal the details
                print(f"regaze app: {type(e).__name__}: {e}", file=sys.stderr)
                return self._json(500, {"error": f"internal error ({type(e).__name__}); see the terminal"})

    return Handler


def _update(app: AppHandler, body: bytes) -> dict:
    try:
        request = json.loads(body)
    except ValueError as e:
        raise RegazeError(f"the update is not JSON ({e})") from e
    if not isinstance(request, dict):
        raise RegazeError("the update must be a JSON object {face, gaze, head, compose}")
    result = app.update(face=request.get("face"), gaze_deg=request.get("gaze"), head_deg=request.get("head"),
                        compose=request.get("compose", "eyes"))
    return {"source": png_data_url(result["source"]), "redirected": png_data_url(result["redirected"]),
            "source_gaze_deg": result["source_gaze_deg"], "source_head_deg": result["source_head_deg"],
            "compose": result["compose"]}


def make_server(app: AppHandler, *, host: str, port: int, model_note: str) -> ThreadingHTTPServer:
    """The server (not yet serving: call .serve_forever()); RegazeError when the port cannot be bound."""
    check_port_free(host=host, port=port)
    page = build_page(faces=app.face_choices(), size=app.size, ranges=SLIDER_RANGES_DEG,
                      compose_choices=COMPOSE_CHOICES, model_note=model_note).encode()
    server_class = ThreadingHTTPServer
    if ":" in host:
        server_class = type("ThreadingHTTPServerV6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    try:
        return server_class((host, port), _request_handler(app, page))
    except OSError as e:  # taken between the check and now
        raise RegazeError(f"cannot serve on {host}:{port} ({e}); pick another port with --port") from e

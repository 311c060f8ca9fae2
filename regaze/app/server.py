"""Serving `regaze app` with Gradio (the app extra) so that nothing is fetched from the network at run time: Gradio
imported with its telemetry and update check off, system fonts in the theme (no web fonts), no share link, no
server-side rendering (a Node process), no MCP server, no run history, no footer links; and the free-port check
that runs before the model loads.
"""
from __future__ import annotations

import errno
import os
import socket
import time

from regaze.errors import RegazeError

__all__ = ["require_gradio", "check_port_free", "serve", "wait_until_closed", "MAX_FILE_SIZE"]

FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "DejaVu Sans", "sans-serif")
MONO_FONTS = ("ui-monospace", "DejaVu Sans Mono", "monospace")
MAX_FILE_SIZE = "20mb"  # as regaze.app.faces.MAX_UPLOAD_BYTES: Gradio refuses larger uploads with a message


def require_gradio():
    """The gradio module, its analytics and version check off; RegazeError (how to install it) when missing."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read by gradio's analytics helpers, not only by Blocks
    try:
        import gradio
    except ImportError as e:
        raise RegazeError(f"`regaze app` needs Gradio, the app extra: pip install 'regaze[app]' "
                          f"({e.name or 'gradio'} is missing)") from e
    return gradio


def check_port_free(*, host: str, port: int) -> None:
    """RegazeError when `port` on `host` cannot be bound (in use, or not allowed)."""
    if not 1 <= port <= 65535:
        raise RegazeError(f"--port must be 1 to 65535; found {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError as e:
            why = "is in use (another `regaze app`?)" if e.errno == errno.EADDRINUSE else f"cannot be opened ({e})"
            raise RegazeError(f"port {port} on {host} {why}; pick another with --port") from e


def serve(page, *, host: str, port: int, css: str, open_browser: bool = False) -> str:
    """Launch the gr.Blocks `page` on host:port with the server in a thread; returns its local URL. Then
    wait_until_closed(page) (the command) or page.close() (tests, benchmarks)."""
    gr = require_gradio()
    check_port_free(host=host, port=port)
    theme = gr.themes.Default(font=list(FONTS), font_mono=list(MONO_FONTS))
    try:
        page.launch(server_name=host, server_port=port, share=False, inbrowser=open_browser, quiet=True,
                    prevent_thread_lock=True, show_error=False, footer_links=[], run_history=False,
                    ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
                    max_file_size=MAX_FILE_SIZE, theme=theme, css=css)
    except OSError as e:  # the port was taken between the check and now
        raise RegazeError(f"cannot serve on {host}:{port} ({e}); pick another port with --port") from e
    return page.local_url


def wait_until_closed(page) -> None:
    """Serve until Ctrl-C (KeyboardInterrupt goes on to the command: exit 130), then free the port."""
    try:
        while page.is_running:
            time.sleep(0.2)
    finally:
        page.close(verbose=False)

"""`bench site serve`: the built site over HTTP on 127.0.0.1, for local viewing only (the site itself needs
no server: it opens from disk or any static host)."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from effbench.errors import UsageError

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def check_site(path: Path) -> None:
    if not (path / "index.html").is_file():
        raise UsageError(f"no site in {path} (no index.html): run `bench site build {path}` first")


def make_server(path: Path, port: int = 8000) -> ThreadingHTTPServer:
    check_site(path)
    handler = functools.partial(_QuietHandler, directory=str(path))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        raise UsageError(f"cannot listen on {HOST}:{port}: {e.strerror or e}; pass another --port (0: any)") from None

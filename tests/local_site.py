"""A real HTTP server on 127.0.0.1 in a thread, serving a table of pages the test can change while it runs.

Each route is ``path → Page``; the server records every request (path, headers) so tests can assert on what was
asked and with which conditional headers. Nothing here listens on anything but loopback.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class Page:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    delay: float = 0.0
    chunked: bool = False
    gzip: bool = False

    def payload(self) -> bytes:
        data = self.body.encode() if isinstance(self.body, str) else self.body
        return gzip.compress(data) if self.gzip else data


@dataclass
class Hit:
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up early (the size limit, a timeout) is expected here, not an error to print."""


class LocalSite:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.pages: dict[str, Page] = {}
        self.hits: list[Hit] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "LocalSite":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                site.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}))
                page = site.pages.get(self.path.split("#")[0])
                if page is None:
                    page = Page("<h1>Not found</h1>", status=404)
                if page.etag and self.headers.get("If-None-Match") == page.etag:
                    self._send(304, Page(etag=page.etag), b"")
                    return
                if page.delay:
                    time.sleep(page.delay)
                self._send(page.status, page, page.payload())

            def _send(self, status: int, page: Page, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", page.content_type)
                if page.etag:
                    self.send_header("ETag", page.etag)
                if page.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in page.headers.items():
                    self.send_header(name, value)
                if page.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in _pieces(payload, 65536):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if status != 304:
                    try:
                        self.wfile.write(payload)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client stopped reading (size limit): expected

        return Handler


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def html(title: str, body: str, head: str = "") -> str:
    return f"<!doctype html><html><head><title>{title}</title>{head}</head><body>{body}</body></html>"

"""A small HTTP server on loopback that serves a site and its robots.txt (no reverse look-ups: ``address_string``
is the bare address, unlike ``python -m http.server``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Site:
    robots: bytes = b""
    robots_status: int = 200
    redirects: int = 0  # /robots.txt redirects this many times before it answers
    pages: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, user agent)


class _Handler(BaseHTTPRequestHandler):
    site: Site

    def address_string(self) -> str:
        return str(self.client_address[0])

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site  # type: ignore[attr-defined]
        site.seen.append((self.path, self.headers.get("User-Agent", "")))
        if self.path.startswith("/robots.txt"):
            hop = int(self.path.partition("?hop=")[2] or 0)
            if hop < site.redirects:
                self._send(302, b"", {"Location": f"/robots.txt?hop={hop + 1}"})
            else:
                self._send(site.robots_status, site.robots, {"Content-Type": "text/plain"})
            return
        page = site.pages.get(self.path.split("?")[0])
        if page is None:
            self._send(404, b"not here", {"Content-Type": "text/plain"})
        else:
            self._send(200, page, {"Content-Type": "text/html" if self.path.endswith(("/", ".html")) else "text/css"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(site: Site, host: str = "127.0.0.1") -> Iterator[str]:
    """``host:port`` of a server for ``site`` until the block ends."""
    server = ThreadingHTTPServer((host, 0), _Handler)
    server.site = site  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

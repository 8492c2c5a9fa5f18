"""A real HTTP server on loopback that plays a webhook subscriber: it records
every request and answers from a script (status codes, or a stall)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from infra.ports import LOOPBACK

STALL = -1  # script entry: hold the request open past the client's timeout


@dataclass
class Received:
    """One request as the receiver got it."""

    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """What the server got, and what it answers next."""

    script: list[int] = field(default_factory=list)
    default: int = 200
    stall_s: float = 3.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.answered < 300]


@contextmanager
def webhook_receiver(
    script: list[int] | None = None, default: int = 200, stall_s: float = 3.0
) -> Iterator[Receiver]:
    """Serve on a free loopback port until the block ends."""
    receiver = Receiver(list(script or []), default, stall_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            answer = receiver.next_answer()
            if answer == STALL:
                time.sleep(receiver.stall_s)
                answer = 200  # too late: the client has given up
            with receiver.lock:
                receiver.requests.append(Received(dict(self.headers), body, answer))
            try:
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client went away after its timeout

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://{LOOPBACK}:{server.server_port}/hooks/pantau"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()

"""A tenant's listener on loopback, for the demo, the tests and the benchmark: it verifies each
delivery with the `standardwebhooks` package (as the README tells tenants to), records it, and
answers as scripted (a status, a Retry-After, a delay, or being held until released).

Started with start(); `manage.py sandbox_listener` runs one in the foreground for the demo.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

#: the longest a held request waits for release (a test that forgets cannot hang the server)
MAX_HOLD_SECONDS = 30.0


@dataclass
class Reply:
    status: int = 200
    retry_after: str = ""
    delay: float = 0.0
    #: wait for Listener.release() (at most MAX_HOLD_SECONDS) before answering
    hold: bool = False


@dataclass
class Received:
    headers: dict
    body: bytes
    verified: bool
    error: str
    answered: int
    at: float = field(default_factory=time.time)

    @property
    def document(self):
        return json.loads(self.body)


class Listener:
    def __init__(self, secrets: list[str] | None = None, replies: list[Reply] | None = None):
        self.secrets = list(secrets or [])
        self.replies = list(replies or [])
        self.default = Reply()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        #: requests being handled now, and the most there ever were at once
        self.in_flight = self.most_in_flight = 0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def release(self) -> None:
        self.released.set()

    def verify(self, headers: dict, body: bytes) -> str:
        """ "" when a current secret verifies the delivery; otherwise why not."""
        if not self.secrets:
            return "no secret to verify with"
        errors = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return ""
            except WebhookVerificationError as exc:
                errors.append(str(exc))
        return "; ".join(errors)

    def next_reply(self) -> Reply:
        with self.lock:
            return self.replies.pop(0) if self.replies else self.default

    def record(self, received: Received) -> None:
        with self.lock:
            self.received.append(received)

    def entered(self, delta: int) -> None:
        with self.lock:
            self.in_flight += delta
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler(listener: Listener):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k: v for k, v in self.headers.items()}
            error = listener.verify(headers, body)
            reply = listener.next_reply()
            listener.entered(1)
            try:
                if reply.hold:
                    listener.released.wait(MAX_HOLD_SECONDS)
                if reply.delay:
                    time.sleep(reply.delay)
            finally:
                listener.entered(-1)
            status = reply.status if not error else 401
            listener.record(Received(headers, body, not error, error, status))
            answer = json.dumps({"ok": not error, "error": error}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            if reply.retry_after:
                self.send_header("Retry-After", reply.retry_after)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass  # quiet: the test or the command reports what arrived

    return Handler


def start(listener: Listener, *, port: int = 0) -> Listener:
    """Serve `listener` on 127.0.0.1:`port` (0: any free port) in a daemon thread."""
    listener.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(listener))
    listener.server.daemon_threads = True
    threading.Thread(target=listener.server.serve_forever, daemon=True).start()
    return listener

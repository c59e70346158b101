"""One provider request never outlives its total deadline, and never follows a redirect."""

import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connections import egress
from connections.oauth import ErrorKind, ProviderError
from connections.providers import PROVIDERS, ClientAuth


class Trickle(BaseHTTPRequestHandler):
    """Headers at once, then one byte every 0.2 s for a minute: each read is well inside any
    read timeout, the whole answer far outside any deadline."""

    def do_POST(self):
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "300")
        self.end_headers()
        for _ in range(300):
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return  # the client hung up: what the deadline is for
            time.sleep(0.2)  # the modelled slow server: one byte every 0.2 s

    def log_message(self, *args):
        pass


@contextmanager
def trickling_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_trickled_answer_is_cut_at_the_total_deadline(settings):
    settings.PROVIDER_READ_TIMEOUT = 15  # each byte arrives well within it
    with trickling_server() as base, pytest.raises(egress.DeadlineExceeded):
        egress.send("POST", f"{base}/token", deadline=1.0, data={"grant_type": "x"})


def test_a_redirect_is_returned_not_followed():
    with trickling_server() as base:
        response = egress.send("POST", f"{base}/redirect", deadline=5.0, data={"a": "b"})
    assert response.status_code == 307


def test_a_token_endpoint_that_redirects_is_refused():
    from connections import oauth

    class App:
        catalogue = PROVIDERS["generic"]

        def endpoint(self, name):
            return self.base + "/redirect"

    app = App()
    creds = oauth.Credentials(client_id="c", secret="s", auth=ClientAuth.FORM)
    with trickling_server() as base:
        app.base = base
        with pytest.raises(ProviderError) as caught:
            oauth._token_request(app, creds, "grant_type=client_credentials")
    assert caught.value.kind == ErrorKind.REJECTED and caught.value.status == 307

"""One provider request never outlives its total deadline, never follows a redirect, and
shares a kept-alive connection without carrying cookies from one call to the next."""

import base64
import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from requests.exceptions import InvalidHeader

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


class GenericApp:
    """What oauth.py reads of an app: the generic catalogue, every endpoint at `url`."""

    catalogue = PROVIDERS["generic"]

    def __init__(self, url: str):
        self.url = url

    def endpoint(self, name):
        return self.url


def test_a_redirect_is_returned_not_followed():
    with trickling_server() as base:
        response = egress.send("POST", f"{base}/redirect", deadline=5.0, data={"a": "b"})
    assert response.status_code == 307


def test_a_token_endpoint_that_redirects_is_refused():
    from connections import oauth

    creds = oauth.Credentials(client_id="c", secret="s", auth=ClientAuth.FORM)
    with trickling_server() as base:
        app = GenericApp(base + "/redirect")
        with pytest.raises(ProviderError) as caught:
            oauth._token_request(app, creds, "grant_type=client_credentials")
    assert caught.value.kind == ErrorKind.REJECTED and caught.value.status == 307


class KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; counts the connections it accepted and the cookies it got."""

    protocol_version = "HTTP/1.1"
    connections: list = []
    cookies: list = []

    def setup(self):
        super().setup()
        KeepAlive.connections.append(self.client_address)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        KeepAlive.cookies.append(self.headers.get("Cookie"))
        if self.path == "/slow":
            self._trickle()
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=tenant-a; Path=/")
        try:
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client hung up (the deadline struck): what the test is about

    def _trickle(self):
        """A byte every 0.1 s: no read times out, only the total deadline ends the call."""
        self.send_response(200)
        self.send_header("Content-Length", "30")
        try:
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)  # the modelled slow server
        except OSError:
            pass  # the client hung up (the deadline struck): what the test is about

    def log_message(self, *args):
        pass


@pytest.fixture
def keep_alive_server():
    KeepAlive.connections, KeepAlive.cookies = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    egress.discard_pools()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    egress.discard_pools()
    server.shutdown()
    server.server_close()


def test_calls_to_one_host_share_a_kept_alive_connection_and_keep_no_cookies(keep_alive_server):
    for _ in range(3):
        assert egress.send("POST", f"{keep_alive_server}/token", data={"a": "b"}).ok
    assert len(KeepAlive.connections) == 1
    assert KeepAlive.cookies == [None, None, None]  # a Set-Cookie is never sent back


def test_a_call_the_deadline_struck_leaves_no_socket_for_the_next(keep_alive_server, settings):
    settings.PROVIDER_READ_TIMEOUT = 15  # each byte arrives well within it
    assert egress.send("POST", f"{keep_alive_server}/token", data={"a": "b"}).ok
    with pytest.raises(egress.DeadlineExceeded):
        egress.send("POST", f"{keep_alive_server}/slow", deadline=0.5, data={"a": "b"})
    # The kept-alive connection was shut down by the watchdog: the next call opens a new one.
    assert egress.send("POST", f"{keep_alive_server}/token", data={"a": "b"}).ok
    assert len(KeepAlive.connections) == 2


class Echo(BaseHTTPRequestHandler):
    """Answers with what it got: the request's headers and body, as JSON; /big answers with
    one byte more than the egress path reads."""

    protocol_version = "HTTP/1.1"

    received: list = []

    def do_POST(self):
        got = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Echo.received.append(self.path)
        content_type, length = "application/json", None
        if self.path == "/big":
            body = b" " * (egress.MAX_BODY + 1)
        elif self.path == "/latin1":
            content_type, body = (
                "application/json; charset=iso-8859-1",
                '{"error": "é"}'.encode("latin-1"),
            )
        elif self.path == "/cut":
            body, length = b'{"access_token": ', 100  # then the connection closes
            self.close_connection = True
        else:
            body = json.dumps({"headers": dict(self.headers), "body": got.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length or len(body)))
        self.send_header("X-Request-Id", "req-1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    Echo.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    egress.discard_pools()
    server.shutdown()
    server.server_close()


def test_a_form_with_basic_auth_is_sent_as_a_token_endpoint_expects(echo_server):
    response = egress.send(
        "POST",
        f"{echo_server}/token",
        auth=("client-1", "s3cret"),
        headers={"Accept": "application/json"},
        data={"grant_type": "refresh_token", "refresh_token": "a b&c"},
    )
    sent = response.json()
    assert (
        sent["headers"]["Authorization"] == "Basic " + base64.b64encode(b"client-1:s3cret").decode()
    )
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["headers"]["Accept"] == "application/json"
    assert sent["body"] == "grant_type=refresh_token&refresh_token=a+b%26c"
    # The answer's headers are read case-insensitively, as the catalogue names them.
    assert response.headers.get("x-request-id") == "req-1" and response.ok


def test_a_json_body_and_a_raw_body_are_sent_as_given(echo_server):
    sent = egress.send("POST", f"{echo_server}/token", json={"client_id": "c"}).json()
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == {"client_id": "c"}
    raw = egress.send("POST", f"{echo_server}/hook", data=b'{"a": 1}').json()
    assert raw["body"] == '{"a": 1}' and "Content-Type" not in raw["headers"]


def test_an_answer_over_the_cap_is_not_read_whole(echo_server):
    with pytest.raises(egress.TooLarge) as caught:
        egress.send("POST", f"{echo_server}/big")
    assert caught.value.status_code == 200


def test_nothing_listening_is_a_requests_connection_error():
    # What the callers catch (oauth.py classifies it as "no answer"), not urllib3's own.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connect is refused
        with pytest.raises(requests.ConnectionError):
            egress.send("POST", f"http://127.0.0.1:{port}/token", deadline=5)


@pytest.mark.parametrize(
    "value",
    ["tok\r\nX-Evil: 1", "key\n", "\u20ac-token"],
    ids=["header split", "newline", "not latin-1"],
)
def test_a_header_value_http_cannot_carry_is_refused_before_sending(echo_server, value):
    # A provider's access token or an admin's API key: never a 500, never a split header.
    with pytest.raises(InvalidHeader):
        egress.send("POST", f"{echo_server}/token", headers={"Authorization": f"Bearer {value}"})
    assert Echo.received == []


def test_basic_credentials_outside_latin_1_are_refused_before_sending(echo_server):
    # (A line break in a secret is no risk there: Basic credentials travel base64-encoded.)
    with pytest.raises(InvalidHeader):
        egress.send("POST", f"{echo_server}/token", auth=("client", "\u20ac-secret"))
    assert Echo.received == []


def test_the_token_api_call_with_such_a_token_is_a_rejected_provider_error(echo_server):
    from connections import oauth

    with pytest.raises(ProviderError) as caught:
        oauth.call_api(
            GenericApp(echo_server),
            access_token="tok\r\nX-Evil: 1",
            token_type="bearer",
            path="/me",
        )
    assert caught.value.kind == ErrorKind.REJECTED and "not sent" in str(caught.value)
    assert Echo.received == []


def test_a_header_set_to_none_is_left_out(echo_server):
    sent = egress.send("POST", f"{echo_server}/token", headers={"X-Api-Key": None}).json()
    assert "X-Api-Key" not in sent["headers"]


def test_an_answer_in_its_declared_charset_is_read_in_it(echo_server):
    response = egress.send("POST", f"{echo_server}/latin1")
    assert response.json() == {"error": "é"} and "é" in response.text


def test_an_answer_cut_short_is_a_broken_body_not_a_failed_connect(echo_server):
    # The webhook sender tells "could not connect" from an answer that broke off.
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        egress.send("POST", f"{echo_server}/cut")

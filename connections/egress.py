"""The one egress path: every request the portal sends on a tenant's behalf goes through
send(): to an allowed destination only (destinations.py: https, public addresses, checked
after DNS and pinned), within one total deadline, redirects never followed, the body capped.

HTTP clients only know per-operation timeouts: a provider that trickles its answer a byte at
a time keeps a call alive for as long as it likes, each read well inside the read timeout. A
refresh lease must outlive the call it covers, so every call here has a wall-clock deadline
for connect, send and read together: a watchdog (watchdog.py) shuts the call's sockets down
when it passes, which ends any blocked read at once. The lifecycle extends the lease by
`deadline_seconds()` plus a margin before each send.

Connections are kept alive: each thread keeps one urllib3 pool manager (urllib3 keeps no
cookies and reads no proxy settings from the environment: the pin is ours) whose pool holds a
connection per host, so a worker refreshing many connections of one provider does one TCP and
TLS handshake, not one per refresh. A pooled connection was checked and pinned when it was
opened; its socket joins the watch of every call that uses it, and a call that fails in any
way discards the thread's pools, so a socket the watchdog shut down (or one left mid-answer)
is never handed to the next call.

urllib3 directly, not a requests Session: a Session merges settings, cookies and hooks and
re-parses the URL on every call, which cost more CPU than the rest of a refresh's HTTP work
(a worker sends thousands of these a minute). Failures are still raised as requests'
exceptions, which is what the callers (oauth.py, the webhook sender) and their callers know.
"""

import base64
import codecs
import json
import socket
import threading
from urllib.parse import urlencode

import requests
from django.conf import settings
from requests.exceptions import InvalidHeader
from requests.utils import (
    DEFAULT_CA_BUNDLE_PATH,
    check_header_validity,
    get_encoding_from_headers,
)
from urllib3 import HTTPHeaderDict, PoolManager, Timeout
from urllib3 import exceptions as urllib3_errors
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util import connection

from connections import destinations
from connections.watchdog import Watchdog

_current = threading.local()


class DeadlineExceeded(requests.ConnectionError):
    """The call did not finish within its total deadline; its sockets were shut down."""


def deadline_seconds() -> float:
    """The most a single request to a provider may take, from connect to the last byte."""
    return settings.PROVIDER_DEADLINE


class _Watch:
    """The sockets of one call, and whether its deadline already struck."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.done = False
        self.struck = False

    def add(self, sock) -> None:
        with self.lock:
            if self.struck:
                _shutdown(sock)
            self.sockets.append(sock)

    def strike(self) -> None:
        with self.lock:
            if self.done:
                return
            self.struck = True
            for sock in self.sockets:
                _shutdown(sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.sockets = []  # the watchdog may hold this watch until its deadline


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to interrupt


def _register(sock) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        watch.add(sock)


class _Pinned:
    """Connects to the address destinations.resolve() checked, never to a second lookup of
    the name; TLS still verifies the certificate for the name (self.host is unchanged)."""

    def _new_conn(self) -> socket.socket:
        address = destinations.resolve(self._dns_host, self.port)
        try:
            sock = connection.create_connection(
                (address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        _register(sock)
        return sock

    def request(self, *args, **kwargs):
        # A kept-alive connection already has its socket: this call's watch must cover it.
        if self.sock is not None:
            _register(self.sock)
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_Pinned, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class TooLarge(requests.RequestException):
    """The answer's body was longer than MAX_BODY bytes: it was not read further (its
    status line was: `status_code`)."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


# Token and API answers are small; a provider (or what poses as one) cannot fill memory.
MAX_BODY = 1024 * 1024


USER_AGENT = "integration-portal/1"


class Response:
    """An answer read whole: what callers of send() use of requests' Response."""

    __slots__ = ("status_code", "reason", "headers", "content")

    def __init__(self, raw: BaseHTTPResponse, content: bytes):
        self.status_code = raw.status
        self.reason = raw.reason or ""
        self.headers = raw.headers  # case-insensitive, as requests' are
        self.content = content

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def charset(self) -> str:
        """The Content-Type's charset (requests' defaults without one), known to Python."""
        declared = get_encoding_from_headers(self.headers)
        try:
            return codecs.lookup(declared).name if declared else "utf-8"
        except LookupError:
            return "utf-8"

    @property
    def text(self) -> str:
        return self.content.decode(self.charset, "replace")

    def json(self):
        """The body as JSON; ValueError when it is not (undecodable bytes included)."""
        return json.loads(self.content.decode(self.charset))


_watchdog = Watchdog()
_pools = threading.local()


def _pool_manager() -> PoolManager:
    manager = getattr(_pools, "manager", None)
    if manager is None:
        # Certificates are checked against the bundle requests used (certifi's).
        manager = PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=DEFAULT_CA_BUNDLE_PATH)
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        _pools.manager = manager
    return manager


def discard_pools() -> None:
    """Close this thread's kept-alive connections (the next call opens new ones)."""
    manager, _pools.manager = getattr(_pools, "manager", None), None
    if manager is not None:
        manager.clear()


def send(
    method: str,
    url: str,
    *,
    deadline: float | None = None,
    headers: dict | None = None,
    auth: tuple[str, str] | None = None,
    data: dict | bytes | None = None,
    json: object = None,
) -> Response:
    """One request, its body read whole (at most MAX_BODY bytes), within `deadline` seconds
    (PROVIDER_DEADLINE by default). `data` is a form (a dict) or the raw body, `json` an
    object sent as JSON, `auth` HTTP Basic credentials. Raises destinations.Refused for a
    destination the portal does not send to, TooLarge, or requests.RequestException
    (DeadlineExceeded when the deadline struck)."""
    destinations.check_url(url)
    total = deadline_seconds() if deadline is None else deadline
    timeout = Timeout(
        connect=min(settings.PROVIDER_CONNECT_TIMEOUT, total),
        read=min(settings.PROVIDER_READ_TIMEOUT, total),
    )
    body, sent_headers = _encode(headers, auth, data, json)
    watch = _Watch()
    _current.watch = watch
    _watchdog.arm(total, watch)
    table = _SENDING
    try:
        raw = _pool_manager().urlopen(
            method,
            url,
            body=body,
            headers=sent_headers,
            timeout=timeout,
            retries=False,
            redirect=False,
            preload_content=False,
            decode_content=True,
        )
        table = _READING
        response = Response(raw, _read_capped(raw))
    except BaseException as exc:
        discard_pools()
        failure = _as_requests_error(exc, table)
        if failure is None:
            raise
        if watch.struck:
            raise DeadlineExceeded(f"no complete answer within the {total:g} s deadline") from exc
        raise failure from exc
    finally:
        watch.finish()
        _current.watch = None
    if watch.struck:
        discard_pools()  # struck as the answer completed: its socket is shut down
    # An answer is returned even if the watchdog struck a moment after it arrived: the lease
    # outlives the deadline by a margin, and a refresh token it carries is live. (One with no
    # length that ends only at the close may be cut by the strike: then it does not parse,
    # which the caller reports; discarding it instead could lose a complete token answer.)
    return response


def _encode(headers, auth, data, json_body) -> tuple[bytes | None, HTTPHeaderDict]:
    """The body and headers, as requests would have sent them (a header set to None is
    left out). Raises requests' InvalidHeader for a value HTTP/1.1 cannot carry (a line
    break, or a character outside latin-1: a provider's token or an admin's key may hold
    one), before anything is sent."""
    sent = HTTPHeaderDict({"User-Agent": USER_AGENT, "Accept": "*/*"})
    sent.update({name: value for name, value in (headers or {}).items() if value is not None})
    if auth is not None:
        credentials = _latin1(f"{auth[0]}:{auth[1]}", "the Basic credentials")
        sent["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    for name, value in sent.items():
        check_header_validity((name, value))
        if isinstance(value, str):
            _latin1(value, f"the {name} header")
    if json_body is not None:
        sent.setdefault("Content-Type", "application/json")
        return json.dumps(json_body, allow_nan=False).encode(), sent
    if isinstance(data, dict):
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return urlencode(data, doseq=True).encode(), sent
    return data, sent


def _latin1(value: str, what: str) -> bytes:
    """As http.client sends header values (and requests encoded Basic credentials)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidHeader(f"{what} has a character HTTP headers cannot carry") from None


# urllib3's failures as requests named them, while sending and while reading the body;
# NewConnectionError before its base class.
_SENDING = (
    (NewConnectionError, requests.ConnectionError),
    (ConnectTimeoutError, requests.ConnectTimeout),
    (urllib3_errors.ReadTimeoutError, requests.ReadTimeout),
    (urllib3_errors.SSLError, requests.exceptions.SSLError),
    (urllib3_errors.ProtocolError, requests.ConnectionError),
    (urllib3_errors.LocationValueError, requests.exceptions.InvalidURL),
    (urllib3_errors.HTTPError, requests.RequestException),
)
_READING = (
    (urllib3_errors.ReadTimeoutError, requests.ConnectionError),
    (urllib3_errors.SSLError, requests.exceptions.SSLError),
    (urllib3_errors.ProtocolError, requests.exceptions.ChunkedEncodingError),
    (urllib3_errors.DecodeError, requests.exceptions.ContentDecodingError),
    (urllib3_errors.HTTPError, requests.RequestException),
)


def _as_requests_error(exc: BaseException, table) -> requests.RequestException | None:
    if isinstance(exc, requests.RequestException):
        return exc  # TooLarge
    for urllib3_class, requests_class in table:
        if isinstance(exc, urllib3_class):
            return requests_class(str(exc))
    return None


def _read_capped(raw: BaseHTTPResponse) -> bytes:
    body = bytearray()
    for chunk in raw.stream(64 * 1024, decode_content=True):
        body += chunk
        if len(body) > MAX_BODY:
            raw.close()
            raise TooLarge(f"the answer was longer than {MAX_BODY} bytes", raw.status)
    raw.release_conn()  # read whole: the connection goes back to the pool
    return bytes(body)

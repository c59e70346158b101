"""The one egress path: every request the portal sends on a tenant's behalf goes through
send(): to an allowed destination only (destinations.py: https, public addresses, checked
after DNS and pinned), within one total deadline, redirects never followed, the body capped.

`requests` only knows per-operation timeouts: a provider that trickles its answer a byte at a
time keeps a call alive for as long as it likes, each read well inside the read timeout. A
refresh lease must outlive the call it covers, so every call here has a wall-clock deadline
for connect, send and read together: a watchdog (watchdog.py) shuts the call's sockets down when it passes,
which ends any blocked read at once. The lifecycle extends the lease by `deadline_seconds()`
plus a margin before each send.

Connections are kept alive: each thread keeps one session (no cookies, no proxies from the
environment) whose pool holds a connection per host, so a worker refreshing many connections
of one provider does one TCP and TLS handshake, not one per refresh. A pooled connection was
checked and pinned when it was opened; its socket joins the watch of every call that uses it,
and a call that fails in any way discards the thread's session, so a socket the watchdog shut
down (or one left mid-answer) is never handed to the next call.
"""

import socket
import threading
from http.cookiejar import DefaultCookiePolicy

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
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


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class TooLarge(requests.RequestException):
    """The answer's body was longer than MAX_BODY bytes: it was not read further (its
    status line was: `status_code`)."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


# Token and API answers are small; a provider (or what poses as one) cannot fill memory.
MAX_BODY = 1024 * 1024


_watchdog = Watchdog()
_sessions = threading.local()
#: a provider's Set-Cookie is never kept: one tenant's call must not carry another's cookie
NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])


def _session() -> requests.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxy or netrc from the environment: the pin is ours
        session.cookies.set_policy(NO_COOKIES)
        session.mount("http://", _Adapter())
        session.mount("https://", _Adapter())
        _sessions.session = session
    return session


def discard_session() -> None:
    """Close this thread's kept-alive connections (the next call opens new ones)."""
    session, _sessions.session = getattr(_sessions, "session", None), None
    if session is not None:
        session.close()


def send(method: str, url: str, *, deadline: float | None = None, **kwargs) -> requests.Response:
    """One request, its body read whole (at most MAX_BODY bytes), within `deadline` seconds
    (PROVIDER_DEADLINE by default). Raises destinations.Refused for a destination the portal
    does not send to, TooLarge, or requests.RequestException (DeadlineExceeded when the
    deadline struck)."""
    destinations.check_url(url)
    total = deadline_seconds() if deadline is None else deadline
    connect = min(settings.PROVIDER_CONNECT_TIMEOUT, total)
    read = min(settings.PROVIDER_READ_TIMEOUT, total)
    watch = _Watch()
    session = _session()
    _current.watch = watch
    _watchdog.arm(total, watch)
    try:
        response = session.request(
            method, url, timeout=(connect, read), allow_redirects=False, stream=True, **kwargs
        )
        _read_capped(response)
    except BaseException as exc:
        discard_session()
        if isinstance(exc, requests.RequestException) and watch.struck:
            raise DeadlineExceeded(f"no complete answer within the {total:g} s deadline") from exc
        raise
    finally:
        watch.finish()
        _current.watch = None
    if watch.struck:
        discard_session()  # struck as the answer completed: its socket is shut down
    # A complete answer is returned even if the watchdog struck a moment after it arrived:
    # the lease outlives the deadline by a margin, and a refresh token it carries is live.
    return response


def _read_capped(response: requests.Response) -> None:
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            response.close()
            raise TooLarge(f"the answer was longer than {MAX_BODY} bytes", response.status_code)
    response._content = bytes(body)
    response._content_consumed = True
    response.raw.release_conn()  # read whole: the connection goes back to the pool

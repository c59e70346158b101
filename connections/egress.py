"""Sending a request to a provider within one total deadline, redirects never followed.

`requests` only knows per-operation timeouts: a provider that trickles its answer a byte at a
time keeps a call alive for as long as it likes, each read well inside the read timeout. A
refresh lease must outlive the call it covers, so every call here has a wall-clock deadline
for connect, send and read together: a watchdog shuts the call's sockets down when it passes,
which ends any blocked read at once. The lifecycle extends the lease by `deadline_seconds()`
plus a margin before each send.
"""

import socket
import threading

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to interrupt


def _register(sock) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        watch.add(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self):
        super().connect()
        _register(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self):
        super().connect()
        _register(self.sock)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def send(method: str, url: str, *, deadline: float | None = None, **kwargs) -> requests.Response:
    """One request, its body read whole, within `deadline` seconds (PROVIDER_DEADLINE by
    default); raises requests.RequestException (DeadlineExceeded when the deadline struck)."""
    total = deadline_seconds() if deadline is None else deadline
    connect = min(settings.PROVIDER_CONNECT_TIMEOUT, total)
    read = min(settings.PROVIDER_READ_TIMEOUT, total)
    watch = _Watch()
    timer = threading.Timer(total, watch.strike)
    timer.daemon = True
    # A fresh session per call: a socket the watchdog shut down is never handed to the next.
    with requests.Session() as session:
        session.mount("http://", _Adapter())
        session.mount("https://", _Adapter())
        _current.watch = watch
        timer.start()
        try:
            response = session.request(
                method, url, timeout=(connect, read), allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            if watch.struck:
                raise DeadlineExceeded(
                    f"no complete answer within the {total:g} s deadline"
                ) from exc
            raise
        finally:
            watch.finish()
            timer.cancel()
            _current.watch = None
    # A complete answer is returned even if the watchdog struck a moment after it arrived:
    # the lease outlives the deadline by a margin, and a refresh token it carries is live.
    return response

"""The live server answers like a production server on kept-alive connections.

The portal keeps provider connections alive (connections.egress). Django's test server
writes a response's headers and body separately without TCP_NODELAY, so on a reused
connection the body waits for the client's delayed ACK: 40 ms a call, which turned the
thousand-rotation test from 21 s into 68 s. gunicorn sets TCP_NODELAY on its sockets; so
does this server.
"""

import socket

from django.core.servers.basehttp import ThreadedWSGIServer
from django.test import testcases


class NoDelayServer(ThreadedWSGIServer):
    def get_request(self):
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


def install() -> None:
    testcases.LiveServerThread.server_class = NoDelayServer

"""A tenant admin cannot make the server reach loopback or private addresses, follow a
redirect, or send a secret over plain http: the same rules in the form and at request time."""

import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connections import destinations, egress, oauth
from connections.forms import AppForm
from connections.models import PrivateApp
from connections.oauth import ErrorKind, ProviderError
from connections.providers import PROVIDERS, ClientAuth

# Every spelling of an address the server must never be made to reach.
REFUSED_HOSTS = [
    "127.0.0.1",
    "127.0.0.53",
    "2130706433",  # decimal 127.0.0.1
    "0177.0.0.1",  # octal
    "0x7f.0.0.1",  # hex
    "127.1",  # short
    "0",
    "0.0.0.0",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[fe80::1]",
    "[fc00::1]",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (CGNAT)
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "192.0.2.10",  # documentation
    "localhost",
    "api.localhost",
    "metadata.google.internal",
    "printer.local",
]


@pytest.fixture
def production(settings):
    """DEBUG off, the sandbox off, no operator allowance."""
    settings.DEBUG = False
    settings.SANDBOX_ENABLED = False
    settings.EGRESS_ALLOWED_HOSTS = []
    settings.ALLOW_CUSTOM_ENDPOINTS = False


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_every_internal_address_is_refused_by_the_egress_path(production, host):
    with pytest.raises(destinations.Refused):
        egress.send("POST", f"https://{host}:8443/token", deadline=2)


@pytest.mark.django_db
@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_every_internal_address_is_refused_by_the_form(production, acme, host):
    form = AppForm(
        {
            "name": "G",
            "client_id": "c",
            "grant_type": "client_credentials",
            "client_auth": "basic",
            "client_secret": "s" * 20,
            "token_url": f"https://{host}/token",
        },
        instance=PrivateApp(tenant=acme, provider="generic"),
        provider=PROVIDERS["generic"],
    )
    assert not form.is_valid()
    # Legacy IPv4 spellings are not valid URLs to Django's field; the rest say why.
    error = str(form.errors["token_url"])
    assert "does not send requests there" in error or "Enter a valid URL" in error


@pytest.mark.django_db
def test_plain_http_is_refused_with_debug_off(production, acme):
    with pytest.raises(destinations.Refused, match="https"):
        destinations.check_url("http://provider.example/token")
    form = AppForm(
        {"name": "G", "client_id": "c", "token_url": "http://provider.example/token"},
        instance=PrivateApp(tenant=acme, provider="generic"),
        provider=PROVIDERS["generic"],
    )
    assert not form.is_valid() and "must use https" in str(form.errors["token_url"])


def test_a_public_name_that_resolves_to_loopback_is_refused_at_request_time(
    production, monkeypatch
):
    # The form cannot know what a name will resolve to; the request checks what it connects to.
    destinations.check_url("https://innocent.example/token")
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))],
    )
    with pytest.raises(destinations.Refused, match="127.0.0.1"):
        egress.send("POST", "https://innocent.example/token", deadline=2)


def test_one_private_address_among_public_ones_is_refused(production, monkeypatch):
    answers = [("93.184.215.14", 443), ("10.0.0.7", 443)]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in answers],
    )
    with pytest.raises(destinations.Refused, match="10.0.0.7"):
        destinations.resolve("mixed.example", 443)


def test_an_operator_allowance_lets_an_on_premises_provider_through(production, settings):
    settings.EGRESS_ALLOWED_HOSTS = ["idp.corp.example", "10.1.0.0/16"]
    destinations.check_url("http://idp.corp.example/token")
    destinations.check_url("https://10.1.2.3/token")
    with pytest.raises(destinations.Refused):
        destinations.check_url("https://10.2.0.1/token")


def test_public_https_is_allowed(production):
    destinations.check_url("https://auth.manuonline.com/oauth/token")
    destinations.check_url("https://93.184.215.14/token")
    destinations.check_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/token")


class Recorder(BaseHTTPRequestHandler):
    """Answers with a redirect to `self.server.location`, or records what reached it."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.path, self.rfile.read(length)))
        if self.server.location:
            self.send_response(self.server.status)
            self.send_header("Location", self.server.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        body = b'{"access_token": "x"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def listener(*, location: str = "", status: int = 302):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen, server.location, server.status = [], location, status
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_the_secret_never_reaches_its_target(settings, status):
    settings.SANDBOX_ENABLED = True  # loopback allowed: both listeners are on 127.0.0.1

    class App:
        catalogue = PROVIDERS["generic"]

        def endpoint(self, name):
            return f"{first_url}/token"

    creds = oauth.Credentials(client_id="cid", secret="the-client-secret", auth=ClientAuth.FORM)
    with listener() as (target, target_url):
        with listener(location=f"{target_url}/stolen", status=status) as (first, first_url):
            with pytest.raises(ProviderError) as caught:
                oauth._token_request(App(), creds, "grant_type=client_credentials")
    assert caught.value.kind == ErrorKind.REJECTED and caught.value.status == status
    assert len(first.seen) == 1
    assert target.seen == []  # nothing, and so no secret, reached the redirect's target


def test_the_test_button_shows_a_capped_excerpt():
    from connections.probe import EXCERPT_CHARS, excerpt

    assert excerpt("short") == "short"
    long = "<script>alert(1)</script>" * 1000
    shown = excerpt(long)
    assert shown.startswith(long[:EXCERPT_CHARS]) and "more characters not shown" in shown
    assert len(shown) < EXCERPT_CHARS + 60


def test_catalogue_endpoints_are_overridable_only_with_custom_domains_allowed(settings):
    from connections.app_fields import fields_for

    settings.ALLOW_CUSTOM_ENDPOINTS = False
    manu = fields_for(PROVIDERS["manu_online"])
    assert not {"authorize_url", "token_url", "api_base_url"} & set(manu)
    # The generic provider, and endpoints the catalogue cannot know, stay editable.
    assert {"authorize_url", "token_url"} <= set(fields_for(PROVIDERS["generic"]))
    settings.ALLOW_CUSTOM_ENDPOINTS = True
    assert {"authorize_url", "token_url"} <= set(fields_for(PROVIDERS["manu_online"]))

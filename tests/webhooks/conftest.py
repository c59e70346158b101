"""Webhook tests: apps registered as the form does, requests signed by the sandbox's own
signer (sandbox.webhooks) posted with the Django test client, and deliveries heard by a
loopback listener that verifies them with the standardwebhooks package (sandbox.listener)."""

import json

import pytest

from connections import services, webhook_listener
from connections.webhook_events import DEFAULT_EVENTS
from connections.webhooks_inbound import inbound_path
from sandbox.listener import Listener
from sandbox.listener import start as start_listener
from sandbox.webhooks import signed_headers
from tests import factories
from tests.support.webhooks import PRIMARY, SECOND


@pytest.fixture
def manu_app(acme, alice):
    """A Manu Online app with two active secrets: PRIMARY (primary) and SECOND."""
    app = factories.registered_app(
        acme,
        alice,
        PRIMARY,
        provider="manu_online",
        name="Manu ERP",
        client_id="manu-client",
        redirect_uris=["https://portal.example/oauth/callback/"],
        account_ids=["1001"],
        scopes=["API_ALL"],
    )
    services.secret_add(app=app, actor=alice, value=SECOND)
    return app


@pytest.fixture
def manus_app(acme, alice):
    app = factories.registered_app(
        acme,
        alice,
        PRIMARY,
        provider="manus",
        name="Manus tasks",
        client_id="client_manus",
        redirect_uris=["https://portal.example/oauth/callback/"],
        scopes=["create_task"],
        pkce_mode="pkce_secret",
    )
    services.secret_add(app=app, actor=alice, value=SECOND)
    return app


def body_of(payload) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


@pytest.fixture
def deliver(client):
    """deliver(app, payload, secret=PRIMARY, headers=None, body=None, **signing): sign the
    payload as the app's provider does and post it to the app's inbound URL. `body` is
    posted instead of what was signed (a tampered body); `headers` are added or replace."""

    def post(app, payload, *, secret=PRIMARY, headers=None, body=None, **signing):
        signed = body_of(payload)
        sent = signed_headers(app.provider, signed, secret=secret, **signing)
        sent.update(headers or {})
        content_type = sent.pop("Content-Type", "application/json")
        return client.post(
            inbound_path(app),
            data=signed if body is None else body,
            content_type=content_type,
            headers=sent,
        )

    return post


@pytest.fixture
def listener():
    """A tenant's listener on loopback (sandbox.listener), verifying what it gets."""
    heard = start_listener(Listener())
    yield heard
    heard.stop()


@pytest.fixture
def listen(alice):
    """listen(app, listener, **settings): point the app's deliveries at the listener, which
    is given the signing secret the portal shows once; the app, reloaded."""

    def configure(app, heard, **changes):
        fields = {
            "listener_url": heard.url,
            "listener_sync": False,
            "listener_events": list(DEFAULT_EVENTS),
            "lapse_warning_days": 7,
            **changes,
        }
        secret = webhook_listener.configure(app=app, actor=alice, **fields)
        if secret:
            heard.secrets.append(secret)
        app.refresh_from_db()
        return app

    return configure

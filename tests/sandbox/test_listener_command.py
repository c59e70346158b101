"""`manage.py sandbox_listener`: the demo's listener in the foreground. It verifies with the
secrets it is given (or an app's), answers as told, prints a line per delivery, points an app
at itself with --configure-app, listens on loopback only, and stops on Ctrl-C.

The command runs in a thread (stopped through its `stopping` event, what Ctrl-C does) or, for
Ctrl-C itself, in a subprocess; every wait is bounded and polled."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connections
from standardwebhooks.webhooks import Webhook

from connections import webhook_listener, webhooks_outbound
from connections.models import OutboundDelivery
from connections.webhook_events import DEFAULT_EVENTS, EventType
from connections.webhooks_inbound import inbound_path
from sandbox.management.commands import sandbox_listener
from sandbox.webhooks import signed_headers
from tests import factories
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
SECRET = webhook_listener.new_secret_value()


@contextmanager
def running(**options):
    """The command in a thread; yields (command, its output so far as a callable)."""
    out = io.StringIO()
    command = sandbox_listener.Command(stdout=out, stderr=io.StringIO())
    failed = []

    def run():
        try:
            call_command(command, **options)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failed.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: "Listening on" in out.getvalue() or failed,
            timeout=10,
            message="the listener did not start",
        )
        assert not failed, failed
        yield command, out.getvalue
    finally:
        command.stopping.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the command did not stop"


def signed(secret: str, message_id: str = "msg_test", kind: str = "test.ping"):
    body = json.dumps({"id": message_id, "type": kind, "data": {}})
    now = datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }
    return body, headers


def post(url: str, secret: str, **kwargs) -> requests.Response:
    body, headers = signed(secret, **kwargs)
    return requests.post(url, data=body, headers=headers, timeout=10)


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3}  #", line)]


def test_it_verifies_with_the_given_secrets_and_answers_as_told():
    other = webhook_listener.new_secret_value()
    with running(secret=[SECRET, other], port=0, fail=2, status=204) as (command, output):
        url = command.listener.url
        assert url.startswith("http://127.0.0.1:")
        answers = [
            post(url, SECRET, message_id="msg_a").status_code,
            post(url, other, message_id="msg_b").status_code,
            post(url, SECRET, message_id="msg_c").status_code,
            post(url, webhook_listener.new_secret_value(), message_id="msg_d").status_code,
        ]
        wait_for(lambda: len(lines(output())) == 4, timeout=10)
        printed = lines(output())
    assert answers == [503, 503, 204, 401]
    assert "msg_a  test.ping  verified  -> 503" in printed[0]
    assert "msg_b  test.ping  verified  -> 503" in printed[1]  # either secret verifies
    assert "msg_c  test.ping  verified  -> 204" in printed[2]
    assert "msg_d  test.ping  NOT verified: No matching signature found  -> 401" in printed[3]
    assert f"whsec_...{SECRET[-4:]}" in output() and SECRET not in output()
    assert output().rstrip().endswith("Stopped after 4 deliveries.")


def test_it_listens_on_loopback_only():
    with running(secret=[SECRET], port=0) as (command, _):
        host, port = command.listener.server.server_address[:2]
        assert host == "127.0.0.1"  # never 0.0.0.0: there is no option for another address
        assert post(f"http://127.0.0.1:{port}/hook", SECRET).status_code == 200


@pytest.fixture
def manu_app(portal_url, acme):
    return factories.sandbox_app(acme, "manu_online", portal_url, account_ids=["1001"])


def send_until_settled(pk: int) -> OutboundDelivery:
    """What the webhooks worker does, in this process: attempt whenever the delivery is due."""

    def settled():
        webhooks_outbound.attempt(pk)
        row = OutboundDelivery.objects.get(pk=pk)
        return row if row.status in (OutboundDelivery.Status.DELIVERED, "failed") else None

    return wait_for(settled, timeout=20, every=0.05, message="the delivery never settled")


def test_configure_app_points_the_app_here_and_hears_its_relay_retried(manu_app, client, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_RETRY_MAX_SECONDS = 1
    manu_app.listener_url = ""
    manu_app.listener_events = []
    manu_app.save()
    with running(configure_app=manu_app.pk, port=0, fail=1) as (command, output):
        manu_app.refresh_from_db()
        assert manu_app.listener_url == command.listener.url
        assert manu_app.listener_events == list(DEFAULT_EVENTS)
        # The first secret, made by configure, is the one the listener verifies with.
        [secret] = [s.value for s in webhook_listener.current_secrets(manu_app)]
        assert command.listener.secrets == [secret]

        body = json.dumps({"account_id": "1001", "event": "invoice.paid"}).encode()
        headers = signed_headers("manu_online", body, secret=manu_app.client_secrets.get().value)
        headers.pop("Content-Type")
        inbound = client.post(
            inbound_path(manu_app), data=body, content_type="application/json", headers=headers
        )
        assert inbound.status_code == 200, inbound.content
        relay = OutboundDelivery.objects.get(app=manu_app, event_type=EventType.RECEIVED)
        assert send_until_settled(relay.pk).status == OutboundDelivery.Status.DELIVERED
        wait_for(lambda: len(lines(output())) == 2, timeout=10)
        first, second = lines(output())
    assert f"{relay.message_id}  webhook.received  verified  -> 503" in first
    assert f"{relay.message_id}  webhook.received  verified  -> 200" in second
    assert f"App {manu_app.pk} ({manu_app.name}" in output()


def test_app_verifies_with_every_current_secret_across_a_rotation(manu_app, alice):
    first = webhook_listener.configure(
        app=manu_app,
        actor=alice,
        listener_url="http://127.0.0.1:9/hook",
        listener_sync=False,
        listener_events=list(DEFAULT_EVENTS),
        lapse_warning_days=7,
    )
    second = webhook_listener.rotate_secret(app=manu_app, actor=alice)
    with running(app=manu_app.pk, port=0) as (command, output):
        assert set(command.listener.secrets) == {first, second}
        url = command.listener.url
        assert post(url, first, message_id="msg_old").status_code == 200
        assert post(url, second, message_id="msg_new").status_code == 200
        wait_for(lambda: len(lines(output())) == 2, timeout=10)
    manu_app.refresh_from_db()
    assert manu_app.listener_url == "http://127.0.0.1:9/hook"  # --app changes nothing


def test_usage_errors_say_what_is_missing(manu_app):
    with pytest.raises(CommandError, match="Give --secret, --app or --configure-app"):
        call_command("sandbox_listener", port=0)
    with pytest.raises(CommandError, match="no signing secret yet"):
        call_command("sandbox_listener", app=manu_app.pk, port=0)
    with pytest.raises(CommandError, match="No app 999999"):
        call_command("sandbox_listener", configure_app=999999, port=0)
    with pytest.raises(CommandError, match="--status"):
        call_command("sandbox_listener", secret=[SECRET], status=99, port=0)
    with pytest.raises(CommandError, match="--fail"):
        call_command("sandbox_listener", secret=[SECRET], fail=-1, port=0)
    with pytest.raises(CommandError):
        call_command("sandbox_listener", "--app", "1", "--configure-app", "1")
    with running(secret=[SECRET], port=0) as (command, _):
        taken = command.listener.server.server_address[1]
        with pytest.raises(CommandError, match=f"Cannot listen on 127.0.0.1:{taken}"):
            call_command("sandbox_listener", secret=[SECRET], port=taken)


def test_ctrl_c_stops_it(tmp_path):
    log = tmp_path / "listener.log"
    env = {**os.environ, "DEBUG": "true", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - a fixed argument list
            [sys.executable, "manage.py", "sandbox_listener", "--secret", SECRET, "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        started = wait_for(
            lambda: re.search(r"Listening on (\S+) ", log.read_text()),
            timeout=30,
            message=f"the listener did not start: {log.read_text() if log.exists() else ''}",
        )
        assert post(started.group(1), SECRET).status_code == 200
        wait_for(lambda: lines(log.read_text()), timeout=10)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.read_text().rstrip().endswith("Stopped after 1 delivery.")

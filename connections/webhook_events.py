"""The portal's events to a tenant's listener, and the relay of providers' webhooks: what is
sent, and when.

emit() writes the delivery row inside the caller's transaction (an outbox: the event exists
if and only if the change it describes was committed) and queues its sending for after the
commit and after any lease the caller holds (notify.after), so nothing leaves while a lease
is held or a request waits. An event that must happen once carries an event key: the second
emit of the same key is a no-op (a unique constraint, so even two writers at once make one).
"""

import json
import logging
import uuid
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from connections.listing import lapsing_q
from connections.models import Connection, InboundDelivery, OutboundDelivery, PrivateApp
from connections.side_effects import after

log = logging.getLogger(__name__)


class EventType(models.TextChoices):
    RECEIVED = "webhook.received", "Provider webhook relayed"
    CREATED = "connection.created", "Connection created"
    REFRESHED = "connection.refreshed", "Connection refreshed"
    REFRESH_FAILED = "connection.refresh_failed", "Refresh failed"
    NEEDS_REAUTH = "connection.needs_reauth", "Needs re-authorisation"
    RECOVERED = "connection.recovered", "Connection recovered"
    REVOKED = "connection.revoked", "Connection revoked"
    LAPSING = "connection.lapsing", "Refresh token lapsing"
    CREDENTIALS_REJECTED = "app.credentials_rejected", "App credentials rejected"


#: every refresh would be one delivery: on only when a tenant asks for it
DEFAULT_EVENTS = tuple(e.value for e in EventType if e != EventType.REFRESHED)


def subscribed(app: PrivateApp, event_type: str) -> bool:
    return bool(app.listener_url) and event_type in (app.listener_events or ())


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _app_data(app: PrivateApp) -> dict:
    return {"id": app.pk, "name": app.name, "provider": app.provider}


def _connection_data(conn: Connection | None) -> dict | None:
    if conn is None:
        return None
    return {
        "id": conn.pk,
        "account_id": conn.account_id,
        "account_name": conn.account_name,
        "kind": conn.kind,
    }


def _create(
    app: PrivateApp,
    event_type: str,
    data: dict,
    *,
    connection=None,
    inbound=None,
    key: str = "",
    queue: bool = True,
) -> OutboundDelivery | None:
    message_id = new_message_id()
    document = {
        "id": message_id,
        "type": event_type,
        "timestamp": _iso(timezone.now()),
        "data": data,
    }
    body = json.dumps(document, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    try:
        with transaction.atomic():  # a savepoint: a duplicate key leaves the caller's work
            delivery = OutboundDelivery.objects.create(
                tenant_id=app.tenant_id,
                app=app,
                connection=connection,
                inbound=inbound,
                event_type=event_type,
                message_id=message_id,
                event_key=key[:200],
                body=body,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None  # this event was already emitted
    except DatabaseError:
        # The change it describes is already written (tokens stored, say): losing the
        # event is bad, failing the caller after its write would be worse.
        log.exception("could not record a %s delivery for app %s", event_type, app.pk)
        return None
    if queue:
        after(lambda: queue_send(delivery.pk))
    return delivery


def queue_send(pk: int) -> None:
    from connections.tasks import deliver_webhook

    try:
        deliver_webhook.delay(pk)
    except Exception:  # noqa: BLE001 - the sweep sends it; a broker hiccup loses nothing
        log.warning("could not queue webhook delivery %s; the sweep will send it", pk)


def emit(
    event_type: str,
    *,
    connection: Connection | None = None,
    app: PrivateApp | None = None,
    key: str = "",
    **data,
) -> OutboundDelivery | None:
    """A portal event about a connection (or an app) to its app's listener, if subscribed."""
    app = app if app is not None else connection.app
    if not subscribed(app, event_type):
        return None
    document = {"app": _app_data(app), "connection": _connection_data(connection), **data}
    return _create(app, event_type, document, connection=connection, key=key)


def relay(delivery: InboundDelivery, *, queue: bool = True) -> OutboundDelivery | None:
    """A verified provider webhook, to the app's listener with the connection it names
    (`queue=False`: the caller sends it, synchronous mode)."""
    app = delivery.app
    if not subscribed(app, EventType.RECEIVED):
        return None
    body = delivery.body_text()
    payload = None if delivery.malformed else _strict(json.loads(body))
    data = {
        "app": _app_data(app),
        "connection": _connection_data(delivery.connection),
        "attributed": delivery.attributed,
        "account_id": delivery.account_id,
        "provider_delivery_id": delivery.delivery_id,
        "received_at": _iso(delivery.received_at),
        "malformed": delivery.malformed,
        # A JSON payload is passed on as JSON; a malformed one (or one strict JSON cannot
        # carry: NaN, 1e999) as the text received.
        "payload": payload,
        "raw": body if payload is None else None,
    }
    return _create(
        app, EventType.RECEIVED, data, connection=delivery.connection, inbound=delivery, queue=queue
    )


#: lapsing events emitted per run of the hourly task, at most
LAPSING_BATCH = 1000


def _strict(payload):
    try:
        json.dumps(payload, allow_nan=False)
    except (ValueError, RecursionError):
        return None
    return payload


def emit_lapsing(*, now) -> int:
    """One "refresh token lapsing" event per connection and refresh-token expiry, within each
    subscribed app's lapse_warning_days; the number emitted."""
    emitted = 0
    apps = PrivateApp.objects.exclude(listener_url="").select_related("tenant")
    for app in apps:
        if not subscribed(app, EventType.LAPSING):
            continue
        if app.status == PrivateApp.Status.DISABLED:
            continue  # paused: its tokens are not refreshed, the listener hears nothing new
        told = OutboundDelivery.objects.filter(
            connection=OuterRef("pk"),
            event_type=EventType.LAPSING,
            created_at__gte=now - timedelta(days=app.lapse_warning_days + 1),
        )
        lapsing = (
            app.connections.filter(lapsing_q(now, app.lapse_warning_days))
            .filter(refresh_expires_at__gt=now)  # not yet over: once over, it needs reauth
            .exclude(Exists(told))  # told within this window: the rest of the batch goes next
            .order_by("refresh_expires_at", "id")[:LAPSING_BATCH]
        )
        for conn in lapsing:
            conn.app = app
            ends = conn.refresh_expires_at
            emitted += bool(
                emit(
                    EventType.LAPSING,
                    connection=conn,
                    key=f"lapsing:{conn.pk}:{ends.isoformat()}",
                    refresh_expires_at=_iso(ends),
                )
            )
    return emitted


def _iso(when) -> str:
    return when.isoformat().replace("+00:00", "Z")

"""Test objects built straight in the database: apps that never talk to a provider and
connections in whatever state a test needs. (Connections the sandbox really issued come from
sandbox.shortcuts, through the lifecycle.)"""

import itertools
from datetime import timedelta

from django.utils import timezone

from connections.models import AuditEvent, Connection, PrivateApp
from connections.providers import get_provider

_n = itertools.count(1)


def app(tenant, provider: str = "manu_online", **fields) -> PrivateApp:
    catalogue = get_provider(provider)
    n = next(_n)
    values = {
        "name": f"{catalogue.name} app {n}",
        "provider": provider,
        "status": PrivateApp.Status.ENABLED,
        "grant_type": catalogue.grants[0],
        "client_id": f"client-{n}",
        "client_auth": catalogue.client_auth,
        **fields,
    }
    return PrivateApp.objects.create(tenant=tenant, **values)


def connection(app: PrivateApp, *, user=None, now=None, **fields) -> Connection:
    """An active connection of `app` refreshed a minute ago, unless `fields` say otherwise;
    `refresh_in` / `access_in` (timedeltas from now) set the expiries."""
    now = now or timezone.now()
    n = next(_n)
    refresh_in = fields.pop("refresh_in", timedelta(days=365))
    access_in = fields.pop("access_in", timedelta(minutes=29))
    values = {
        "status": Connection.Status.ACTIVE,
        "account_id": f"acct-{n}",
        "account_name": f"Account {n}",
        "last_refreshed_at": now - timedelta(minutes=1),
        "access_expires_at": now + access_in if access_in is not None else None,
        "refresh_expires_at": now + refresh_in if refresh_in is not None else None,
        **fields,
    }
    return Connection.objects.create(tenant=app.tenant, app=app, user=user, **values)


def event(conn: Connection, kind: str, *, at, **fields) -> AuditEvent:
    return AuditEvent.objects.create(
        tenant=conn.tenant, app=conn.app, connection=conn, kind=kind, created_at=at, **fields
    )

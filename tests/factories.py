"""Every test object is built here, one way per kind.

- member(): a user with a role in a tenant (password tests.support.people.PASSWORD).
- app(), connection(), event(): straight in the database; apps that never talk to a provider
  and connections in whatever state a test needs (token fields included).
- outbound_delivery(), outbound_attempt(): a message to an app's listener and its tries, in
  any status, without sending anything.
- registered_app(): an app registered the way the portal's form does it (services.app_create).
- sandbox_app(): an app pointing at the sandbox on a live server, its twin client registered
  there with the same secret; sandbox_client(): a sandbox client from a spec dict.
- minted_connection(): a connection the sandbox really issued: a minted code (as if the user
  had pressed Grant) exchanged by the portal over real HTTP, so the sandbox knows every token.

Benchmarks build their sandbox apps and connections with these too.
"""

import itertools
import secrets
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from connections import services
from connections.lifecycle import connection_obtain_from_code
from connections.models import (
    AuditEvent,
    AuthorizationAttempt,
    ClientSecret,
    Connection,
    OutboundAttempt,
    OutboundDelivery,
    PrivateApp,
)
from connections.providers import get_provider
from connections.webhook_events import EventType, new_message_id
from portal.models import Membership, Tenant
from sandbox import registry
from sandbox.grants import new_code
from sandbox.models import Client
from sandbox.profiles import get_profile, urls_for
from tests.support.people import PASSWORD

_n = itertools.count(1)

ACCOUNT = {"id": "1001", "name": "Acme Oy"}


def member(tenant: Tenant, username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


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
    """An active connection of `app` refreshed a minute ago, unless `fields` say otherwise
    (access_token=, refresh_token=, next_refresh_at=, …); `refresh_in` / `access_in`
    (timedeltas from now, or None for no expiry) set the expiries."""
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


def outbound_delivery(
    app: PrivateApp, event_type: str = EventType.CREATED, *, connection=None, **fields
) -> OutboundDelivery:
    """A delivery to the app's listener, pending and due unless `fields` say otherwise
    (status=, attempts=, created_at=, inbound=, last_status_code=, body=, …)."""
    values = {
        "status": OutboundDelivery.Status.PENDING,
        "body": b'{"type": "%s"}' % str(event_type).encode(),
        "next_attempt_at": timezone.now(),
        **fields,
    }
    return OutboundDelivery.objects.create(
        tenant=app.tenant,
        app=app,
        connection=connection,
        event_type=event_type,
        message_id=new_message_id(),
        **values,
    )


def outbound_attempt(delivery: OutboundDelivery, **fields) -> OutboundAttempt:
    """One try at `delivery`: a 200 in 120 ms unless `fields` say otherwise."""
    values = {"duration_ms": 120, "status_code": 200, **fields}
    return OutboundAttempt.objects.create(delivery=delivery, **values)


def registered_app(tenant, actor, secret: str, **fields) -> PrivateApp:
    """An app registered through services.app_create, as the registration form does it
    (audit event, the provider's starting status, the secret stored encrypted)."""
    created, _ = services.app_create(
        tenant=tenant, actor=actor, fields=fields, client_secret=secret
    )
    return created


def sandbox_client(spec: dict, **changes) -> Client:
    """registry.register_client with a spec's arguments (provider, client_id, secrets, …),
    some changed; registering the same client id again updates it."""
    return registry.register_client(**{**spec, **changes})


def sandbox_app(
    tenant, provider: str, base_url: str, *, sandbox: dict | None = None, **fields
) -> PrivateApp:
    """An enabled app pointing at the sandbox on base_url and its twin client registered
    there, sharing one secret, the callback URL, accounts, scopes and subscription key.

    `fields` are the app's (pkce_mode=, account_ids=, scopes=, status=, name=, …); `sandbox`
    goes to the sandbox client only (access_lifetime=, rate_limit=, rate_window=, …), and a
    rate limit given there is the app's limit too."""
    catalogue = get_provider(provider)
    sandbox = sandbox or {}
    client_id = fields.pop("client_id", f"{provider}-{uuid.uuid4().hex[:12]}")
    secret = f"secret-{secrets.token_urlsafe(24)}"
    callback = f"{base_url}/oauth/callback/"
    values = {
        "name": f"{catalogue.name} {client_id}",
        "provider": provider,
        "status": PrivateApp.Status.ENABLED,
        "grant_type": catalogue.grants[0],
        "client_id": client_id,
        "client_auth": catalogue.client_auth,
        "redirect_uris": [callback] if catalogue.uses_redirect else [],
        "scopes": list(catalogue.default_scopes or catalogue.known_scopes[:1]),
        "token_rate_limit": sandbox.get("rate_limit"),
        "token_rate_window": sandbox.get("rate_window"),
        **urls_for(provider, base_url),
        **fields,
    }
    made = PrivateApp.objects.create(tenant=tenant, **values)
    ClientSecret.objects.create(app=made, value=secret, last_four=secret[-4:], is_primary=True)
    registry.register_client(
        provider=provider,
        client_id=made.client_id,
        secrets=[secret],
        redirect_uris=made.redirect_uris,
        account_ids=made.account_ids,
        scopes=made.scopes,
        subscription_keys=[k for k in [made.subscription_key_primary] if k],
        **sandbox,
    )
    return made


def minted_connection(
    app: PrivateApp, *, user, sandbox_user=None, account: dict = ACCOUNT, reconnect=None
) -> Connection:
    """A sandbox user grants `app` access (a minted code); the portal exchanges the code over
    HTTP at the sandbox token endpoint, as `user`, into a new connection or `reconnect`."""
    if sandbox_user is None:
        sandbox_user = registry.create_user(
            provider=app.provider,
            username=f"user-{uuid.uuid4().hex[:8]}",
            password=secrets.token_urlsafe(12),
            accounts=[account],
        )
    profile = get_profile(app.provider)
    code = new_code(
        profile,
        Client.objects.get(provider=profile.key, client_id=app.client_id),
        user=sandbox_user,
        redirect_uri=app.redirect_uris[0],
        scopes=app.scopes,
        account_id=account["id"],
        account_name=account["name"],
    )
    attempt = AuthorizationAttempt.objects.create(
        tenant=app.tenant,
        app=app,
        user=user,
        connection=reconnect,
        state_hash=uuid.uuid4().hex,
        redirect_uri=app.redirect_uris[0],
        scopes=app.scopes,
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    return connection_obtain_from_code(attempt=attempt, code=code)

"""Apps and connections against the sandbox without a browser, for tests and benchmarks.

The consent pages are the connect flow's business; here the sandbox mints a code as if the user
had pressed Grant, and the portal exchanges it over real HTTP with obtain_from_code, so every
token was issued by the sandbox and is known to it.
"""

import secrets
import uuid

from django.utils import timezone

from connections.lifecycle import connection_obtain_from_code
from connections.models import AuthorizationAttempt, ClientSecret, Connection, PrivateApp
from connections.providers import get_provider
from sandbox import registry
from sandbox.grants import new_code
from sandbox.models import Client
from sandbox.profiles import get_profile, urls_for

ACCOUNT = {"id": "1001", "name": "Acme Oy"}


def sandbox_app(
    *, tenant, provider: str, base_url: str, pkce_mode: str = "secret", **client_kwargs
) -> PrivateApp:
    """An enabled app pointing at the sandbox on base_url, its sandbox client registered with
    client_kwargs (access_lifetime=, rate_limit=, rate_window=, …) and the same limit."""
    catalogue = get_provider(provider)
    client_id = f"{provider}-{uuid.uuid4().hex[:12]}"
    secret = f"secret-{secrets.token_urlsafe(24)}"
    callback = f"{base_url}/oauth/callback/"
    scopes = list(catalogue.default_scopes or catalogue.known_scopes[:1])
    registry.register_client(
        provider=provider,
        client_id=client_id,
        secrets=[secret],
        redirect_uris=[callback],
        scopes=scopes,
        **client_kwargs,
    )
    app = PrivateApp.objects.create(
        tenant=tenant,
        name=f"{catalogue.name} {client_id}",
        provider=provider,
        status=PrivateApp.Status.ENABLED,
        grant_type=catalogue.grants[0],
        client_id=client_id,
        client_auth=catalogue.client_auth,
        pkce_mode=pkce_mode,
        redirect_uris=[callback],
        scopes=scopes,
        token_rate_limit=client_kwargs.get("rate_limit"),
        token_rate_window=client_kwargs.get("rate_window"),
        **urls_for(provider, base_url),
    )
    ClientSecret.objects.create(app=app, value=secret, last_four=secret[-4:], is_primary=True)
    return app


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
        expires_at=timezone.now() + timezone.timedelta(minutes=10),
    )
    return connection_obtain_from_code(attempt=attempt, code=code)

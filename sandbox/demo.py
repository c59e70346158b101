"""`manage.py demo`: one enabled app per provider, pointing at the sandbox, ready to Connect.

Idempotent: a second run keeps each app and its secret and re-registers the sandbox side
with the same secret (and the current PORTAL_BASE_URL), so the pair always matches.
Portal objects are created with the ORM directly: the app registry services are built in
parallel and the demo needs none of their checks.
"""

import secrets

from django.conf import settings
from django.db import transaction

from connections.models import ClientSecret, PrivateApp
from connections.providers import get_provider
from sandbox import registry
from sandbox.profiles import PROFILES, urls_for

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
MANU_ACCOUNTS = [{"id": "1001", "name": "Demo Oy"}, {"id": "1002", "name": "Demo Trading AB"}]

# Per provider: what differs in the demo app, as data.
DEMO_APPS = {
    "manu_online": {"scopes": ["API_ALL"], "account_ids": [a["id"] for a in MANU_ACCOUNTS]},
    "manus": {"scopes": ["create_task"], "pkce_mode": "pkce_secret"},
    "manhattan_active": {"service_user": True},
    "manitou_group": {"scopes": ["Products"], "subscription_keys": True},
}


def create_demo_apps(*, tenant, user) -> list:
    base = settings.PORTAL_BASE_URL
    with transaction.atomic():
        return [_demo_app(tenant, user, key, spec, base) for key, spec in DEMO_APPS.items()]


def _demo_app(tenant, user, key: str, spec: dict, base: str) -> PrivateApp:
    provider, profile = get_provider(key), PROFILES[key]
    app, created = PrivateApp.objects.get_or_create(
        tenant=tenant,
        name=f"{provider.name} (sandbox)",
        defaults={
            "provider": key,
            "client_id": f"demo-{tenant.slug}-{profile.slug}",
            "grant_type": provider.grants[0].value,
            "client_auth": provider.client_auth.value,
            "pkce_mode": spec.get("pkce_mode", "secret"),
            "scopes": spec.get("scopes", []),
            "account_ids": spec.get("account_ids", []),
            "redirect_uris": [base + "/oauth/callback/"] if provider.uses_redirect else [],
            "created_by": user,
        },
    )
    # Endpoints follow the current base URL on every run.
    for field, url in urls_for(key, base).items():
        setattr(app, field, url)
    app.status = PrivateApp.Status.ENABLED
    if spec.get("service_user"):
        app.service_username, app.service_password = DEMO_USERNAME, DEMO_PASSWORD
    if spec.get("subscription_keys") and not app.subscription_key_primary:
        app.subscription_key_primary = secrets.token_hex(16)
        app.subscription_key_secondary = secrets.token_hex(16)
    app.save()

    secret = app.client_secrets.filter(revoked_at__isnull=True).order_by("-is_primary").first()
    if secret is None:
        value = secrets.token_urlsafe(24)
        secret = ClientSecret.objects.create(
            app=app,
            label="Primary",
            value=value,
            last_four=value[-4:],
            is_primary=True,
            created_by=user,
        )
    keys = [k for k in (app.subscription_key_primary, app.subscription_key_secondary) if k]
    registry.register_client(
        provider=key,
        client_id=app.client_id,
        name=app.name,
        secrets=[secret.value],
        redirect_uris=app.redirect_uris,
        account_ids=app.account_ids,
        scopes=app.scopes,
        subscription_keys=keys,
    )
    registry.create_user(
        provider=key,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        accounts=MANU_ACCOUNTS if profile.has_accounts else (),
    )
    return app

"""The sandbox's Python API for tests, the demo and scripts: register clients and users, and
look at what the emulated providers saw and issued."""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from sandbox.models import Client, SandboxUser, Token, TokenRequest, digest, hash_password
from sandbox.profiles import get_profile


def register_client(
    *,
    provider: str,
    client_id: str,
    secrets: Iterable[str],
    redirect_uris: Iterable[str] = (),
    account_ids: Iterable[str] = (),
    scopes: Iterable[str] = (),
    connector_uids: Iterable[str] = (),
    access_lifetime: int | None = None,
    refresh_lifetime: int | None = None,
    rate_limit: int | None = None,
    rate_window: int | None = None,
    subscription_keys: Iterable[str] = (),
    name: str = "",
) -> Client:
    """Create or update (by provider and client id) a client. None takes the provider's
    default; empty scopes take the provider's default scopes. Only hashes of the secrets and
    subscription keys are kept. Widening the scopes or connector uids of a Manus client
    invalidates every token it holds (seed 003)."""
    profile = get_profile(provider)
    scopes = list(scopes) or list(profile.default_scopes)
    secrets = list(secrets)
    fields = {
        "name": name,
        "secret_hashes": [digest(s) for s in secrets],
        # Webhooks are signed with the first secret (seed 000: the primary).
        "webhook_secret": secrets[0] if secrets else None,
        "subscription_key_hashes": [digest(k) for k in subscription_keys],
        "redirect_uris": list(redirect_uris),
        "account_ids": [str(a) for a in account_ids],
        "scopes": scopes,
        "connector_uids": list(connector_uids),
        "access_lifetime": profile.access_lifetime if access_lifetime is None else access_lifetime,
        "refresh_lifetime": profile.refresh_lifetime
        if refresh_lifetime is None
        else refresh_lifetime,
        "rate_limit": profile.rate_limit if rate_limit is None else rate_limit,
        "rate_window": profile.rate_window if rate_window is None else rate_window,
    }
    with transaction.atomic():
        client = (
            Client.objects.select_for_update()
            .filter(provider=profile.key, client_id=client_id)
            .first()
        )
        if client is None:
            return Client.objects.create(provider=profile.key, client_id=client_id, **fields)
        widened = not set(scopes) <= set(client.scopes) or not set(fields["connector_uids"]) <= set(
            client.connector_uids
        )
        if widened and profile.widening_invalidates:
            client.tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        for name_, value in fields.items():
            setattr(client, name_, value)
        client.save()
        return client


def create_user(
    *, provider: str, username: str, password: str, accounts: Iterable[dict] = ()
) -> SandboxUser:
    """Create or update a user who can log in at the provider's login page (or, for Manhattan
    Active, use the password grant). accounts: [{"id": "1001", "name": "Acme Oy"}, ...]."""
    key = get_profile(provider).key
    user, _ = SandboxUser.objects.update_or_create(
        provider=key,
        username=username,
        defaults={
            "password": hash_password(password),
            "accounts": [
                {"id": str(a["id"]), "name": str(a.get("name", a["id"]))} for a in accounts
            ],
        },
    )
    return user


def _token_active(provider: str, value: str, kind: str) -> bool:
    token = Token.objects.filter(
        client__provider=get_profile(provider).key, kind=kind, value_hash=digest(value)
    ).first()
    return token is not None and token.is_active()


def token_is_active(provider: str, access_token: str) -> bool:
    return _token_active(provider, access_token, Token.Kind.ACCESS)


def refresh_token_is_active(provider: str, refresh_token: str) -> bool:
    return _token_active(provider, refresh_token, Token.Kind.REFRESH)


def token_request_count(provider: str, client_id: str, *, grant_type: str | None = None) -> int:
    """How many token-endpoint calls naming this client id reached the provider (including
    the ones answered 429 or with an injected fault); optionally of one grant type."""
    requests = TokenRequest.objects.filter(
        provider=get_profile(provider).key, client_id=client_id, endpoint="token"
    )
    if grant_type is not None:
        requests = requests.filter(grant_type=grant_type)
    return requests.count()


def token_hash(value: str) -> str:
    """The sha256 hex digest the sandbox stores for a token (Token.value_hash), as
    live_refresh_tokens() lists them."""
    return digest(value)


def _refresh_tokens(provider: str, client_id: str) -> QuerySet[Token]:
    return Token.objects.filter(
        client__provider=get_profile(provider).key,
        client__client_id=client_id,
        kind=Token.Kind.REFRESH,
    )


def presentations(provider: str, refresh_token: str) -> int:
    """How many token-endpoint calls (grant_type=refresh_token, naming its own client id)
    presented this refresh token, whatever the answer: success, invalid_grant, invalid_client,
    an injected fault, 429... 0 for a token this provider never issued."""
    found = (
        Token.objects.filter(
            client__provider=get_profile(provider).key,
            kind=Token.Kind.REFRESH,
            value_hash=digest(refresh_token),
        )
        .values_list("presentations", flat=True)
        .first()
    )
    return found or 0


def most_presented(provider: str, client_id: str) -> int:
    """The highest presentations() count over this client's refresh tokens; 0 if it has none.
    More than 1 means some refresh token was sent again (a retry or a reuse)."""
    return _refresh_tokens(provider, client_id).aggregate(most=Max("presentations"))["most"] or 0


def live_refresh_tokens(provider: str, client_id: str) -> list[str]:
    """token_hash() of each of this client's refresh tokens still active (not used, revoked or
    expired), oldest first: the grants still live at the provider."""
    now = timezone.now()
    live = _refresh_tokens(provider, client_id).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        used_at__isnull=True,
        revoked_at__isnull=True,
    )
    return list(live.order_by("created_at", "pk").values_list("value_hash", flat=True))

"""What the token and revoke endpoints do once the request is parsed: check the grant, consume
codes and refresh tokens exactly once, issue token pairs.

Views call these inside a transaction; every refusal is an OAuthError carrying the RFC 6749
error code and HTTP status the seeds document.
"""

import base64
import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from sandbox.models import Client, Code, SandboxUser, Token, digest
from sandbox.profiles import Profile

ALPHABET = string.ascii_letters + string.digits
CODE_LIFETIME = timedelta(minutes=10)  # seed 003: codes expire in 10 minutes


class OAuthError(Exception):
    def __init__(self, error: str, description: str = "", status: int = 400):
        super().__init__(description or error)
        self.error = error
        self.description = description
        self.status = status


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def invalid_grant(description: str = "authorization grant is invalid or expired") -> OAuthError:
    return OAuthError("invalid_grant", description)


@dataclass(frozen=True)
class Caller:
    """The client as authenticated at the endpoint. secret_ok is False when no secret was sent
    (a wrong secret never gets this far): only PKCE-issued grants accept that (seed 003)."""

    profile: Profile
    client: Client
    secret_ok: bool

    def require_secret(self, public_allowed: bool = False) -> None:
        if not self.secret_ok and not public_allowed:
            raise invalid_client()


def random_value(fmt: str, client_id: str = "") -> str:
    """Fill each {random} with its own 22 random characters (a shortuuid's length)."""
    pieces = fmt.split("{random}")
    value = pieces[0]
    for piece in pieces[1:]:
        value += "".join(secrets.choice(ALPHABET) for _ in range(22)) + piece
    # After the random parts, so a client id containing "{random}" stays as it is.
    return value.replace("{client_id}", client_id)


def s256(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_code(profile: Profile, client: Client, **fields) -> str:
    value = random_value(profile.code_format, client_id=client.client_id)
    Code.objects.create(
        client=client,
        value_hash=digest(value),
        expires_at=timezone.now() + CODE_LIFETIME,
        **fields,
    )
    return value


def issue(
    caller: Caller,
    *,
    user: SandboxUser | None,
    scopes: list[str],
    account_id: str = "",
    account_name: str = "",
    public: bool = False,
) -> dict:
    """Store a new access token (and refresh token where the provider has them); the reply."""
    profile, client = caller.profile, caller.client
    now = timezone.now()
    pair = uuid.uuid4().hex
    common = {
        "client": client,
        "user": user,
        "pair": pair,
        "scopes": scopes,
        "account_id": account_id,
        "account_name": account_name,
        "public": public,
    }
    access = random_value("{random}{random}")
    Token.objects.create(
        kind=Token.Kind.ACCESS,
        value_hash=digest(access),
        expires_at=now + timedelta(seconds=client.access_lifetime),
        **common,
    )
    reply = {
        "access_token": access,
        "token_type": profile.token_type,
        "expires_in": client.access_lifetime,
        "scope": profile.join_scopes(scopes),
    }
    if "refresh_token" in profile.grants and client.refresh_lifetime is not None:
        refresh = random_value(profile.refresh_format)
        Token.objects.create(
            kind=Token.Kind.REFRESH,
            value_hash=digest(refresh),
            expires_at=now + timedelta(seconds=client.refresh_lifetime),
            **common,
        )
        reply["refresh_token"] = refresh
    return reply


def requested_scopes(caller: Caller, raw: str | None, allowed: list[str]) -> list[str]:
    """The scopes asked for (all allowed ones when none), refused when not all allowed."""
    scopes = caller.profile.split_scopes(raw or "") or list(allowed)
    unknown = [s for s in scopes if s not in allowed]
    if unknown:
        raise OAuthError("invalid_scope", f"scope not configured on the app: {', '.join(unknown)}")
    return scopes


def authorization_code(caller: Caller, params: dict) -> dict:
    value, redirect_uri = params.get("code"), params.get("redirect_uri")
    if not value:
        raise OAuthError("invalid_request", "code is required")
    code = (
        Code.objects.select_related("user")
        .filter(client=caller.client, value_hash=digest(value))
        .first()
    )
    uses_pkce = bool(code and code.code_challenge)
    caller.require_secret(public_allowed=uses_pkce)
    if code is None or code.used_at or code.expires_at <= timezone.now():
        raise invalid_grant()
    if not redirect_uri:
        raise OAuthError("invalid_request", "redirect_uri is required")
    if redirect_uri != code.redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if caller.profile.pkce:
        check_verifier(code, params.get("code_verifier"))
    # Atomic consumption: of two concurrent exchanges only one updates the row.
    if not Code.objects.filter(pk=code.pk, used_at__isnull=True).update(used_at=timezone.now()):
        raise invalid_grant()
    return issue(
        caller,
        user=code.user,
        scopes=code.scopes,
        account_id=code.account_id,
        account_name=code.account_name,
        public=uses_pkce and not caller.secret_ok,
    )


def check_verifier(code: Code, verifier: str | None) -> None:
    if code.code_challenge:
        if not verifier:
            raise invalid_grant("code_verifier is required")
        if not hmac.compare_digest(s256(verifier), code.code_challenge):
            raise invalid_grant("code_verifier does not match code_challenge")
    elif verifier:
        # A verifier for a code issued without a challenge means the client lost its challenge.
        raise invalid_grant("code was issued without code_challenge")


def refresh_token(caller: Caller, params: dict) -> dict:
    value = params.get("refresh_token")
    if not value:
        raise OAuthError("invalid_request", "refresh_token is required")
    old = (
        Token.objects.select_related("user")
        .filter(client=caller.client, kind=Token.Kind.REFRESH, value_hash=digest(value))
        .first()
    )
    caller.require_secret(public_allowed=bool(old and old.public))
    # Seed 003 says PKCE + secret refreshes need code_verifier too, but there is no challenge
    # left to check it against and common clients (requests-oauthlib) do not send it: a
    # code_verifier is accepted when sent and not required.
    now = timezone.now()
    if old is None or not old.is_active(now):
        raise invalid_grant()
    scopes = old.scopes
    if params.get("scope"):
        scopes = requested_scopes(caller, params["scope"], old.scopes)  # narrowing only
    # Single use: only the request whose UPDATE hits the row gets a new pair.
    if not Token.objects.filter(pk=old.pk, used_at__isnull=True, revoked_at__isnull=True).update(
        used_at=now
    ):
        raise invalid_grant()
    if caller.profile.refresh_revokes_pair:
        Token.objects.filter(pair=old.pair, revoked_at__isnull=True).update(revoked_at=now)
    return issue(
        caller,
        user=old.user,
        scopes=scopes,
        account_id=old.account_id,
        account_name=old.account_name,
        public=old.public,
    )


def password(caller: Caller, params: dict) -> dict:
    caller.require_secret()
    username, raw_password = params.get("username"), params.get("password")
    if not username or raw_password is None:
        raise OAuthError("invalid_request", "username and password are required")
    user = SandboxUser.objects.filter(provider=caller.profile.key, username=username).first()
    if user is None or not user.check_password(raw_password):
        # Seed 002: a 400 means the username and password are invalid.
        raise invalid_grant("Bad credentials")
    scopes = requested_scopes(caller, params.get("scope"), caller.client.scopes)
    return issue(caller, user=user, scopes=scopes)


def client_credentials(caller: Caller, params: dict) -> dict:
    caller.require_secret()
    scopes = requested_scopes(caller, params.get("scope"), caller.client.scopes)
    return issue(caller, user=None, scopes=scopes)


GRANTS = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "password": password,
    "client_credentials": client_credentials,
}


def revoke(caller: Caller, params: dict) -> None:
    """RFC 7009: the same answer whether or not the token exists. Revoking either token of a
    pair revokes both, so a disconnected connection's access token stops working too."""
    value = params.get("token")
    if not value:
        raise OAuthError("invalid_request", "token is required")
    # token_type_hint only orders a real provider's lookup; one query covers both kinds here.
    token = Token.objects.filter(client=caller.client, value_hash=digest(value)).first()
    caller.require_secret(public_allowed=bool(token and token.public))
    if token is not None:
        Token.objects.filter(pair=token.pair, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )

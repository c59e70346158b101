"""How each emulated provider behaves, as data: one frozen record per provider.

The numbers come from the vendor documents in shared/seeds/ (000/001 Manu Online, 002 Manhattan
Active, 003 Manus, 004 Manitou Group). Views read these records; they never branch on the
provider's name. This module imports no models so `sandbox.urls_for` works at import time.
"""

from dataclasses import dataclass, field

DAY = 24 * 3600


@dataclass(frozen=True)
class Profile:
    key: str  # the portal catalogue's provider key
    slug: str  # the URL segment under /sandbox/
    name: str
    grants: frozenset[str]
    #: where the token endpoint reads client credentials: "form" / "json" body, "basic" header
    client_auth: frozenset[str]
    #: body encodings the token endpoint parses
    body_formats: frozenset[str] = frozenset({"form"})
    scope_separator: str = " "
    token_type: str = "Bearer"
    access_lifetime: int = 3600
    #: None: no refresh tokens are issued
    refresh_lifetime: int | None = None
    #: default token-endpoint limit per client id (requests per window); None: unlimited
    rate_limit: int | None = None
    rate_window: int = 60
    #: a refresh revokes the whole old pair, so the old access token dies too (seed 003)
    refresh_revokes_pair: bool = False
    #: adding scopes or connector uids to a client invalidates all its tokens (seed 003)
    widening_invalidates: bool = False
    #: the login is followed by an account picker when the user has several accounts (seed 000)
    has_accounts: bool = False
    pkce: bool = False
    #: the authorize request must carry response_type=code (Manus's URL in seed 003 has none)
    requires_response_type: bool = False
    code_format: str = "{random}"
    refresh_format: str = "{random}"
    default_scopes: tuple[str, ...] = ()
    #: endpoint paths below the provider's base, by portal field name ("" = not offered)
    paths: dict[str, str] = field(default_factory=dict)
    # How the provider signs the webhooks it sends (sandbox.webhooks); no header: it sends
    # none. Written out here, not read from the portal's catalogue, so a portal that
    # verifies differently from how the provider signs fails its tests.
    webhook_signature_header: str = ""
    webhook_encoding: str = "hex"  # or "base64"
    webhook_timestamp_header: str = ""
    webhook_id_header: str = ""

    def split_scopes(self, raw: str) -> list[str]:
        """Split strictly on this provider's separator: a portal that sends the wrong one
        gets an unknown scope back instead of a silent success."""
        return list(
            dict.fromkeys(p.strip() for p in (raw or "").split(self.scope_separator) if p.strip())
        )

    def join_scopes(self, scopes) -> str:
        return self.scope_separator.join(scopes)


MANU_ONLINE = Profile(
    key="manu_online",
    slug="manu-online",
    name="Manu Online",
    grants=frozenset({"authorization_code", "refresh_token"}),
    client_auth=frozenset({"form"}),  # seed 001: client_id/client_secret in the form body
    scope_separator=",",  # seed 000: comma delimited list
    token_type="bearer",  # seed 001 example response
    access_lifetime=30 * 60,
    refresh_lifetime=730 * DAY,
    has_accounts=True,
    requires_response_type=True,
    default_scopes=("API_ALL",),
    paths={
        "authorize_url": "/oauth/authorize",
        "token_url": "/oauth/token",
        "revoke_url": "",
    },
    # Seed 000: signed with the first secret. The header names are assumed (the seed has none).
    webhook_signature_header="X-Manu-Signature",
    webhook_timestamp_header="X-Manu-Timestamp",
    webhook_id_header="X-Manu-Webhook-Id",
)

MANUS = Profile(
    key="manus",
    slug="manus",
    name="Manus",
    grants=frozenset({"authorization_code", "refresh_token"}),
    client_auth=frozenset({"form", "json", "basic"}),  # seed 003 + RFC 6749 §2.3.1
    body_formats=frozenset({"form", "json"}),
    access_lifetime=DAY,
    refresh_lifetime=30 * DAY,
    rate_limit=60,  # seed 003: 60 / min per client_id, token and revoke
    rate_window=60,
    refresh_revokes_pair=True,
    widening_invalidates=True,
    pkce=True,
    code_format="code_{client_id}_{random}",  # seed 003
    refresh_format="refresh_{random}_{random}_{random}",  # seed 003
    default_scopes=("create_task",),
    paths={
        "authorize_url": "/openapi/oauth",
        "token_url": "/oauth/token",
        "revoke_url": "/oauth/revoke",
    },
    # Seed 003's Webhook Security guide is not at hand: the same assumption as the portal's.
    webhook_signature_header="X-Webhook-Signature",
    webhook_encoding="base64",
    webhook_timestamp_header="X-Webhook-Timestamp",
    webhook_id_header="X-Webhook-Id",
)

# Manhattan Active issues no refresh token: the portal fetches a new token with the service
# user's password before expiry, as a password-grant client normally does.
MANHATTAN_ACTIVE = Profile(
    key="manhattan_active",
    slug="manhattan-active",
    name="Manhattan Active",
    grants=frozenset({"password"}),
    client_auth=frozenset({"basic"}),  # seed 002: auth=(client_id, client_secret)
    token_type="bearer",
    access_lifetime=3600,
    paths={"authorize_url": "", "token_url": "/oauth/token", "revoke_url": ""},
)

MANITOU_GROUP = Profile(
    key="manitou_group",
    slug="manitou-group",
    name="Manitou Group",
    grants=frozenset({"client_credentials"}),
    client_auth=frozenset({"basic"}),  # seed 004: Authorization: Basic base64(id:secret)
    access_lifetime=3568,  # seed 004 example
    default_scopes=("Products",),
    paths={"authorize_url": "", "token_url": "/v1/token", "revoke_url": ""},
)

PROFILES: dict[str, Profile] = {
    p.key: p for p in (MANU_ONLINE, MANUS, MANHATTAN_ACTIVE, MANITOU_GROUP)
}
BY_SLUG: dict[str, Profile] = {p.slug: p for p in PROFILES.values()}


def get_profile(provider: str) -> Profile:
    """By portal key ("manu_online") or URL slug ("manu-online")."""
    try:
        return PROFILES.get(provider) or BY_SLUG[provider]
    except KeyError:
        raise ValueError(f"no sandbox provider {provider!r}") from None


def base_path(provider: str) -> str:
    return f"/sandbox/{get_profile(provider).slug}"


def urls_for(provider: str, base_url: str) -> dict:
    """The endpoint overrides a PrivateApp needs to talk to this sandbox provider."""
    profile = get_profile(provider)
    root = base_url.rstrip("/") + base_path(provider)
    urls = {name: (root + path if path else "") for name, path in profile.paths.items()}
    return {**urls, "api_base_url": root, "issuer": root}

"""The providers catalogue, as data: one frozen record per provider, in one explicit dict.

Every number comes from the vendor documents in shared/seeds/ (cited per field where it is not
obvious). The generic provider takes its endpoints and options from the app's own fields.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import models


# TextChoices: each choice has its one label, used by model fields, forms and pages alike.
class Grant(models.TextChoices):
    AUTHORIZATION_CODE = "authorization_code", "Authorization code (users click Connect)"
    CLIENT_CREDENTIALS = "client_credentials", "Client credentials (service account)"
    PASSWORD = "password", "Resource-owner password (service user)"


class ClientAuth(models.TextChoices):
    """How the client authenticates at the token endpoint (RFC 6749 §2.3.1)."""

    FORM = "form", "Client id and secret in the form body"  # x-www-form-urlencoded
    BASIC = "basic", "HTTP Basic header"  # and a form body
    JSON = "json", "Client id and secret in a JSON body"


class PkceMode(models.TextChoices):
    """Manus's three modes (seed 003); other providers use SECRET only."""

    SECRET = "secret", "Secret only"
    PKCE_SECRET = "pkce_secret", "PKCE + secret (recommended for servers)"
    PKCE = "pkce", "PKCE only (public client, no secret)"

    @property
    def uses_pkce(self) -> bool:
        return self is not PkceMode.SECRET

    @property
    def needs_secret(self) -> bool:
        return self is not PkceMode.PKCE


class SignatureEncoding(models.TextChoices):
    """How a webhook's HMAC-SHA256 is written in its header."""

    HEX = "hex", "Hex"
    BASE64 = "base64", "Base64"


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per_seconds: int


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    grants: tuple[Grant, ...]
    authorize_url: str = ""
    token_url: str = ""
    revoke_url: str = ""
    api_base_url: str = ""
    test_path: str = ""
    issuer: str = ""
    client_auth: ClientAuth = ClientAuth.FORM
    client_auths: tuple[ClientAuth, ...] = (ClientAuth.FORM,)
    scope_separator: str = " "
    known_scopes: tuple[str, ...] = ()
    #: scopes beyond known_scopes are accepted (typed in, known ones suggested)
    scopes_open: bool = False
    #: the scope that needs connector UIDs beside it (Manus's use_connectors)
    connector_scope: str = ""
    broad_scopes: tuple[str, ...] = ()
    default_scopes: tuple[str, ...] = ()
    pkce_modes: tuple[PkceMode, ...] = (PkceMode.SECRET,)
    #: the provider refuses a code_challenge: only then is S256 PKCE left out of Connect
    rejects_pkce: bool = False
    #: the provider documents iss in authorization responses (RFC 9207): it is required
    sends_iss: bool = False
    rotates_refresh: bool = False
    revokes: bool = False
    access_lifetime: timedelta = timedelta(hours=1)
    refresh_lifetime: timedelta | None = None
    max_account_ids: int = 0
    max_redirect_uris: int = 3
    max_client_secrets: int = 2
    #: the provider verifies its webhooks with the primary secret only (seed 000); otherwise
    #: any active client secret of the app verifies one (rotation without a gap)
    primary_secret_signs_webhooks: bool = False
    # Inbound webhooks: HMAC-SHA256 with a client secret, over "<timestamp>.<body>" when the
    # provider sends a timestamp header, else over the body. No signature header: the provider
    # sends no webhooks the portal can verify (the generic provider's come from the app).
    webhook_signature_header: str = ""
    webhook_signature_encoding: SignatureEncoding = SignatureEncoding.HEX
    #: a label before the signature in its header, e.g. "sha256="
    webhook_signature_prefix: str = ""
    webhook_timestamp_header: str = ""
    #: the provider's id of a delivery: a second delivery with the same id is a replay
    webhook_id_header: str = ""
    webhook_tolerance_seconds: int = 300
    #: where the scheme comes from, shown on the app page: a vendor document, or the
    #: portal's assumption where the vendor's is not at hand
    webhook_scheme_source: str = ""
    #: a new app waits for the provider to enable it (seed 000: Manu Online support)
    starts_pending: bool = False
    token_rate_limit: RateLimit | None = None
    api_key_header: str = ""
    #: the response header with the provider's id of a request (seed 003: Manus's
    #: X-Request-Id); the common name unless a provider documents another
    request_id_header: str = "X-Request-Id"
    #: scopes or connectors added to an app invalidate every token already issued (seed 003)
    widening_scopes_invalidates: bool = False
    generic: bool = False
    help: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def uses_redirect(self) -> bool:
        return Grant.AUTHORIZATION_CODE in self.grants

    @property
    def is_service_account(self) -> bool:
        return not self.uses_redirect

    @property
    def receives_webhooks(self) -> bool:
        """The provider signs webhooks in a known way, or the app says how (generic)."""
        return bool(self.webhook_signature_header) or self.generic

    def join_scopes(self, scopes) -> str:
        return self.scope_separator.join(scopes)

    def split_scopes(self, raw: str) -> list[str]:
        parts = raw.replace(",", " ").split() if raw else []
        return list(dict.fromkeys(parts))


MANU_ONLINE = Provider(
    key="manu_online",
    name="Manu Online",
    grants=(Grant.AUTHORIZATION_CODE,),  # seed 000: "Manu api allows only authorization code"
    authorize_url="https://auth.manuonline.com/oauth/authorize",  # seed 001
    token_url="https://auth.manuonline.com/oauth/token",
    api_base_url="https://api.manuonline.com",
    test_path="/me",  # seed 000: "/me is a good place to test"
    issuer="https://auth.manuonline.com",
    client_auth=ClientAuth.FORM,  # seed 001: x-www-form-urlencoded body
    scope_separator=",",  # seed 000: "comma delimited list"
    known_scopes=("API_ALL",),
    # Seed 000: scopes are the user's API rights, as listed on their user screen.
    scopes_open=True,
    broad_scopes=("API_ALL",),
    rotates_refresh=True,  # seed 001: every refresh returns a new single-use refresh token
    access_lifetime=timedelta(minutes=30),
    refresh_lifetime=timedelta(days=730),
    max_account_ids=3,
    max_redirect_uris=3,
    max_client_secrets=2,  # seed 000: the second secret is optional, for rotation
    primary_secret_signs_webhooks=True,
    # Seed 000 says webhooks exist and are verified with the first secret; it names no header,
    # encoding or timestamp. These are the portal's assumption, kept here as data so the real
    # names replace them in one place.
    webhook_signature_header="X-Manu-Signature",
    webhook_signature_encoding=SignatureEncoding.HEX,
    webhook_timestamp_header="X-Manu-Timestamp",
    webhook_id_header="X-Manu-Webhook-Id",
    webhook_scheme_source="Seed 000: signed with the primary secret only. Header names, hex "
    "encoding and the timestamp are the portal's assumption.",
    starts_pending=True,
    help="Register the app in Manu Online (Admin – Integrations – Private apps), then copy its "
    "client id, secrets, account ids and redirect URL here.",
    notes=(
        "New apps stay pending until Manu Online support enables them.",
        "Webhooks are verified with the first (primary) secret only.",
        "Each refresh returns a new single-use refresh token, which the portal stores at once.",
    ),
)

MANUS = Provider(
    key="manus",
    name="Manus",
    grants=(Grant.AUTHORIZATION_CODE,),
    authorize_url="https://manus.im/openapi/oauth",  # seed 003
    token_url="https://api.manus.ai/oauth/token",
    revoke_url="https://api.manus.ai/oauth/revoke",
    api_base_url="https://api.manus.ai",
    test_path="/v2/task.list",
    issuer="https://api.manus.ai",
    client_auth=ClientAuth.JSON,
    client_auths=(ClientAuth.JSON, ClientAuth.FORM, ClientAuth.BASIC),
    known_scopes=(
        "create_task",
        "manage_all_tasks",
        "create_project",
        "use_connectors",
        "use_my_browsers",
    ),
    connector_scope="use_connectors",
    broad_scopes=("manage_all_tasks",),
    default_scopes=("create_task",),
    pkce_modes=(PkceMode.PKCE_SECRET, PkceMode.SECRET, PkceMode.PKCE),
    rotates_refresh=True,  # seed 003: refresh atomically revokes the old pair
    revokes=True,  # RFC 7009 endpoint
    access_lifetime=timedelta(hours=24),
    refresh_lifetime=timedelta(days=30),
    max_redirect_uris=3,
    max_client_secrets=5,  # seed 003: up to 5 active client secrets
    token_rate_limit=RateLimit(60, 60),  # seed 003: 60 / min per client_id
    widening_scopes_invalidates=True,
    # Seed 003 points at a Webhook Security guide it does not include. The portal's
    # assumption: HMAC-SHA256 in base64 with any active client secret of the app (five may
    # be active, for rotation without downtime), a timestamp and a delivery id.
    webhook_signature_header="X-Webhook-Signature",
    webhook_signature_encoding=SignatureEncoding.BASE64,
    webhook_timestamp_header="X-Webhook-Timestamp",
    webhook_id_header="X-Webhook-Id",
    webhook_scheme_source="Seed 003 refers to a Webhook Security guide that is not at hand: "
    "headers, base64 encoding and which secrets sign are the portal's assumption.",
    help="Create an OAuth app in Manus Integrations settings (Team accounts only). PKCE + "
    "secret is recommended for servers; PKCE alone is for public clients without a secret.",
    notes=("Token and revoke endpoints allow 60 requests per minute per client id.",),
)

MANHATTAN_ACTIVE = Provider(
    key="manhattan_active",
    name="Manhattan Active",
    grants=(Grant.PASSWORD,),  # seed 002: resource-owner password credentials grant
    test_path="/organization/api/organization/user/allDetails/userId/{username}",
    client_auth=ClientAuth.BASIC,  # seed 002: auth=(client_id, client_secret)
    client_auths=(ClientAuth.BASIC,),
    max_redirect_uris=0,
    max_client_secrets=1,
    help="Each Manhattan Active environment has its own host: give its token URL and API base "
    "URL. The service user's username and password are stored encrypted like a secret.",
)

MANITOU_GROUP = Provider(
    key="manitou_group",
    name="Manitou Group",
    grants=(Grant.CLIENT_CREDENTIALS,),  # seed 004: service accounts, client credentials
    token_url="https://api.manitou-group.com/v1/token",
    api_base_url="https://api.manitou-group.com",
    test_path="/v1/products",
    client_auth=ClientAuth.BASIC,  # seed 004: Authorization: Basic base64(id:secret)
    client_auths=(ClientAuth.BASIC,),
    known_scopes=("Products",),
    default_scopes=("Products",),  # seed 004: scope=Products
    access_lifetime=timedelta(seconds=3568),  # seed 004 example: expires_in 3568
    max_redirect_uris=0,
    max_client_secrets=2,  # seed 004: secret 1 and secret 2
    api_key_header="Ocp-Apim-Subscription-Key",  # seed 004: primary or secondary key
    help="Use the client id and secret 1 / secret 2 from your API Store profile. Optionally add "
    "the subscription keys (primary and secondary) sent as Ocp-Apim-Subscription-Key.",
)

GENERIC = Provider(
    key="generic",
    name="Generic OAuth 2.0",
    grants=(Grant.AUTHORIZATION_CODE, Grant.CLIENT_CREDENTIALS, Grant.PASSWORD),
    client_auths=(ClientAuth.FORM, ClientAuth.BASIC, ClientAuth.JSON),
    pkce_modes=(PkceMode.SECRET, PkceMode.PKCE_SECRET, PkceMode.PKCE),
    max_redirect_uris=3,
    max_client_secrets=2,
    revokes=True,
    scopes_open=True,
    generic=True,
    webhook_scheme_source="Configured on the app: the signature header and its encoding.",
    help="Any OAuth 2.0 provider: give its endpoints, scope separator and client "
    "authentication method yourself.",
)

PROVIDERS: dict[str, Provider] = {
    p.key: p for p in (MANU_ONLINE, MANUS, MANHATTAN_ACTIVE, MANITOU_GROUP, GENERIC)
}
PROVIDER_CHOICES = [(p.key, p.name) for p in PROVIDERS.values()]


def get_provider(key: str) -> Provider:
    return PROVIDERS[key]

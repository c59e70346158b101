"""Which fields of a private app a provider's form has, when each is needed, and its help text:
one table, read from the catalogue record, so a new provider needs no new form code.

A field with `grants` means something under those grants only: a provider with several grants
(the generic one) shows it while one of them is picked and ignores it under the others.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from connections.providers import Grant, Provider

AUTH_CODE, PASSWORD = frozenset({Grant.AUTHORIZATION_CODE}), frozenset({Grant.PASSWORD})
CREDENTIALS = ("service_username", "service_password")
SUBSCRIPTION_KEYS = ("subscription_key_primary", "subscription_key_secondary")
SECRET_FIELDS = (*CREDENTIALS, *SUBSCRIPTION_KEYS)
ENDPOINT_FIELDS = ("authorize_url", "token_url", "revoke_url", "api_base_url")


def _always(p: Provider) -> bool:
    return True


def _never(p: Provider) -> bool:
    return False


def _generic(p: Provider) -> bool:
    return p.generic


@dataclass(frozen=True)
class FieldSpec:
    name: str
    #: whether the provider's form has the field (besides its grants)
    shown: Callable[[Provider], bool] = _always
    #: the grants under which it means something (None: every grant)
    grants: frozenset[str] | None = None
    #: whether a value is needed (under those grants)
    needed: Callable[[Provider], bool] = _never
    #: help for the person filling it in
    help: Callable[[Provider], str] = lambda p: ""

    def shown_for(self, p: Provider) -> bool:
        return self.shown(p) and (self.grants is None or bool(self.grants & set(p.grants)))

    def applies_to(self, grant: str) -> bool:
        return self.grants is None or grant in self.grants


def _overridable(name: str) -> Callable[[Provider], bool]:
    """A catalogue provider's own endpoint is overridden only where the operator allows
    custom domains; where the catalogue has none (an environment's own URL), always."""
    return lambda p: p.generic or not getattr(p, name) or settings.ALLOW_CUSTOM_ENDPOINTS


def _endpoint_help(name: str, generic: str) -> Callable[[Provider], str]:
    def text(p: Provider) -> str:
        if p.generic:
            return generic
        default = getattr(p, name)
        if default:
            return f"Leave blank for {default}."
        return (
            f"Required: each {p.name} environment has its own host, e.g. https://acme.example.com."
        )

    return text


def _rate_limit_help(p: Provider) -> str:
    limit = p.token_rate_limit
    default = (
        f"{p.name}'s documented {limit.requests} per {limit.per_seconds} s" if limit else "no limit"
    )
    return (
        "How many token requests the provider allows per client id, and in how many seconds. "
        f"The portal never sends more. Leave both blank for {default}."
    )


SPECS: tuple[FieldSpec, ...] = (
    FieldSpec("name"),
    FieldSpec("client_id"),
    FieldSpec("grant_type", shown=lambda p: len(p.grants) > 1),
    FieldSpec("pkce_mode", shown=lambda p: len(p.pkce_modes) > 1, grants=AUTH_CODE),
    FieldSpec("client_auth", shown=lambda p: len(p.client_auths) > 1),
    FieldSpec(
        "redirect_uris",
        grants=AUTH_CODE,
        needed=_always,
        help=lambda p: (
            f"One per line, exactly as registered at the provider. At most {p.max_redirect_uris}."
        ),
    ),
    FieldSpec(
        "account_ids",
        shown=lambda p: p.max_account_ids > 0,
        needed=_always,
        help=lambda p: (
            f"One to {p.max_account_ids}, one per line, as shown on {p.name}'s "
            "Integrations screen. A grant for any other account is refused."
        ),
    ),
    FieldSpec("scopes", shown=lambda p: bool(p.known_scopes) or p.scopes_open),
    FieldSpec(
        "connector_uids",
        shown=lambda p: bool(p.connector_scope),
        help=lambda p: f"One per line; needed with the {p.connector_scope} scope.",
    ),
    FieldSpec(
        "scope_separator",
        shown=lambda p: p.generic,
        help=lambda p: "How scopes are joined in requests: a space (most providers) or a comma.",
    ),
    FieldSpec(
        "service_username",
        grants=PASSWORD,
        needed=_always,
        help=lambda p: f"The {p.name} service user the portal signs in as. Stored encrypted.",
    ),
    FieldSpec(
        "service_password",
        grants=PASSWORD,
        needed=_always,
        help=lambda p: "Stored encrypted and never shown again.",
    ),
    FieldSpec(
        "subscription_key_primary",
        shown=lambda p: bool(p.api_key_header),
        help=lambda p: f"Optional: sent as {p.api_key_header}. Stored encrypted.",
    ),
    FieldSpec(
        "subscription_key_secondary",
        shown=lambda p: bool(p.api_key_header),
        help=lambda p: "Optional: used when the primary key is regenerated.",
    ),
    FieldSpec(
        "authorize_url",
        shown=_overridable("authorize_url"),
        grants=AUTH_CODE,
        needed=lambda p: not p.authorize_url,
        help=_endpoint_help("authorize_url", "Where users are sent to grant access."),
    ),
    FieldSpec(
        "token_url",
        shown=_overridable("token_url"),
        needed=lambda p: not p.token_url,
        help=_endpoint_help("token_url", "Where the portal obtains and refreshes tokens."),
    ),
    FieldSpec(
        "revoke_url",
        shown=lambda p: p.revokes and _overridable("revoke_url")(p),
        help=_endpoint_help(
            "revoke_url",
            "Optional: where the portal revokes tokens when a connection is disconnected.",
        ),
    ),
    FieldSpec(
        "api_base_url",
        shown=_overridable("api_base_url"),
        needed=lambda p: not p.api_base_url and not p.generic,
        help=_endpoint_help("api_base_url", "Base of the API calls the test button makes."),
    ),
    FieldSpec(
        "test_path",
        help=_endpoint_help(
            "test_path", "A cheap authenticated GET, like /me, used to test a connection."
        ),
    ),
    FieldSpec("token_rate_limit", help=_rate_limit_help),
    FieldSpec("token_rate_window"),
    FieldSpec(
        "issuer",
        # A custom domain answers with its own issuer, or Connect refuses every answer.
        shown=lambda p: p.generic or (bool(p.issuer) and settings.ALLOW_CUSTOM_ENDPOINTS),
        grants=AUTH_CODE,
        help=_endpoint_help(
            "issuer",
            "Optional: the issuer the provider names itself with after sign-in (its "
            "iss parameter). When set, Connect refuses an answer that does not carry it.",
        ),
    ),
    FieldSpec("refresh_policy", grants=AUTH_CODE),
    # Catalogue providers' webhook signatures are the catalogue's; a generic app says its own.
    FieldSpec(
        "webhook_signature_header",
        shown=_generic,
        help=lambda p: (
            "Optional: the header the provider puts its HMAC-SHA256 signature in "
            "(signed with the app's client secret). Blank: inbound webhooks are refused."
        ),
    ),
    FieldSpec("webhook_signature_encoding", shown=_generic),
    FieldSpec(
        "webhook_timestamp_header",
        shown=_generic,
        help=lambda p: (
            "Optional: a header with the Unix time of sending. When set, the "
            'signature covers "<timestamp>.<body>" and old requests are refused.'
        ),
    ),
    FieldSpec(
        "webhook_id_header",
        shown=_generic,
        help=lambda p: (
            "Optional: a header with the provider's delivery id; a second delivery "
            "with the same id is refused as a replay."
        ),
    ),
    FieldSpec("application_url", help=lambda p: "For your own information."),
    FieldSpec("internal_comments"),
)
BY_NAME = {spec.name: spec for spec in SPECS}


def specs_for(provider: Provider) -> list[FieldSpec]:
    """The fields an admin fills in for this provider, in page order."""
    return [spec for spec in SPECS if spec.shown_for(provider)]


def fields_for(provider: Provider) -> list[str]:
    return [spec.name for spec in specs_for(provider)]


def needed_for(provider: Provider, grant: str) -> list[str]:
    """The fields that must have a value under this grant."""
    return [s.name for s in specs_for(provider) if s.applies_to(grant) and s.needed(provider)]

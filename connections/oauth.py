"""Talking to providers: OAuth 2.0 requests built with oauthlib, sent through egress.

Knows HTTP and OAuth, nothing about views or the database. Every failure comes back as a
ProviderError with a kind the lifecycle can act on (retry, wait, re-authorise, fix the app).
"""

import logging
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

import requests
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2 import (
    BackendApplicationClient,
    LegacyApplicationClient,
    WebApplicationClient,
)
from requests.exceptions import InvalidHeader

from connections import destinations, egress
from connections.providers import ClientAuth, PkceMode

log = logging.getLogger(__name__)


class ErrorKind(StrEnum):
    INVALID_GRANT = "invalid_grant"  # the grant (code or refresh token) is dead: re-authorise
    INVALID_CLIENT = "invalid_client"  # the app's credentials are wrong: fix the app
    RATE_LIMITED = "rate_limited"  # 429: wait for Retry-After
    SERVER = "server"  # 5xx: an answer came back, retry with backoff
    TRANSPORT = "transport"  # no answer at all: retry promptly with the same token
    REJECTED = "rejected"  # any other 4xx (invalid_request, invalid_scope, ...): a bug or config


TRANSIENT = {ErrorKind.RATE_LIMITED, ErrorKind.SERVER, ErrorKind.TRANSPORT}


class ProviderError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        error: str = "",
        retry_after: float | None = None,
        request_id: str = "",
    ):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.request_id = request_id
        #: how many sends of the same grant before this answer got no answer at all (set by
        #: the caller that resent it): an invalid_grant then may mean the first one landed
        self.unanswered_before = 0

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT

    @property
    def held_back(self) -> bool:
        """The portal's own rate limiter kept the request from being sent."""
        return self.kind == ErrorKind.RATE_LIMITED and self.status is None

    def describe(self) -> str:
        where = (
            f"HTTP {self.status}" if self.status else "not sent" if self.held_back else "no answer"
        )
        code = f" {self.error}" if self.error else ""
        return f"{self.kind.value} ({where}{code}): {self}"


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    token_type: str
    refresh_token: str | None
    expires_in: int | None
    scope: str
    request_id: str


@dataclass(frozen=True)
class Credentials:
    """What the client presents at the token endpoint; secret is None for PKCE-only apps."""

    client_id: str
    secret: str | None
    auth: ClientAuth


def authorization_url(
    app, *, redirect_uri: str, state: str, scopes: list[str], code_challenge: str | None
) -> str:
    url = app.endpoint("authorize_url")
    # The same rules as every server-side request: https to a public host, plain http only to
    # loopback while the sandbox is on or to hosts the operator allows.
    try:
        destinations.check_url(url)
    except destinations.Refused as exc:
        raise ProviderError(ErrorKind.REJECTED, f"the authorize URL {url} {exc}") from None
    params = [("response_type", "code"), ("client_id", app.client_id)]
    params += [("redirect_uri", redirect_uri), ("state", state)]
    # The provider's separator (comma for Manu Online), not oauthlib's space.
    if scopes:
        params.append(("scope", app.separator.join(scopes)))
    if code_challenge:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    return add_params_to_uri(url, params)


def exchange_code(
    app, creds: Credentials, *, code: str, redirect_uri: str, code_verifier: str | None
) -> TokenSet:
    body = WebApplicationClient(creds.client_id).prepare_request_body(
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        include_client_id=False,
    )
    return _token_request(app, creds, body)


def refresh(app, creds: Credentials, *, refresh_token: str) -> TokenSet:
    body = WebApplicationClient(creds.client_id).prepare_refresh_body(refresh_token=refresh_token)
    return _token_request(app, creds, body)


def client_credentials(app, creds: Credentials, *, scopes: list[str]) -> TokenSet:
    body = BackendApplicationClient(creds.client_id).prepare_request_body(
        scope=app.separator.join(scopes) or None, include_client_id=False
    )
    return _token_request(app, creds, body)


def password_grant(
    app, creds: Credentials, *, username: str, password: str, scopes: list[str]
) -> TokenSet:
    body = LegacyApplicationClient(creds.client_id).prepare_request_body(
        username=username,
        password=password,
        scope=app.separator.join(scopes) or None,
        include_client_id=False,
    )
    return _token_request(app, creds, body)


def revoke(app, creds: Credentials, *, token: str, hint: str) -> None:
    """RFC 7009; the provider answers 200 whether or not it knew the token."""
    params = {"token": token, "token_type_hint": hint}
    response = _post(app.endpoint("revoke_url"), creds, params)
    if not 200 <= response.status_code < 300:  # a redirect is not a confirmation
        raise _error_from(app, response)


def call_api(app, *, access_token: str | None, token_type: str, path: str, api_key: str = ""):
    """GET an API path with the token (and the provider's API-key header when it has one)."""
    headers = {"Accept": "application/json"}
    if access_token:
        headers["Authorization"] = f"{token_type.capitalize() or 'Bearer'} {access_token}"
    if api_key and app.catalogue.api_key_header:
        headers[app.catalogue.api_key_header] = api_key
    url = app.endpoint("api_base_url").rstrip("/") + "/" + path.lstrip("/")
    try:
        return egress.send("GET", url, headers=headers)
    except (destinations.Refused, InvalidHeader) as exc:  # nothing was sent
        raise ProviderError(ErrorKind.REJECTED, f"not sent to {url}: {exc}") from None
    except requests.RequestException as exc:
        raise ProviderError(ErrorKind.TRANSPORT, f"{type(exc).__name__} calling the API") from exc


def _token_request(app, creds: Credentials, body: str) -> TokenSet:
    response = _post(app.endpoint("token_url"), creds, dict(parse_qsl(body)))
    request_id = request_id_of(app, response)
    if response.status_code != 200:
        raise _error_from(app, response)
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(
            ErrorKind.SERVER,
            "token endpoint answered 200 with a body that is not JSON",
            status=200,
            request_id=request_id,
        ) from None
    if not isinstance(data, dict) or not data.get("access_token"):
        raise ProviderError(
            ErrorKind.SERVER,
            "token response has no access_token",
            status=200,
            request_id=request_id,
        )
    expires_in = data.get("expires_in")
    try:
        expires_in = int(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_in = None
    return TokenSet(
        access_token=str(data["access_token"]),
        token_type=str(data.get("token_type") or "Bearer"),
        refresh_token=str(data["refresh_token"]) if data.get("refresh_token") else None,
        expires_in=expires_in,
        scope=str(data.get("scope") or ""),
        request_id=request_id,
    )


def _post(url: str, creds: Credentials, params: dict) -> egress.Response:
    auth = None
    if creds.auth == ClientAuth.BASIC and creds.secret is not None:
        auth = (creds.client_id, creds.secret)
    else:
        params = {**params, "client_id": creds.client_id}
        if creds.secret is not None:
            params["client_secret"] = creds.secret
    kwargs = {"json": params} if creds.auth == ClientAuth.JSON else {"data": params}
    try:
        return egress.send("POST", url, auth=auth, headers={"Accept": "application/json"}, **kwargs)
    except (destinations.Refused, InvalidHeader) as exc:  # nothing was sent
        raise ProviderError(ErrorKind.REJECTED, f"not sent to {url}: {exc}") from None
    except egress.TooLarge as exc:
        raise ProviderError(ErrorKind.SERVER, str(exc), status=200) from None
    except egress.DeadlineExceeded as exc:
        raise ProviderError(ErrorKind.TRANSPORT, f"{exc} from the token endpoint") from exc
    except requests.RequestException as exc:
        # No answer: the provider may or may not have processed the request.
        raise ProviderError(
            ErrorKind.TRANSPORT, f"{type(exc).__name__} talking to the token endpoint"
        ) from exc


def request_id_of(app, response: egress.Response) -> str:
    """The provider's id of this request (for its support), from its catalogue header."""
    header = app.catalogue.request_id_header
    return response.headers.get(header, "")[:120] if header else ""


def _error_from(app, response: egress.Response) -> ProviderError:
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = {}
    error = str(data.get("error", "")) if isinstance(data, dict) else ""
    description = str(data.get("error_description", "")) if isinstance(data, dict) else ""
    request_id = request_id_of(app, response)
    message = description or error or response.reason or f"HTTP {status}"
    if status == 429:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        return ProviderError(
            ErrorKind.RATE_LIMITED,
            message,
            status=status,
            error=error,
            retry_after=retry_after,
            request_id=request_id,
        )
    if status >= 500:
        return ProviderError(
            ErrorKind.SERVER, message, status=status, error=error, request_id=request_id
        )
    if error == "invalid_grant":
        kind = ErrorKind.INVALID_GRANT
    elif error == "invalid_client" or status == 401:
        kind = ErrorKind.INVALID_CLIENT
    else:
        kind = ErrorKind.REJECTED
    return ProviderError(kind, message, status=status, error=error, request_id=request_id)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge) pair, RFC 7636."""
    client = WebApplicationClient("")
    verifier = client.create_code_verifier(length=64)
    return verifier, client.create_code_challenge(verifier, "S256")


def credentials_for(app, secret: str | None) -> Credentials:
    mode = PkceMode(app.pkce_mode)
    return Credentials(
        client_id=app.client_id,
        secret=secret if mode.needs_secret else None,
        auth=ClientAuth(app.client_auth),
    )


def safe_json(response: egress.Response):
    try:
        return response.json()
    except ValueError:
        return {"body": response.text[:500]}

"""Redirect URI rules (seed 003, Manus), applied to every provider.

Providers match redirect URIs exactly at authorisation time (RFC 6749 §3.1.2), so a URI that is
ambiguous here becomes a failed Connect later; each rule answers with its own message.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "about", "vbscript"})
MAX_URI_LENGTH = 500  # AuthorizationAttempt.redirect_uri holds at most this much


def validate_redirect_uri(uri: str) -> None:
    if len(uri) > MAX_URI_LENGTH:
        raise ValidationError(f"{uri[:60]}…: longer than {MAX_URI_LENGTH} characters.")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise ValidationError(f"{uri!r}: contains spaces or control characters.")
    if "*" in uri:
        raise ValidationError(f"{uri}: wildcards (*) are not allowed; list each URI exactly.")
    if "#" in uri:
        raise ValidationError(f"{uri}: a fragment (#…) is not allowed.")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        # urlsplit rejects malformed IPv6 hosts and bad ports with ValueError.
        raise ValidationError(f"{uri}: not a valid URI.") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValidationError(f"{uri}: must be absolute, with a scheme such as https://.")
    if scheme in FORBIDDEN_SCHEMES:
        raise ValidationError(f"{uri}: the {scheme}: scheme is forbidden.")
    if scheme in ("http", "https") and not host:
        raise ValidationError(f"{uri}: an {scheme} URI must include a host.")
    if scheme not in ("http", "https") and not (parts.netloc or parts.path):
        raise ValidationError(f"{uri}: nothing follows the scheme.")


def validate_redirect_uris(uris: list[str], *, limit: int) -> None:
    """Every rule for a list: each URI, no duplicates, and the provider's limit."""
    errors: list[ValidationError] = []
    seen: set[str] = set()
    for uri in uris:
        try:
            validate_redirect_uri(uri)
        except ValidationError as exc:
            errors.append(exc)
        if uri in seen:
            errors.append(ValidationError(f"{uri}: listed twice."))
        seen.add(uri)
    if len(uris) > limit:
        errors.append(ValidationError(f"At most {limit} redirect URIs for this provider."))
    if errors:
        raise ValidationError(errors)

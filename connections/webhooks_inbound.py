"""Inbound webhooks: find the app by its URL token, verify the request the way its provider
signs, and store what arrived.

A provider signs with HMAC-SHA256 and a client secret of the app (the primary only where the
catalogue says so), over "<delivery id>.<timestamp>.<body>" with the parts it sends (the id
signed too, so a captured request cannot be replayed under another id within the tolerance).
A verified delivery keeps its body; a rejected one keeps only why, never the body: nobody
vouches for it, and a stranger who found the URL must not be able to fill the page with text.

Every value a sender controls is cut to size and stripped of control characters before it
is stored (PostgreSQL refuses NUL in text and JSON), so no header or body can make storing
fail.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from connections import audit, retention
from connections.models import Connection, InboundDelivery, PrivateApp, new_webhook_token
from connections.providers import SignatureEncoding

Result = InboundDelivery.Result
#: a token from secrets.token_urlsafe(32) is 43 characters; anything much longer is not one
MAX_TOKEN_LENGTH = 100
MAX_HEADER_VALUE = 200
#: the reason of a correctly signed resend of a delivery id already received
REPLAYED = "replayed"
#: body_size is a 32-bit column: a declared Content-Length of a terabyte is stored as this
MAX_RECORDED_SIZE = 2**31 - 1
#: several signatures in one header (a provider rotating its secret) are each tried
MAX_SIGNATURES = 5
#: headers kept with a delivery besides the scheme's own (never the signature)
KEPT_HEADERS = ("Content-Type", "User-Agent")


@dataclass(frozen=True)
class Scheme:
    """How one app's webhooks are signed: the catalogue's, or the generic app's own."""

    signature_header: str
    encoding: str
    prefix: str = ""
    timestamp_header: str = ""
    id_header: str = ""
    tolerance_seconds: int = 300
    primary_only: bool = False


class Rejected(Exception):
    def __init__(self, reason: str, message: str, delivery_id: str = ""):
        super().__init__(message)
        self.reason, self.message, self.delivery_id = reason, message, delivery_id


def scheme_for(app: PrivateApp) -> Scheme | None:
    """None: the app's provider sends no webhooks the portal knows how to verify."""
    p = app.catalogue
    # A generic app names its own headers and encoding (the same field names as the
    # catalogue's); the rest is always the catalogue's.
    own = app if p.generic else p
    if not own.webhook_signature_header:
        return None
    return Scheme(
        signature_header=own.webhook_signature_header,
        encoding=own.webhook_signature_encoding,
        prefix=p.webhook_signature_prefix,
        timestamp_header=own.webhook_timestamp_header,
        id_header=own.webhook_id_header,
        tolerance_seconds=p.webhook_tolerance_seconds,
        primary_only=p.primary_secret_signs_webhooks,
    )


def app_for_token(token: str) -> PrivateApp | None:
    """The app whose inbound URL carries `token`. Only hashes are compared: the lookup is by
    the token's sha256 (so its timing says nothing about the stored token), then checked with
    compare_digest."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    wanted = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
    app = PrivateApp.objects.select_related("tenant").filter(webhook_token_hash=wanted).first()
    if app is None or not hmac.compare_digest(app.webhook_token_hash or "", wanted):
        return None
    return app


def inbound_path(app: PrivateApp) -> str:
    return reverse("webhook_inbound", args=[app.webhook_token]) if app.webhook_token else ""


def inbound_url(app: PrivateApp) -> str:
    path = inbound_path(app)
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}" if path else ""


@transaction.atomic
def regenerate_token(*, app: PrivateApp, actor) -> PrivateApp:
    """A new inbound URL; the old one stops working at once (a leaked URL is cut off)."""
    app = PrivateApp.objects.select_for_update().get(pk=app.pk)
    app.webhook_token, app.webhook_token_hash = new_webhook_token()
    app.save(update_fields=["webhook_token", "webhook_token_hash", "updated_at"])
    audit.record(
        audit.Kind.WEBHOOK_URL_REGENERATED,
        tenant=app.tenant,
        app=app,
        actor=actor,
        message=f"{app.name}: new inbound webhook URL; the old one no longer works.",
    )
    return app


# --- verification --------------------------------------------------------------------------


def clean(value, limit: int = MAX_HEADER_VALUE) -> str:
    """A sender's text, safe to store: printable characters only, at most `limit`."""
    return "".join(ch for ch in str(value) if ch.isprintable())[:limit]


def _decode(signature: str, encoding: str) -> bytes | None:
    try:
        if encoding == SignatureEncoding.BASE64:
            return base64.b64decode(signature, validate=True)
        return bytes.fromhex(signature)
    except (ValueError, binascii.Error):
        return None


def _signatures(raw: str, scheme: Scheme) -> list[bytes]:
    found = []
    for part in raw.replace(",", " ").split()[:MAX_SIGNATURES]:
        if scheme.prefix and part.startswith(scheme.prefix):
            part = part[len(scheme.prefix) :]
        decoded = _decode(part, scheme.encoding)
        if decoded:
            found.append(decoded)
    return found


def signing_secrets(app: PrivateApp, scheme: Scheme) -> list[str]:
    active = app.active_secrets()
    if scheme.primary_only:
        active = active.filter(is_primary=True)
    return [s.value for s in active]


def _matches(signatures: list[bytes], secrets: list[str], content: bytes) -> bool:
    """Every secret against every signature, without an early exit."""
    found = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), content, hashlib.sha256).digest()
        for signature in signatures:
            found |= hmac.compare_digest(expected, signature)
    return found


def verify(app: PrivateApp, headers, body: bytes, *, now: float | None = None) -> str:
    """Raise Rejected unless the request is signed as the app's provider signs; the
    delivery id it carries ("" when the scheme has none)."""
    scheme = scheme_for(app)
    if scheme is None:
        raise Rejected("not_configured", "This app's provider has no webhook signature set up.")
    secrets = signing_secrets(app, scheme)
    if not secrets:
        raise Rejected("no_secret", "The app has no active secret to verify webhooks with.")
    raw = headers.get(scheme.signature_header) or ""
    if not raw:
        raise Rejected("missing_signature", f"No {scheme.signature_header} header.")
    stamp = ""
    if scheme.timestamp_header:
        stamp = headers.get(scheme.timestamp_header) or ""
        if not stamp:
            raise Rejected("missing_timestamp", f"No {scheme.timestamp_header} header.")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise Rejected("bad_timestamp", f"{scheme.timestamp_header} is not a Unix time.")
    sent_id = headers.get(scheme.id_header) or "" if scheme.id_header else ""
    if scheme.id_header and not sent_id:
        raise Rejected("missing_delivery_id", f"No {scheme.id_header} header.")
    prefix = "".join(f"{part}." for part in (sent_id, stamp) if part)
    content = prefix.encode() + body
    if not _matches(_signatures(raw, scheme), secrets, content):
        raise Rejected("bad_signature", "The signature does not match the app's secret.")
    # After the signature: a timestamp that was signed is the sender's, not a stranger's.
    if stamp:
        now = time.time() if now is None else now
        off = int(now - int(stamp))
        if abs(off) > scheme.tolerance_seconds:
            when = f"{off} s ago" if off > 0 else f"{-off} s ahead of the portal's clock"
            raise Rejected(
                "stale_timestamp",
                f"Signed {when}; at most {scheme.tolerance_seconds} s either way are accepted.",
            )
    delivery_id = clean(sent_id)
    if scheme.id_header and not delivery_id:  # nothing left of it to tell a replay by
        raise Rejected("missing_delivery_id", f"No usable {scheme.id_header} header.")
    if delivery_id:
        if app.inbound.filter(result=Result.VERIFIED, delivery_id=delivery_id).exists():
            raise Rejected(REPLAYED, f"Delivery {delivery_id} was already received.", delivery_id)
    return delivery_id


# --- storage -------------------------------------------------------------------------------


def kept_headers(app: PrivateApp, headers) -> dict:
    scheme = scheme_for(app)
    names = [*KEPT_HEADERS]
    if scheme:
        names += [n for n in (scheme.timestamp_header, scheme.id_header) if n]
    return {n: clean(headers[n]) for n in names if headers.get(n)}


def _payload(body: bytes):
    """The JSON document, or None with malformed=True; deep nesting is malformed too."""
    try:
        return json.loads(body), False
    except (ValueError, RecursionError):
        return None, True


def _connection_for(app: PrivateApp, payload) -> tuple[str, Connection | None]:
    if not isinstance(payload, dict):
        return "", None
    account = payload.get("account_id")
    if isinstance(account, bool) or not isinstance(account, str | int):
        return "", None
    account = clean(account, 255)
    if not account:
        return "", None
    conn = (
        app.connections.exclude(status=Connection.Status.REVOKED)
        .filter(account_id=account)
        .order_by("-created_at")
        .first()
    )
    return account, conn


def record_rejected(app: PrivateApp, headers, size: int, exc: Rejected) -> InboundDelivery:
    return InboundDelivery.objects.create(
        tenant=app.tenant,
        app=app,
        result=Result.REJECTED,
        reason=exc.reason,
        message=clean(exc.message, 255),
        delivery_id=exc.delivery_id,
        headers=kept_headers(app, headers),
        body=None,
        body_size=min(size, MAX_RECORDED_SIZE),
    )


def record_verified(app: PrivateApp, headers, body: bytes, delivery_id: str) -> InboundDelivery:
    payload, malformed = _payload(body)
    account, conn = _connection_for(app, payload)
    try:
        with transaction.atomic():
            return InboundDelivery.objects.create(
                tenant=app.tenant,
                app=app,
                connection=conn,
                result=Result.VERIFIED,
                delivery_id=delivery_id,
                headers=kept_headers(app, headers),
                body=body,
                body_size=len(body),
                malformed=malformed,
                account_id=account,
            )
    except IntegrityError:
        # The same id arrived twice at once: the other request stored it.
        replay = Rejected(REPLAYED, f"Delivery {delivery_id} was already received.", delivery_id)
        return record_rejected(app, headers, len(body), replay)


def receive(app: PrivateApp, headers, body: bytes) -> InboundDelivery:
    """Verify and store one request; the stored row says which it was."""
    try:
        delivery_id = verify(app, headers, body)
    except Rejected as exc:
        return record_rejected(app, headers, len(body), exc)
    return record_verified(app, headers, body, delivery_id)


def prune(*, before, batch: int, max_batches: int) -> int:
    """Delete deliveries received before `before` (connections.retention)."""
    return retention.delete_before(
        InboundDelivery.objects.all(),
        "received_at",
        before=before,
        batch=batch,
        max_batches=max_batches,
    )

"""The emulated providers send signed webhooks on demand, so the demo and the tests exercise
the portal's inbound path over real HTTP.

Signed the way the provider's profile says (sandbox.profiles), with the client's webhook
secret unless another is given (a test signing with the wrong one). The signer is written
here again, not imported from the portal, so the two cannot agree by sharing a mistake.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid

import requests

from sandbox.models import Client
from sandbox.profiles import get_profile

TIMEOUT = 10.0


class CannotSign(Exception):
    """The provider sends no webhooks, or the client has no secret to sign with."""


def signature(
    secret: str, body: bytes, *, timestamp: str = "", delivery_id: str = "", encoding: str = "hex"
) -> str:
    # "<id>.<timestamp>.<body>" (the parts it sends): the id is signed too, so a captured
    # request cannot be replayed under a new id.
    prefix = "".join(f"{part}." for part in (delivery_id, timestamp) if part)
    content = prefix.encode() + body
    mac = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return base64.b64encode(mac).decode() if encoding == "base64" else mac.hex()


def signed_headers(
    provider: str,
    body: bytes,
    *,
    secret: str,
    timestamp: int | None = None,
    delivery_id: str | None = None,
) -> dict[str, str]:
    """The headers of one webhook: content type, signature, and the profile's timestamp and
    delivery id (now and a fresh id unless given)."""
    profile = get_profile(provider)
    if not profile.webhook_signature_header:
        raise CannotSign(f"{profile.name} sends no webhooks.")
    headers = {"Content-Type": "application/json", "User-Agent": f"{profile.name} webhooks"}
    stamp = ""
    if profile.webhook_timestamp_header:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers[profile.webhook_timestamp_header] = stamp
    delivery_id = delivery_id or f"evt_{uuid.uuid4().hex}" if profile.webhook_id_header else ""
    if delivery_id:
        headers[profile.webhook_id_header] = delivery_id
    headers[profile.webhook_signature_header] = signature(
        secret, body, timestamp=stamp, delivery_id=delivery_id, encoding=profile.webhook_encoding
    )
    return headers


def send_webhook(
    provider: str,
    client_id: str,
    url: str,
    payload: dict | bytes,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    delivery_id: str | None = None,
) -> requests.Response:
    """POST `payload` (a dict is sent as JSON; bytes as they are) to `url`, signed as the
    provider signs for `client_id`; the listener's response."""
    profile = get_profile(provider)
    if secret is None:
        client = Client.objects.filter(provider=profile.key, client_id=client_id).first()
        secret = client.webhook_secret if client else None
        if not secret:
            raise CannotSign(f"No {profile.name} client {client_id} with a secret.")
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(
        provider, body, secret=secret, timestamp=timestamp, delivery_id=delivery_id
    )
    # The sandbox is a stand-in for a provider on the internet, not the portal: its requests
    # do not go through the portal's egress rules (the demo's portal is on loopback).
    return requests.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)

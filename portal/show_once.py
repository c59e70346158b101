"""A value shown once: a new client secret or API key survives exactly one render.

The POST that made it puts it in the session, encrypted even there, under the object it
belongs to; the next page of that object takes it out, so a reload shows only its mask.
"""

from portal.fields import decrypt, encrypt


def remember(request, slot: str, *, owner: int, obj_id: int, value: str) -> None:
    request.session[slot] = {"owner": owner, "id": obj_id, "v": encrypt(value)}


def take(request, slot: str, *, owner: int) -> dict | None:
    """The value kept for `owner` (an app, a tenant), once; another owner's page leaves it."""
    once = request.session.get(slot)
    if not once or once.get("owner") != owner:
        return None
    del request.session[slot]
    return {"id": once["id"], "value": decrypt(once["v"])}

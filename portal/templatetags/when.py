"""`{{ dt|when }}`: a point in time in words with the exact time beside it, on every page.

The words are rounded to one unit ("in 3 days", "5 minutes ago", "just now"); the exact time is
in the portal's time zone with the zone named ("2 Dec 2026, 00:41 UTC"), and portal.js rewrites
it into the reader's own zone. Both are visible: nobody has to hover to learn when something happens.
"""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
)
#: closer than this to now is "just now" (or "in under a minute"), never "0 minutes ago"
NOW_SECONDS = 45


def in_words(dt: datetime, now: datetime) -> str:
    seconds = (dt - now).total_seconds()
    distance = abs(seconds)
    if distance < NOW_SECONDS:
        return "in under a minute" if seconds > 0 else "just now"
    name, n = "minute", 1  # between NOW_SECONDS and a minute
    for unit, size in UNITS:
        if distance >= size:
            name, n = unit, int(distance // size)
            break
    words = f"{n} {name}{'' if n == 1 else 's'}"
    return f"in {words}" if seconds > 0 else f"{words} ago"


def exact(dt: datetime) -> str:
    local = timezone.localtime(dt)
    return f"{local.day} {local:%b %Y, %H:%M} {local.tzname()}"


@register.filter(is_safe=True)
def when(dt: datetime | None, empty: str = "—"):
    if not dt:
        return format_html('<span class="muted">{}</span>', empty)
    return format_html(
        '<span class="when"><time datetime="{}">{}</time> <span class="exact" data-exact="{}">{}</span></span>',
        dt.isoformat(),
        in_words(dt, timezone.now()),
        dt.isoformat(),
        exact(dt),
    )


@register.filter
def ends(dt: datetime | None, verb: str = "ends,ended") -> str:
    """"ends" for a time to come, "ended" for one gone: `{{ dt|ends }} {{ dt|when }}`."""
    future, past = verb.split(",")
    return future if dt is None or dt > timezone.now() else past


@register.filter
def duration(delta) -> str:
    """A timedelta in words: "15 minutes", "1 hour"."""
    if delta is None:
        return "a while"
    seconds = max(60, int(delta.total_seconds()))
    if seconds >= 3600 and seconds % 3600 == 0:
        n, unit = seconds // 3600, "hour"
    else:
        n, unit = seconds // 60, "minute"
    return f"{n} {unit}{'' if n == 1 else 's'}"

"""/healthz for load balancers and monitors, /metrics for Prometheus. Outside the tenant URLs.

/healthz answers JSON, 200 or 503: the database answers, the broker answers, and the beat's
heartbeat (sent by beat, run by a worker) is fresher than three heartbeat periods. It says
nothing secret, so it is open. /metrics is for an allowed network (METRICS_ALLOWED_NETWORKS,
loopback by default) or a bearer token (METRICS_TOKEN), compared in constant time.

Why not django-health-check: its Celery check sends a task and waits for it (a request that
waits on the queue), it has no check for kombu's filesystem broker, and its JSON is its own; the
three checks here are a query, a ping and a timestamp.
"""

import hmac
import ipaddress
from pathlib import Path

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connections import metrics as _metrics  # noqa: F401 - sets the multiprocess dir first
from connections.models import Connection
from portal.client_ip import client_ip
from portal.models import Heartbeat

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # isort: skip
from prometheus_client import multiprocess  # isort: skip
from prometheus_client.core import GaugeMetricFamily  # isort: skip

BROKER_TIMEOUT = 2.0


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(
            url, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT
        )
        client.ping()
        return {"ok": True, "transport": "redis"}
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        ok = folder.is_dir()
        return {"ok": ok, "transport": "filesystem", **({} if ok else {"error": "no folder"})}
    return {"ok": True, "transport": url.split(":", 1)[0], "note": "not checked"}


def beat_age() -> float | None:
    """Seconds since the last heartbeat ran; None when it never ran."""
    beat = Heartbeat.objects.filter(name="beat").values_list("beat_at", flat=True).first()
    return None if beat is None else (timezone.now() - beat).total_seconds()


def _beat() -> dict:
    limit = 3 * settings.BEAT_HEARTBEAT_SECONDS
    age = beat_age()
    if age is None:
        return {"ok": False, "error": "no heartbeat yet: is beat running, and a worker?"}
    return {
        "ok": age <= limit,
        "seconds_since_heartbeat": round(age, 1),
        "limit_seconds": limit,
    }


CHECKS = {"database": _database, "broker": _broker, "beat": _beat}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except (DatabaseError, redis.RedisError, OSError) as exc:
            results[name] = {"ok": False, "error": type(exc).__name__}
    healthy = all(r["ok"] for r in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": results},
        status=200 if healthy else 503,
    )


class DataCollector:
    """Gauges read from the database at scrape time."""

    def collect(self):
        connections = GaugeMetricFamily(
            "portal_connections",
            "Connections by status and provider.",
            labels=["status", "provider"],
        )
        counts = Connection.objects.order_by().values_list("app__provider", "status")
        for provider, status, n in counts.annotate(n=Count("id")):
            connections.add_metric([status, provider], n)
        yield connections
        age = beat_age()
        beat = GaugeMetricFamily(
            "portal_seconds_since_last_beat",
            "Seconds since beat's heartbeat last ran (-1: never).",
        )
        beat.add_metric([], -1 if age is None else age)
        yield beat


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].encode(), token.encode())
    try:
        # The same client address as sign-in throttling: behind LOGIN_TRUSTED_PROXIES proxies,
        # the one they saw, so a proxy on this host does not make every scrape "loopback".
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in net for net in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return JsonResponse(
            {
                "error": "forbidden",
                "message": "Send the metrics bearer token, or scrape from "
                "an allowed network (METRICS_TOKEN, METRICS_ALLOWED_NETWORKS).",
            },
            status=403,
        )
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(DataCollector())
    try:
        body = generate_latest(registry)
    except DatabaseError:
        return JsonResponse({"error": "database_unavailable"}, status=503)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]

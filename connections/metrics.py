"""Prometheus metrics (prometheus-client), counted in whichever process does the work.

Web, worker and beat are separate processes, so the counters use prometheus-client's
multiprocess mode: each process writes its values to files under PROMETHEUS_MULTIPROC_DIR and
/metrics adds them up. The directory is per host; run a scrape target on each host that runs
workers (README). Gauges about the data (connections by status, the last beat) are read from
the database when scraped, so they agree whichever process answers.
"""

import logging
import os
from pathlib import Path

from django.conf import settings

# prometheus-client picks its value store when first imported: the directory must be set first.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.PROMETHEUS_MULTIPROC_DIR))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import Counter, Histogram  # noqa: E402

log = logging.getLogger(__name__)

REFRESHES = Counter(
    "portal_refreshes",
    "Refresh attempts that reached a conclusion, by provider and outcome.",
    ["provider", "outcome"],
)
REFRESH_FAILURES = Counter(
    "portal_refresh_failures",
    "Refreshes the provider refused or did not answer, by provider and reason.",
    ["provider", "reason"],
)
REFRESH_SECONDS = Histogram(
    "portal_refresh_duration_seconds",
    "Time the provider took to answer a refresh (rate-limit waits included).",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
)
TOKEN_API_REQUESTS = Counter(
    "portal_token_api_requests", "Token API answers, by HTTP status.", ["status"]
)
RATE_LIMIT_WAITS = Counter(
    "portal_rate_limit_waits",
    "Times a provider request waited for a slot of the provider's rate limit.",
    ["provider"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "portal_rate_limit_wait_seconds",
    "Seconds provider requests spent waiting for rate-limit slots.",
    ["provider"],
)

WEBHOOK_ATTEMPTS = Counter(
    "portal_webhook_attempts",
    "Attempts to deliver to tenants' listeners, by event type and what came of them "
    "(delivered, pending: to be retried, failed: final).",
    ["event_type", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "portal_webhook_attempt_duration_seconds",
    "Time a listener took to answer a delivery attempt, by event type.",
    ["event_type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
)


def inc(counter: Counter, *labels: str, amount: float = 1.0) -> None:
    """Count, and never fail the work being counted (a full disk, a removed directory)."""
    try:
        counter.labels(*labels).inc(amount)
    except (OSError, ValueError):
        log.warning("could not record the metric %s", counter._name, exc_info=True)


def observe(histogram: Histogram, value: float, *labels: str) -> None:
    try:
        histogram.labels(*labels).observe(value)
    except (OSError, ValueError):
        log.warning("could not record the metric %s", histogram._name, exc_info=True)

"""/healthz: database, broker and beat; 503 with the reason when one fails. /metrics: only for
allowed networks or the bearer token, in Prometheus text format."""

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connections.models import Connection
from portal.models import Heartbeat
from tests import factories
from tests.support import worker as celery_support
from tests.support.waiting import wait_for
from tests.support.worker import start_celery


def beat_now(age: timedelta = timedelta(0)) -> None:
    Heartbeat.objects.update_or_create(name="beat", defaults={"beat_at": timezone.now() - age})


def test_healthz_is_ok_when_database_broker_and_a_fresh_heartbeat_answer(client, db, settings):
    settings.BEAT_HEARTBEAT_SECONDS = 30
    beat_now()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "beat"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_when_the_heartbeat_is_older_than_three_periods(client, db, settings):
    settings.BEAT_HEARTBEAT_SECONDS = 30
    beat_now(age=timedelta(seconds=91))
    response = client.get("/healthz")
    assert response.status_code == 503
    beat = response.json()["checks"]["beat"]
    assert beat["ok"] is False and beat["limit_seconds"] == 90


def test_healthz_is_503_before_any_heartbeat(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "no heartbeat" in response.json()["checks"]["beat"]["error"]


def test_healthz_is_503_when_the_broker_does_not_answer(client, db, settings):
    beat_now()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}


@pytest.mark.worker
def test_healthz_turns_503_when_a_real_beat_stops(client, transactional_db, settings, tmp_path):
    """A real worker and a real beat (their own broker folder and beat lock in tmp_path):
    healthy while beat runs, unhealthy within three heartbeat periods of its death."""
    settings.BEAT_HEARTBEAT_SECONDS = 1
    env = {
        **os.environ,
        "DATABASE_URL": celery_support.test_database_url(),
        "VAR_DIR": str(tmp_path),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "filesystem://",
        "BEAT_HEARTBEAT_SECONDS": "1",
    }
    worker = start_celery(
        "worker", "--pool", "solo", "--without-gossip", "--without-mingle",
        "--without-heartbeat", log_path=tmp_path / "worker.log", env=env,
    )
    beat = start_celery(
        "beat", "--schedule", str(tmp_path / "schedule"), log_path=tmp_path / "beat.log", env=env
    )
    try:
        wait_for(lambda: client.get("/healthz").status_code == 200, timeout=60, every=0.5)
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(timeout=10)
        response = wait_for(
            lambda: (r := client.get("/healthz")).status_code == 503 and r, timeout=30, every=0.5
        )
        assert response.json()["checks"]["beat"]["ok"] is False
    finally:
        for proc in (beat, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def test_metrics_count_connections_by_status_and_provider_and_the_beat_age(client, acme):
    manu, manus = factories.app(acme, "manu_online"), factories.app(acme, "manus")
    factories.connection(manu)
    factories.connection(manu, status=Connection.Status.NEEDS_REAUTH)
    factories.connection(manus)
    beat_now(age=timedelta(seconds=12))
    families = scrape(client)
    samples = {
        (s.labels["provider"], s.labels["status"]): s.value
        for s in families["portal_connections"].samples
    }
    assert samples == {("manu_online", "active"): 1, ("manu_online", "needs_reauth"): 1,
                       ("manus", "active"): 1}
    [age] = families["portal_seconds_since_last_beat"].samples
    assert 12 <= age.value < 60


def test_metrics_refuse_other_networks_unless_the_bearer_token_matches(client, db, settings):
    far = {"REMOTE_ADDR": "198.51.100.7"}
    assert client.get("/metrics", **far).status_code == 403
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **far).status_code == 403
    scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", **far)
    # a wrong token is refused even from an allowed network
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_a_metric_that_cannot_be_written_never_fails_the_work(monkeypatch):
    from connections import metrics

    def broken(*labels):
        raise OSError("No space left on device")

    monkeypatch.setattr(metrics.REFRESHES, "labels", broken)
    monkeypatch.setattr(metrics.REFRESH_SECONDS, "labels", broken)
    metrics.inc(metrics.REFRESHES, "manus", "refreshed")
    metrics.observe(metrics.REFRESH_SECONDS, 0.1, "manus")


def test_behind_a_trusted_proxy_metrics_see_the_client_not_the_proxy(client, db, settings):
    settings.LOGIN_TRUSTED_PROXIES = 1
    via_proxy = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert client.get("/metrics", **via_proxy).status_code == 403
    local = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}
    assert client.get("/metrics", **local).status_code == 200

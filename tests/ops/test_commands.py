"""`manage.py expiry_report` (exit codes for cron and monitoring) and
`manage.py synthetic_connections` (spread out, never due)."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from connections.lifecycle import connections_due
from connections.models import Connection
from tests import factories


def report(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("expiry_report", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_exit_0_when_nothing_needs_attention(acme, globex):
    factories.connection(factories.app(acme), refresh_in=timedelta(days=100))
    code, out, err = report("--tenant", "acme")
    assert code == 0 and out == "" and "Nothing needs" in err


def test_exit_1_and_the_rows_when_something_needs_reauth_or_lapses(acme, globex):
    app = factories.app(acme)
    lapsing = factories.connection(app, refresh_in=timedelta(days=5))
    broken = factories.connection(app, status=Connection.Status.NEEDS_REAUTH)
    factories.connection(app, refresh_in=timedelta(days=50))
    other = factories.connection(factories.app(globex), refresh_in=timedelta(days=1))

    code, out, _ = report("--tenant", "acme", "--within", "7")
    assert code == 1
    assert {int(line.split()[0]) for line in out.splitlines()} == {lapsing.pk, broken.pk}
    code, out, _ = report("--within", "7", "--format", "json")  # every tenant
    assert code == 1 and {r["id"] for r in json.loads(out)} == {lapsing.pk, broken.pk, other.pk}
    code, out, _ = report("--tenant", "acme", "--within", "60", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1 and len(rows) == 3 and rows[0]["status"]


def test_exit_2_on_a_usage_error(acme):
    with pytest.raises(CommandError) as unknown:
        report("--tenant", "nope")
    assert unknown.value.returncode == 2
    with pytest.raises(CommandError) as bad:
        report("--within", "0")
    assert bad.value.returncode == 2


def test_synthetic_connections_are_spread_out_and_never_due(acme, alice, bob):
    err = io.StringIO()
    call_command(
        "synthetic_connections", "--tenant", "acme", "--count", "600", "--events", "100",
        stdout=io.StringIO(), stderr=err,
    )
    rows = Connection.objects.filter(tenant=acme)
    assert rows.count() == 600 and "600 of 600" in err.getvalue()
    assert set(rows.values_list("status", flat=True)) == set(Connection.Status.values)
    assert rows.values("app__provider").distinct().count() >= 4
    assert set(rows.values_list("user_id", flat=True)) == {alice.pk, bob.pk}
    assert connections_due(now=timezone.now() + timedelta(days=3650), limit=10) == []
    with pytest.raises(CommandError):
        call_command("synthetic_connections", "--tenant", "nope", "--count", "5")

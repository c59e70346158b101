"""Shared fixtures: every test gets two tenants and people with each role.

alice: admin of Acme · bob: member of Acme · olive: ops of Acme · carol: admin of Globex.
Their password is tests.support.people.PASSWORD.
"""

import pytest

from portal.models import Membership, Tenant
from tests import factories
from tests.support import flush, live_server

live_server.install()


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete():
    """Transactional tests end with every table emptied by DELETE, not TRUNCATE: the same
    empty tables, in milliseconds instead of 0.3 s a test (tests/support/flush.py)."""
    flush.install()
    yield
    flush.uninstall()


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.create(name="Acme", slug="acme")


@pytest.fixture
def globex(db) -> Tenant:
    return Tenant.objects.create(name="Globex", slug="globex")


@pytest.fixture
def alice(acme):
    return factories.member(acme, "alice", Membership.Role.ADMIN)


@pytest.fixture
def bob(acme):
    return factories.member(acme, "bob", Membership.Role.MEMBER)


@pytest.fixture
def olive(acme):
    return factories.member(acme, "olive", Membership.Role.OPS)


@pytest.fixture
def carol(globex):
    return factories.member(globex, "carol", Membership.Role.ADMIN)


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def portal_url(live_server, settings) -> str:
    """The live server's base URL, which is also the portal's own (callback URLs)."""
    settings.PORTAL_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def tasks_inline(monkeypatch):
    """Run the tasks queued on commit (e-mail, notices) right away, in this process."""
    from portal.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

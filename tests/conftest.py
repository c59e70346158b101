"""Shared fixtures: every test gets two tenants and people with each role.

alice: admin of Acme · bob: member of Acme · olive: ops of Acme · carol: admin of Globex.
"""

import pytest
from django.contrib.auth import get_user_model

from portal.models import Membership, Tenant

PASSWORD = "correct horse battery staple"


def make_member(tenant: Tenant, username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.create(name="Acme", slug="acme")


@pytest.fixture
def globex(db) -> Tenant:
    return Tenant.objects.create(name="Globex", slug="globex")


@pytest.fixture
def alice(acme):
    return make_member(acme, "alice", Membership.Role.ADMIN)


@pytest.fixture
def bob(acme):
    return make_member(acme, "bob", Membership.Role.MEMBER)


@pytest.fixture
def olive(acme):
    return make_member(acme, "olive", Membership.Role.OPS)


@pytest.fixture
def carol(globex):
    return make_member(globex, "carol", Membership.Role.ADMIN)


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login

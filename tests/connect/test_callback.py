"""The callback refuses everything that is not the user's own, fresh, unused answer from the
attempt's own provider: with a clear message, nothing stored, never a 500."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from connections.models import AuditEvent, AuthorizationAttempt, Connection
from portal.models import Membership
from tests.support.connect import params_of, start, with_params

pytestmark = pytest.mark.django_db(transaction=True)


def text(response) -> str:
    """The page the user ends on, following the redirect back to the app if there is one."""
    return response.content.decode()


@pytest.fixture
def bob_at_callback(login, bob, consent_app, consent_callback):
    """bob back from granting a Manus app: his client and the callback URL, not yet opened."""
    client = login(bob)
    return client, consent_callback(client, consent_app("manus"))


def make_member_of(tenant, user):
    Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.MEMBER)


def assert_nothing_stored():
    assert not Connection.objects.exists()


def test_a_replayed_state_is_refused(login, bob, consent_app, consent_callback):
    app = consent_app("manus", pkce_mode="pkce_secret")
    client = login(bob)
    callback = consent_callback(client, app)
    client.get(callback)

    response = client.get(callback, follow=True)

    assert response.status_code == 200
    assert "already been used" in text(response)
    assert Connection.objects.count() == 1


def test_the_state_of_another_user_is_refused_and_left_usable(
    login, bob, alice, consent_app, consent_callback
):
    app = consent_app("manu_online")
    callback = consent_callback(login(bob), app)

    response = login(alice).get(callback)

    assert response.status_code == 400
    assert "not valid" in text(response)
    assert_nothing_stored()
    assert AuthorizationAttempt.objects.get().used_at is None
    login(bob).get(callback)
    assert Connection.objects.get().user == bob


def test_an_expired_attempt_is_refused(bob_at_callback):
    client, callback = bob_at_callback
    AuthorizationAttempt.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get(callback, follow=True)

    assert "expired" in text(response)
    assert_nothing_stored()


def test_an_attempt_in_a_tenant_the_user_left_is_refused(bob, bob_at_callback):
    client, callback = bob_at_callback
    bob.memberships.all().delete()

    response = client.get(callback)

    assert response.status_code == 400
    assert_nothing_stored()


def test_the_connection_belongs_to_the_attempts_tenant(
    login, carol, globex, acme, consent_app, consent_callback
):
    """carol (Globex admin, also an Acme member) connects a Globex app: the connection is
    Globex's, and Acme's pages answer 404 for it."""
    app = consent_app("manus", tenant=globex)
    make_member_of(acme, carol)
    client = login(carol)

    client.get(consent_callback(client, app))

    conn = Connection.objects.get()
    assert conn.tenant == globex and conn.app == app
    assert login(carol).get(f"/t/acme/connections/{conn.pk}/").status_code == 404


def test_an_unknown_or_missing_state_is_refused(bob_at_callback):
    client, callback = bob_at_callback

    for url in (with_params(callback, state="forged"), with_params(callback, state=None)):
        response = client.get(url)
        assert response.status_code == 400
        assert "not valid" in text(response)
    assert_nothing_stored()


def test_a_code_used_twice_is_refused_by_the_provider(login, bob, consent_app, consent_callback):
    app = consent_app("manus")
    client = login(bob)
    first = consent_callback(client, app)
    client.get(first)
    second = consent_callback(client, app)

    response = client.get(with_params(second, code=params_of(first)["code"]), follow=True)

    assert "authorisation code was refused" in text(response)
    assert Connection.objects.count() == 1
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.AUTHORIZE_FAILED).exists()


def test_a_wrong_issuer_is_refused(login, bob, consent_app, consent_callback):
    app = consent_app("manu_online")
    client = login(bob)
    callback = consent_callback(client, app)

    response = client.get(with_params(callback, iss="https://evil.example"), follow=True)

    assert "issuer mismatch" in text(response)
    assert_nothing_stored()


def test_the_user_cancelling_at_the_provider_is_a_cancel(login, bob, consent_app, consent_callback):
    app = consent_app("manus")
    client = login(bob)

    response = client.get(consent_callback(client, app, decision="deny"), follow=True)

    assert "You cancelled" in text(response)
    assert_nothing_stored()


def test_a_provider_error_is_explained(bob_at_callback):
    client, callback = bob_at_callback
    refused = with_params(
        callback, code=None, error="invalid_scope", error_description="no such scope"
    )

    response = client.get(refused, follow=True)

    assert response.status_code == 200
    assert "refused the authorisation: no such scope" in text(response)
    assert_nothing_stored()


def test_a_callback_without_a_code_is_refused(bob_at_callback):
    client, callback = bob_at_callback
    response = client.get(with_params(callback, code=None), follow=True)
    assert "no authorisation code" in text(response)
    assert_nothing_stored()


@pytest.mark.parametrize(
    "query",
    ["", "?state=", "?state=%00", "?code=x", "?error=access_denied", "?state=a&state=b&iss="],
)
def test_junk_at_the_callback_is_a_400_not_a_500(login, bob, portal_url, query):
    response = login(bob).get("/oauth/callback/" + query)
    assert response.status_code == 400


def test_the_callback_needs_a_login(client, consent_app, bob, provider_person):
    app = consent_app("manus")
    starter = Client()
    starter.force_login(bob)
    callback = provider_person.consent(start(starter, app))

    response = client.get(callback)

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert_nothing_stored()


def test_a_missing_issuer_is_refused_where_the_provider_sends_one(
    login, bob, consent_app, consent_callback, monkeypatch
):
    import dataclasses

    from connections import models
    from connections.providers import get_provider

    sends_iss = dataclasses.replace(get_provider("manu_online"), sends_iss=True)
    monkeypatch.setattr(
        models, "get_provider", lambda key: sends_iss if key == "manu_online" else get_provider(key)
    )
    app = consent_app("manu_online")
    client = login(bob)
    callback = consent_callback(client, app)

    response = client.get(with_params(callback, iss=None), follow=True)

    assert "carried no issuer" in text(response)
    assert_nothing_stored()

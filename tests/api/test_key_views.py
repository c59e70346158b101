"""API keys in the browser: admins only, the new key shown once, revoked keys marked."""

import pytest
from django.urls import reverse

from connections import apikeys
from connections.models import TenantApiKey

pytestmark = pytest.mark.django_db


def list_url(slug="acme"):
    return reverse("api_key_list", args=[slug])


def revoke_url(pk, slug="acme"):
    return reverse("api_key_revoke", args=[slug, pk])


def test_new_key_shown_in_full_once_then_only_its_prefix(login, alice):
    client = login(alice)
    response = client.post(list_url(), {"name": "billing"})
    assert response.status_code == 302
    key = TenantApiKey.objects.get()
    page = client.get(list_url()).content.decode()
    shown = page.split('class="secret-once">', 1)[1].split("<", 1)[0]
    assert apikeys.authenticate_key(shown) == key  # the full, working key
    assert f"pk_{key.prefix}_" in page
    again = client.get(list_url()).content.decode()
    assert shown not in again
    assert "secret-once" not in again
    assert f"pk_{key.prefix}_" in again


def test_blank_name_is_a_form_error(login, alice):
    response = login(alice).post(list_url(), {"name": ""})
    assert response.status_code == 400
    assert not TenantApiKey.objects.exists()


def test_revoke_marks_the_key_and_it_stops_working(login, alice, acme):
    new = apikeys.create(tenant=acme, name="billing", actor=alice)
    client = login(alice)
    assert client.post(revoke_url(new.key.pk)).status_code == 302
    assert apikeys.authenticate_key(new.plaintext) is None
    page = client.get(list_url()).content.decode()
    assert "status-revoked" in page
    assert client.post(revoke_url(new.key.pk)).status_code == 302  # twice is harmless


def test_revoke_is_post_only(login, alice, acme):
    new = apikeys.create(tenant=acme, name="billing", actor=alice)
    assert login(alice).get(revoke_url(new.key.pk)).status_code == 405
    assert apikeys.authenticate_key(new.plaintext) is not None


@pytest.mark.parametrize("who", ["bob", "olive"])
def test_members_and_ops_cannot_see_or_manage_keys(request, login, alice, acme, who):
    new = apikeys.create(tenant=acme, name="billing", actor=alice)
    client = login(request.getfixturevalue(who))
    assert client.get(list_url()).status_code == 403
    assert client.post(list_url(), {"name": "sneaky"}).status_code == 403
    assert client.post(revoke_url(new.key.pk)).status_code == 403
    assert TenantApiKey.objects.count() == 1
    assert apikeys.authenticate_key(new.plaintext) is not None


def test_another_tenants_admin_gets_404(login, alice, acme, carol):
    new = apikeys.create(tenant=acme, name="billing", actor=alice)
    client = login(carol)
    assert client.get(list_url()).status_code == 404
    assert client.post(revoke_url(new.key.pk)).status_code == 404
    # Through her own tenant's URL, Acme's key id is just as unknown.
    assert client.post(revoke_url(new.key.pk, slug="globex")).status_code == 404
    assert apikeys.authenticate_key(new.plaintext) is not None


def test_keys_list_only_the_tenants_own(login, alice, carol, acme, globex):
    theirs = apikeys.create(tenant=globex, name="globex-secret-service", actor=carol)
    page = login(alice).get(list_url()).content.decode()
    assert "globex-secret-service" not in page
    assert theirs.key.prefix not in page


def test_anonymous_is_sent_to_login(client):
    response = client.get(list_url())
    assert response.status_code == 302 and "/login/" in response["Location"]

"""Whatever an admin posts, the registry answers with a page or a redirect, never a 500."""

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections.forms import AppForm, SecretForm
from connections.providers import PROVIDERS

pytestmark = pytest.mark.django_db

fuzz = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
values = st.one_of(st.text(max_size=200), st.sampled_from(["", "pkce", "API_ALL", "https://a.b/c"]))


def post_data(fields):
    return st.dictionaries(st.sampled_from(sorted(fields)), values, max_size=len(fields))


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client(raise_request_exception=True)
    client.force_login(alice)
    return client


@pytest.mark.parametrize("key", list(PROVIDERS))
@fuzz
@given(data=post_data(AppForm.base_fields))
def test_create_and_edit_never_crash(alice_client, manu_app, key, data):
    url = reverse("app_create", args=["acme"]) + f"?provider={key}"
    assert alice_client.post(url, data).status_code in (200, 302)
    edit = reverse("app_edit", args=["acme", manu_app.pk])
    assert alice_client.post(edit, data).status_code in (200, 302)


@fuzz
@given(data=post_data(SecretForm.base_fields), status=values)
def test_secret_and_status_posts_never_crash(alice_client, manu_app, data, status):
    assert alice_client.post(
        reverse("secret_add", args=["acme", manu_app.pk]), data
    ).status_code in (200, 302)
    response = alice_client.post(
        reverse("app_status", args=["acme", manu_app.pk]), {"status": status}
    )
    assert response.status_code == 302

"""The app form per provider: which fields it shows, each rule's error, and no crash on input."""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import from_form  # noqa: F401  (import proves the extra exists)

from connections.app_fields import fields_for
from connections.forms import AppForm
from connections.models import PrivateApp
from connections.providers import PROVIDERS

pytestmark = pytest.mark.django_db


def form_for(key: str, data: dict, tenant=None, instance=None) -> AppForm:
    instance = instance or PrivateApp(tenant=tenant, provider=key)
    return AppForm(data, instance=instance, provider=PROVIDERS[key])


MANU_OK = {
    "name": "ERP",
    "client_id": "cid",
    "redirect_uris": "https://a.example/cb\nhttps://b.example/cb",
    "account_ids": "1\n2\n3",
    "scopes": ["API_ALL"],
    "refresh_policy": "warm",
    "client_secret": "s3cret-value-0123",
}


def test_manu_online_shows_only_its_fields():
    names = fields_for(PROVIDERS["manu_online"])
    assert "account_ids" in names and "redirect_uris" in names
    assert "service_password" not in names and "connector_uids" not in names
    assert "grant_type" not in names and "scope_separator" not in names


def test_generic_shows_endpoints_separator_and_client_auth():
    names = fields_for(PROVIDERS["generic"])
    assert {"authorize_url", "token_url", "scope_separator", "client_auth", "grant_type"} <= set(
        names
    )


def test_manhattan_and_manitou_ask_for_their_service_credentials():
    assert {"service_username", "service_password"} <= set(
        fields_for(PROVIDERS["manhattan_active"])
    )
    assert "redirect_uris" not in fields_for(PROVIDERS["manhattan_active"])
    assert {"subscription_key_primary", "subscription_key_secondary"} <= set(
        fields_for(PROVIDERS["manitou_group"])
    )


def test_a_valid_manu_online_app(acme):
    form = form_for("manu_online", MANU_OK, acme)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["account_ids"] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("key", "field", "value", "limit"),
    [
        ("manu_online", "account_ids", "1\n2\n3\n4", 3),
        ("manu_online", "redirect_uris", "\n".join(f"https://a.example/{i}" for i in range(4)), 3),
        ("manus", "redirect_uris", "\n".join(f"https://a.example/{i}" for i in range(4)), 3),
    ],
)
def test_limits_per_provider(acme, key, field, value, limit):
    data = {**MANU_OK, "scopes": [], "pkce_mode": "secret", field: value}
    form = form_for(key, data, acme)
    assert not form.is_valid()
    assert f"At most {limit}" in str(form.errors[field])


def test_manu_online_needs_at_least_one_account_and_redirect(acme):
    form = form_for("manu_online", {**MANU_OK, "account_ids": "", "redirect_uris": ""}, acme)
    assert not form.is_valid()
    assert set(form.errors) == {"account_ids", "redirect_uris"}


def test_manu_online_takes_the_scopes_the_user_has_comma_separated(acme):
    # Seed 000: scopes are the user's API rights, "a comma delimited list"; API_ALL is only
    # the one the portal knows (and warns about).
    form = form_for("manu_online", {**MANU_OK, "scopes": "API_ALL,PARTNER_READ"}, acme)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["scopes"] == ["API_ALL", "PARTNER_READ"]
    assert "Known: API_ALL. API_ALL grants broad access." in form.fields["scopes"].help_text


def test_a_closed_scope_list_refuses_other_scopes(acme):
    form = form_for("manus", {**MANUS_OK, "scopes": ["EVERYTHING"]}, acme)
    assert not form.is_valid()
    assert "scopes" in form.errors


def test_broad_scopes_are_warned_about_once_on_the_apps_page(manu_app, alice, login):
    page = login(alice).get(reverse("app_detail", args=["acme", manu_app.pk])).content.decode()
    assert page.count("grants broad access") == 1


MANUS_OK = {
    "name": "Tasks",
    "client_id": "client_x",
    "pkce_mode": "pkce_secret",
    "client_auth": "json",
    "redirect_uris": "https://a.example/cb",
    "scopes": ["create_task"],
    "refresh_policy": "warm",
    "client_secret": "s3cret-value-0123",
}


def test_a_secret_is_required_unless_pkce_only(acme):
    form = form_for("manus", {**MANUS_OK, "client_secret": ""}, acme)
    assert not form.is_valid()
    assert list(form.errors) == ["client_secret"]
    form = form_for("manus", {**MANUS_OK, "client_secret": "", "pkce_mode": "pkce"}, acme)
    assert form.is_valid(), form.errors


def test_use_connectors_needs_connector_uids(acme):
    form = form_for("manus", {**MANUS_OK, "scopes": ["create_task", "use_connectors"]}, acme)
    assert not form.is_valid()
    assert "connector UID" in str(form.errors["connector_uids"])
    form = form_for(
        "manus",
        {**MANUS_OK, "scopes": ["use_connectors"], "connector_uids": "bbb0df76-1\nbbb0df76-2"},
        acme,
    )
    assert form.is_valid(), form.errors


def test_connector_uids_without_the_scope_are_refused(acme):
    form = form_for("manus", {**MANUS_OK, "connector_uids": "bbb0df76-1"}, acme)
    assert not form.is_valid()
    assert "use_connectors scope" in str(form.errors["connector_uids"])


def test_generic_authorization_code_needs_its_endpoints(acme):
    data = {
        "name": "Gen",
        "client_id": "c",
        "grant_type": "authorization_code",
        "pkce_mode": "secret",
        "client_auth": "basic",
        "redirect_uris": "https://a.example/cb",
        "scopes": "read, write",
        "client_secret": "s3cret-value-0123",
        "refresh_policy": "on_demand",
    }
    form = form_for("generic", data, acme)
    assert not form.is_valid()
    assert set(form.errors) == {"authorize_url", "token_url"}
    form = form_for(
        "generic",
        {**data, "authorize_url": "https://id.example/a", "token_url": "https://id.example/t"},
        acme,
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["scopes"] == ["read", "write"]


def test_generic_scopes_must_be_rfc_tokens(acme):
    form = form_for("generic", {"scopes": 'read "quoted"'}, acme)
    form.is_valid()
    assert "Not a valid scope" in str(form.errors["scopes"])


def test_manhattan_needs_credentials_and_its_own_hosts(acme):
    form = form_for(
        "manhattan_active", {"name": "WMS", "client_id": "c", "client_secret": "sec"}, acme
    )
    assert not form.is_valid()
    assert {"service_username", "service_password", "token_url", "api_base_url"} <= set(form.errors)


def test_stored_credentials_are_never_rendered_and_blank_keeps_them(acme, alice):
    app = PrivateApp.objects.create(
        tenant=acme,
        name="WMS",
        provider="manhattan_active",
        grant_type="password",
        client_id="c",
        token_url="https://wms.example/oauth/token",
        api_base_url="https://wms.example",
        service_username="svc-user-plain",
        service_password="svc-pass-plain",
    )
    html = AppForm(instance=app, provider=app.catalogue).as_p()
    assert "svc-pass-plain" not in html and "svc-user-plain" not in html
    data = {
        "name": "WMS",
        "client_id": "c",
        "token_url": app.token_url,
        "api_base_url": app.api_base_url,
    }
    form = AppForm(data, instance=app, provider=app.catalogue)
    assert form.is_valid(), form.errors
    assert form.app_fields()["service_password"] == "svc-pass-plain"


def test_names_are_unique_in_a_tenant(manu_app, acme):
    form = form_for("manu_online", {**MANU_OK, "name": manu_app.name}, acme)
    assert not form.is_valid()
    assert "already" in str(form.errors["name"])


text_or_list = st.one_of(st.text(max_size=300), st.lists(st.text(max_size=40), max_size=5))


@pytest.mark.parametrize("key", list(PROVIDERS))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(st.sampled_from(list(AppForm.base_fields)), text_or_list))
def test_no_input_makes_the_form_crash(acme, key, data):
    form = form_for(key, data, acme)
    if form.is_valid():
        assert form.app_fields()["name"]


def test_a_redirect_uri_may_carry_a_comma(acme):
    uri = "https://a.example/cb?tags=a,b"
    form = form_for("manu_online", {**MANU_OK, "redirect_uris": f"{uri}\nhttps://b.example/cb"}, acme)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["redirect_uris"] == [uri, "https://b.example/cb"]


def test_the_token_rate_limit_can_be_set_and_needs_both_numbers(acme):
    form = form_for("manus", {**MANUS_OK, "token_rate_limit": "10", "token_rate_window": "10"}, acme)
    assert form.is_valid(), form.errors
    assert form.app_fields()["token_rate_limit"] == 10
    assert "60 per 60 s" in form.fields["token_rate_limit"].help_text
    form = form_for("manus", {**MANUS_OK, "token_rate_limit": "10"}, acme)
    assert not form.is_valid()
    assert "or neither" in str(form.errors["token_rate_window"])
    form = form_for("manus", {**MANUS_OK, "token_rate_limit": "0", "token_rate_window": "10"}, acme)
    assert "token_rate_limit" in form.errors


def test_an_empty_manu_online_form_names_only_options_it_has(acme):
    form = form_for("manu_online", {}, acme)
    assert not form.is_valid()
    text = str(form.errors)
    assert "PKCE" not in text
    assert form.errors["client_secret"] == ["A client secret is required."]
    assert form.errors["account_ids"] == ["Required for this provider and grant."]
    # Required everywhere, so marked required on the page.
    assert all(form.fields[n].required for n in ("client_secret", "redirect_uris", "account_ids"))


def test_generic_service_grants_ignore_the_fields_of_other_grants(acme):
    data = {
        "name": "Svc",
        "client_id": "c",
        "grant_type": "client_credentials",
        "client_auth": "basic",
        "token_url": "https://id.example/t",
        "client_secret": "s3cret-value-0123",
        "service_username": "typed-then-hidden",
        "redirect_uris": "not a url",
    }
    form = form_for("generic", data, acme)
    assert form.is_valid(), form.errors
    fields = form.app_fields()
    assert fields["service_username"] is None and fields["redirect_uris"] == []
    assert form.fields["service_username"].widget.attrs["data-grants"] == "password"


def test_a_custom_domain_can_give_its_own_issuer(settings):
    settings.ALLOW_CUSTOM_ENDPOINTS = True
    assert "issuer" in fields_for(PROVIDERS["manus"])
    settings.ALLOW_CUSTOM_ENDPOINTS = False
    assert "issuer" not in fields_for(PROVIDERS["manus"])
    assert "issuer" in fields_for(PROVIDERS["generic"])

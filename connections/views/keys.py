"""Tenant API keys in the browser: admins list, create and revoke; nobody else sees them.

A new key's plaintext survives exactly one render: it is put in the session (encrypted) by the
POST and popped by the next GET, so a reload shows only the prefix.
"""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.debug import sensitive_variables

from connections import apikeys
from connections.lookups import api_key_in_tenant
from connections.models import TenantApiKey
from portal import show_once
from portal.tenancy import admin_only, object_view

KEY_ONCE = "api_key_once"


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=80, help_text="What uses it, e.g. “billing service (production)”."
    )


def _to_list(request: HttpRequest) -> HttpResponse:
    return redirect("api_key_list", request.tenant.slug)


# The new key's plaintext is a local here and below: no variables in error reports.
@sensitive_variables()
@admin_only
def api_key_list(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        new = apikeys.create(
            tenant=request.tenant, name=form.cleaned_data["name"], actor=request.user
        )
        show_once.remember(
            request, KEY_ONCE, owner=request.tenant.pk, obj_id=new.key.pk, value=new.plaintext
        )
        return _to_list(request)
    keys = TenantApiKey.objects.filter(tenant=request.tenant).select_related("created_by")
    return render(
        request,
        "connections/keys/list.html",
        {
            "keys": keys.order_by("revoked_at", "-created_at"),
            "form": form,
            "new_key": show_once.take(request, KEY_ONCE, owner=request.tenant.pk),
        },
        status=400 if form.is_bound else 200,
    )


@admin_only
@object_view(api_key_in_tenant, methods=["POST"])
def api_key_revoke(request: HttpRequest, key: TenantApiKey) -> HttpResponse:
    if apikeys.revoke(key, actor=request.user):
        messages.success(request, f"API key “{key.name}” revoked; it no longer works.")
    else:
        messages.info(request, f"API key “{key.name}” was already revoked.")
    return _to_list(request)


urlpatterns = [
    path("api-keys/", api_key_list, name="api_key_list"),
    path("api-keys/<int:pk>/revoke/", api_key_revoke, name="api_key_revoke"),
]

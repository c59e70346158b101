"""The private app registry: admins register and change apps, everyone in the tenant reads.

Views parse input and pick the template; connections.services does every write.
"""

import copy

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from connections import services, webhooks_inbound
from connections.flow import callback_uri
from connections.forms import SECRET_FIELDS, AppForm, ProviderChoiceForm, SecretForm
from connections.lookups import app_in_tenant, secret_in_tenant
from connections.models import ClientSecret, Connection, PrivateApp
from connections.providers import PROVIDERS
from connections.selectors import apps_with_counts, failed_deliveries
from connections.webhook_events import EventType
from portal import show_once
from portal.csp_helpers import allow_form_redirect
from portal.tenancy import admin_only, any_member, object_view

SECRET_ONCE = "registry_secret_once"
# Kept out of Django's error reports (POST data) and, below the views, out of frame variables.
APP_SECRET_POSTS = ("client_secret", *SECRET_FIELDS)


def _to_detail(app: PrivateApp) -> HttpResponse:
    return redirect("app_detail", app.tenant.slug, app.pk)


def _remember_secret(request: HttpRequest, secret: ClientSecret, value: str) -> None:
    show_once.remember(request, SECRET_ONCE, owner=secret.app_id, obj_id=secret.pk, value=value)


@any_member
def app_list(request: HttpRequest) -> HttpResponse:
    apps = apps_with_counts(request.membership)
    return render(request, "connections/apps/list.html", {"apps": apps})


@sensitive_variables()
@sensitive_post_parameters(*APP_SECRET_POSTS)
@admin_only
def app_create(request: HttpRequest) -> HttpResponse:
    picker = ProviderChoiceForm(request.GET or None)
    if not picker.is_valid():
        return render(request, "connections/apps/pick_provider.html", {"picker": picker})
    provider = PROVIDERS[picker.cleaned_data["provider"]]
    blank = PrivateApp(tenant=request.tenant, provider=provider.key)
    form = AppForm(request.POST or None, instance=blank, provider=provider)
    if request.method == "GET" and provider.uses_redirect:
        form.initial["redirect_uris"] = [callback_uri()]
    if request.method == "POST" and form.is_valid():
        app, secret = services.app_create(
            tenant=request.tenant,
            actor=request.user,
            fields={**form.app_fields(), "provider": provider.key},
            client_secret=form.cleaned_data.get("client_secret", ""),
            secret_label=form.cleaned_data.get("secret_label", ""),
        )
        if secret:
            _remember_secret(request, secret, form.cleaned_data["client_secret"])
        messages.success(request, f"{app.name} registered ({app.get_status_display()}).")
        return _to_detail(app)
    return render(
        request, "connections/apps/form.html", {"form": form, "provider": provider, "app": None}
    )


@any_member
@object_view(app_in_tenant)
def app_detail(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    mine = app.connections.visible_to(request.membership)  # members count their own
    counts = mine.aggregate(
        total=Count("id"), reauth=Count("id", filter=Q(status=Connection.Status.NEEDS_REAUTH))
    )
    secrets = list(app.client_secrets.all())
    cb = callback_uri()
    provider = app.catalogue
    context = {
        "app": app,
        "provider": provider,
        "secrets": secrets,
        "n_active_secrets": sum(1 for s in secrets if s.revoked_at is None),
        "secret_once": show_once.take(request, SECRET_ONCE, owner=app.pk),
        "callback_url": cb,
        "callback_missing": provider.uses_redirect and cb not in app.redirect_uris,
        "broad_scopes": [s for s in app.scopes if s in provider.broad_scopes],
        "rejected_primary": app.rejected_primary(),
        "counts": counts,
        "is_admin": request.membership.is_admin,
        "status_moves": sorted(services.STATUS_MOVES[app.status]),
        "webhook_url": webhooks_inbound.inbound_url(app) if provider.receives_webhooks else "",
        "webhook_scheme": webhooks_inbound.scheme_for(app),
        # The listener's feedback (seed 000): did the last webhook get through, and why not.
        "webhook_last": app.inbound.defer("body").order_by("-received_at", "-id").first(),
        # The tenant's listener (webhook_listener): what it hears, and whether it fails.
        "listener_events": len(set(app.listener_events or ()) & set(EventType.values)),
        "all_events": len(EventType.values),
        "listener_failed": (
            failed_deliveries(app) if request.membership.reads_audit and app.listener_url else 0
        ),
    }
    response = render(request, "connections/apps/detail.html", context)
    # Connect posts to the portal, which redirects to the provider: the CSP must allow it.
    return allow_form_redirect(response, app.endpoint("authorize_url"))


@sensitive_variables()
@sensitive_post_parameters(*APP_SECRET_POSTS)
@admin_only
@object_view(app_in_tenant, methods=["GET", "POST"])
def app_edit(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    # The form writes into its instance while validating; keep `app` as stored for the page.
    form = AppForm(request.POST or None, instance=copy.copy(app), provider=app.catalogue)
    if request.method == "POST" and form.is_valid():
        result = services.app_update(app=app, actor=request.user, fields=form.app_fields())
        messages.success(request, f"{app.name} saved.")
        if result.widened and app.catalogue.widening_scopes_invalidates:
            messages.warning(
                request,
                f"Added {', '.join(result.widened)}: {app.catalogue.name} invalidates every "
                f"token already issued. {result.invalidated} connection(s) now need "
                "re-authorisation.",
            )
        return _to_detail(app)
    return render(
        request,
        "connections/apps/form.html",
        {"form": form, "provider": app.catalogue, "app": app},
    )


@admin_only
@object_view(app_in_tenant, methods=["POST"])
def app_status(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    try:
        app = services.app_set_status(
            app=app, actor=request.user, status=request.POST.get("status", "")
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        paused = app.connections.paused().count()
        note = (
            f" Its {paused} live connection{'s are' if paused != 1 else ' is'} paused until "
            "you enable it again."
            if app.status == PrivateApp.Status.DISABLED and paused
            else ""
        )
        messages.success(request, f"{app.name} is now {app.get_status_display().lower()}.{note}")
    return _to_detail(app)


@admin_only
@object_view(app_in_tenant, methods=["GET", "POST"])
def app_delete(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    if request.method == "POST":
        try:
            services.app_delete(app=app, actor=request.user)
        except services.AppInUse as exc:
            messages.error(request, str(exc))
            return _to_detail(app)
        messages.success(request, f"{app.name} deleted.")
        return redirect("app_list", request.tenant.slug)
    return render(
        request,
        "connections/apps/confirm_delete.html",
        {"app": app, "n_connections": app.connections.count()},
    )


@sensitive_variables()
@sensitive_post_parameters("value")
@admin_only
@object_view(app_in_tenant, methods=["GET", "POST"])
def secret_add(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    form = SecretForm(request.POST or None, app=app)
    if request.method == "POST" and form.is_valid():
        value, label = form.cleaned_data["value"], form.cleaned_data["label"]
        old = form.cleaned_data.get("replaces")
        try:
            if old is None:
                secret = services.secret_add(app=app, actor=request.user, value=value, label=label)
            else:
                secret = services.secret_replace(
                    old=old, actor=request.user, value=value, label=label
                )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            _remember_secret(request, secret, value)
            done = f"replaced {old.masked}" if old else "added"
            messages.success(request, f"Secret {secret.masked} {done}.")
            return _to_detail(app)
    return render(request, "connections/apps/secret_form.html", {"app": app, "form": form})


def _secret_change(request: HttpRequest, secret: ClientSecret, change, done: str):
    try:
        change(secret=secret, actor=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Secret {secret.masked} {done}.")
    return _to_detail(secret.app)


@admin_only
@object_view(secret_in_tenant, methods=["POST"])
def secret_make_primary(request: HttpRequest, secret: ClientSecret) -> HttpResponse:
    return _secret_change(request, secret, services.secret_make_primary, "is now primary")


@admin_only
@object_view(secret_in_tenant, methods=["POST"])
def secret_revoke(request: HttpRequest, secret: ClientSecret) -> HttpResponse:
    return _secret_change(request, secret, services.secret_revoke, "revoked")


urlpatterns = [
    path("apps/", app_list, name="app_list"),
    path("apps/new/", app_create, name="app_create"),
    path("apps/<int:pk>/", app_detail, name="app_detail"),
    path("apps/<int:pk>/edit/", app_edit, name="app_edit"),
    path("apps/<int:pk>/status/", app_status, name="app_status"),
    path("apps/<int:pk>/delete/", app_delete, name="app_delete"),
    path("apps/<int:pk>/secrets/new/", secret_add, name="secret_add"),
    path(
        "apps/<int:pk>/secrets/<int:secret_pk>/primary/",
        secret_make_primary,
        name="secret_make_primary",
    ),
    path(
        "apps/<int:pk>/secrets/<int:secret_pk>/revoke/",
        secret_revoke,
        name="secret_revoke",
    ),
]

"""Connect: send the user to the provider, take them back at the one callback URL, and create
service-account connections with a button.

The protocol work is in connections.flow and connections.lifecycle; these views check roles,
turn refusals into messages and redirect.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from connections import flow, oauth
from connections.lifecycle import connection_obtain_service, connection_record_failure
from connections.lookups import app_in_tenant
from connections.models import Connection, PrivateApp
from portal.tenancy import admin_only, connection_changers, object_view


def to_connection(conn: Connection) -> HttpResponse:
    return redirect("connection_detail", conn.tenant.slug, conn.pk)


def to_app(app: PrivateApp) -> HttpResponse:
    return redirect("app_detail", app.tenant.slug, app.pk)


def start_or_explain(
    request: HttpRequest, app: PrivateApp, *, connection: Connection | None = None
) -> HttpResponse:
    """Redirect to the provider, or back with the reason it cannot start."""
    try:
        return redirect(flow.attempt_start(app=app, user=request.user, connection=connection))
    except flow.FlowError as exc:
        messages.error(request, str(exc))
        return to_connection(connection) if connection else to_app(app)


def obtain_service_or_explain(
    request: HttpRequest, app: PrivateApp, *, connection: Connection | None = None
) -> HttpResponse:
    """Fetch a service-account token now (new connection, or the same one again)."""
    if not app.is_enabled:
        messages.error(request, f"{app.name} is {app.get_status_display().lower()}.")
        return to_app(app)
    try:
        conn = connection_obtain_service(app=app, actor=request.user, connection=connection)
    except oauth.ProviderError as exc:
        connection_record_failure(app=app, actor=request.user, error=exc, connection=connection)
        messages.error(request, f"{app.catalogue.name} did not give a token: {exc.describe()}")
        return to_connection(connection) if connection else to_app(app)
    messages.success(request, f"{app.name} is connected as {conn.account_name}.")
    warn_if_secret_refused(request, app)
    return to_connection(conn)


def warn_if_secret_refused(request: HttpRequest, app: PrivateApp) -> None:
    """All went well, but only because the provider accepted a secondary secret: say so."""
    refused = app.rejected_primary()
    if refused is not None:
        messages.warning(
            request,
            f"{app.catalogue.name} refused the primary secret {refused.masked}; another secret "
            f"of {app.name} was accepted. Replace or revoke {refused.masked}.",
        )


@connection_changers
@object_view(app_in_tenant, methods=["POST"])
def app_connect(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    return start_or_explain(request, app)


@admin_only
@object_view(app_in_tenant, methods=["POST"])
def app_service_connect(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    if app.connects_in_browser:
        messages.error(request, f"{app.name} connects through the browser with Connect.")
        return to_app(app)
    return obtain_service_or_explain(request, app)


@require_GET
@login_required
def oauth_callback(request: HttpRequest) -> HttpResponse:
    try:
        conn, left, reused = flow.attempt_finish(user=request.user, params=request.GET)
    except flow.FlowError as exc:
        if exc.app is None:
            # Nothing says which tenant this belongs to: a page of its own, no redirect.
            return render(
                request, "connections/connections/callback_error.html", {"error": exc}, status=400
            )
        messages.error(request, str(exc))
        return to_app(exc.app)
    who = f" as {conn.account_name}" if conn.account_name else ""
    if left is not None:
        wanted = left.account_name or left.account_id
        messages.warning(
            request,
            f"You granted access to {conn.account_name or conn.account_id}, but connection "
            f"#{left.pk} is for {wanted}. The grant was saved as this new connection; "
            f"#{left.pk} is unchanged: reconnect it and choose {wanted} at "
            f"{conn.app.catalogue.name}.",
        )
    elif reused:
        messages.success(
            request,
            f"{conn.account_name or conn.account_id} already had connection #{conn.pk} on "
            f"{conn.app.name}: it is reconnected and keeps its id.",
        )
    else:
        messages.success(request, f"{conn.app.name} is connected{who}.")
    warn_if_secret_refused(request, conn.app)
    return to_connection(conn)


urlpatterns = [
    path("apps/<int:pk>/connect/", app_connect, name="app_connect"),
    path("apps/<int:pk>/service-connect/", app_service_connect, name="app_service_connect"),
]
callback_urlpatterns = [
    path("oauth/callback/", oauth_callback, name="oauth_callback"),
]

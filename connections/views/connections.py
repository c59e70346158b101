"""Connection pages: list, detail, and the Test / Refresh / Reconnect / Disconnect buttons.

Members see and act on their own connections, admins on every connection in the tenant, ops
read everything and change nothing. Another tenant's (or another member's) connection is a 404.
"""

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from connections import audit, lifecycle, probe
from connections.lifecycle import Outcome, RefreshUnderWay
from connections.listing import connection_table
from connections.lookups import connection_in_tenant
from connections.models import AuditEvent, Connection
from connections.views.connect import (
    obtain_service_or_explain,
    start_or_explain,
    to_connection,
    warn_if_secret_refused,
)
from portal.csp_helpers import allow_form_redirect
from portal.tenancy import admin_only, any_member, connection_changers, object_view

TEST_RESULT = "connection_test_result"
REFRESH_MESSAGES = {
    Outcome.REFRESHED: ("success", "Refreshed: a new access token is stored."),
    Outcome.SUPERSEDED: ("success", "Another refresh had just finished; its token stands."),
    Outcome.FRESH: ("info", "The access token is still valid."),
    Outcome.BUSY: ("warning", "A refresh is already under way; try again in a moment."),
    Outcome.SKIPPED: ("warning", "This connection cannot be refreshed in its current state."),
    Outcome.RETRY_SCHEDULED: ("warning", "The provider did not answer; a retry is scheduled."),
    Outcome.NEEDS_REAUTH: ("error", "The provider refused the refresh: reconnect to continue."),
    Outcome.APP_CREDENTIALS_INVALID: (
        "error",
        "The provider rejected the app's credentials; an admin must fix the app.",
    ),
}


def visible_connections(request: HttpRequest) -> QuerySet[Connection]:
    """The tenant's connections this person may read: admins and ops all, members their own."""
    return Connection.objects.visible_to(request.membership).select_related("app", "user")


@any_member
def connection_list(request: HttpRequest) -> HttpResponse:
    """Filtered, sorted and paged in the database (connections.listing), newest first."""
    table = connection_table(
        visible_connections(request),
        request.GET,
        tenant=request.tenant,
        membership=request.membership,
    )
    has_any = table.page.paginator.count > 0 or visible_connections(request).exists()
    return render(
        request, "connections/connections/list.html", {"table": table, "has_any": has_any}
    )


@any_member
@object_view(connection_in_tenant, by="membership")
def connection_detail(request: HttpRequest, conn: Connection) -> HttpResponse:
    result = request.session.pop(TEST_RESULT, None)
    if result and result.get("connection") != conn.pk:
        result = None
    context = {
        "conn": conn,
        "app": conn.app,
        "scopes": conn.app.catalogue.split_scopes(conn.scope),
        "events": conn.events.select_related("actor")[:50],
        "test_result": result,
    }
    response = render(request, "connections/connections/detail.html", context)
    # Reconnect posts to the portal, which redirects to the provider: the CSP must allow it.
    return allow_form_redirect(response, conn.app.endpoint("authorize_url"))


@connection_changers
@object_view(connection_in_tenant, by="membership", methods=["POST"])
def connection_test(request: HttpRequest, conn: Connection) -> HttpResponse:
    with audit.acting(request.user):
        result = probe.run_test(conn)
    audit.record(
        AuditEvent.Kind.TESTED,
        tenant=conn.tenant,
        connection=conn,
        actor=request.user,
        request_id=result.get("request_id", ""),
        message=probe.summary(result),
    )
    request.session[TEST_RESULT] = {"connection": conn.pk, **result}
    return to_connection(conn)


@connection_changers
@object_view(connection_in_tenant, by="membership", methods=["POST"])
def connection_refresh(request: HttpRequest, conn: Connection) -> HttpResponse:
    with audit.acting(request.user):
        outcome = lifecycle.connection_refresh(conn.pk, reason="manual", force=True)
    level, text = REFRESH_MESSAGES[outcome]
    messages.add_message(request, getattr(messages, level.upper()), text)
    if outcome == Outcome.REFRESHED:
        warn_if_secret_refused(request, conn.app)
    return to_connection(conn)


@connection_changers
@object_view(connection_in_tenant, by="membership", methods=["POST"])
def connection_reconnect(request: HttpRequest, conn: Connection) -> HttpResponse:
    """Authorise again into the same row: tenants' services hold the connection's id."""
    if conn.app.connects_in_browser:
        return start_or_explain(request, conn.app, connection=conn)
    return obtain_service_or_explain(request, conn.app, connection=conn)


@connection_changers
@object_view(connection_in_tenant, by="membership", methods=["POST"])
def connection_disconnect(request: HttpRequest, conn: Connection) -> HttpResponse:
    if conn.status == Connection.Status.REVOKED:
        messages.info(request, "This connection is already disconnected.")
    else:
        try:
            done = lifecycle.connection_disconnect(conn=conn, actor=request.user)
        except RefreshUnderWay as exc:
            messages.warning(request, str(exc))
        else:
            (messages.success if done.confirmed else messages.warning)(request, done.message)
    return to_connection(conn)


@admin_only
@object_view(connection_in_tenant, by="membership", methods=["POST"])
def connection_delete(request: HttpRequest, conn: Connection) -> HttpResponse:
    """Remove a disconnected connection from the lists; its history stays in the audit log."""
    try:
        lifecycle.connection_delete(conn, actor=request.user)
    except lifecycle.NotDeletable as exc:
        messages.error(request, str(exc))
        return to_connection(conn)
    messages.success(request, f"Connection #{conn.pk} deleted; its history stays in the audit log.")
    return redirect("connection_list", request.tenant.slug)


urlpatterns = [
    path("connections/", connection_list, name="connection_list"),
    path("connections/<int:pk>/", connection_detail, name="connection_detail"),
    path("connections/<int:pk>/test/", connection_test, name="connection_test"),
    path("connections/<int:pk>/refresh/", connection_refresh, name="connection_refresh"),
    path("connections/<int:pk>/reconnect/", connection_reconnect, name="connection_reconnect"),
    path("connections/<int:pk>/disconnect/", connection_disconnect, name="connection_disconnect"),
    path("connections/<int:pk>/delete/", connection_delete, name="connection_delete"),
]

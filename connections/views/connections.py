"""Connection pages: list, detail, and the Test / Refresh / Reconnect / Disconnect buttons.

Members see and act on their own connections, admins on every connection in the tenant, ops
read everything and change nothing. Another tenant's (or another member's) connection is a 404.
"""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from connections import audit, flow, lifecycle, oauth
from connections.lifecycle import Outcome, RefreshUnderWay, TokenUnavailable
from connections.listing import connection_table
from connections.models import AuditEvent, Connection
from connections.providers import Grant
from connections.views.connect import (
    obtain_service_or_explain,
    start_or_explain,
    to_connection,
    warn_if_secret_refused,
)
from portal.csp_helpers import allow_form_redirect
from portal.tenancy import admin_only, any_member

TEST_RESULT = "connection_test_result"
# A person is waiting on the page: a refresh in flight is waited for this long at most.
TEST_WAIT_SECONDS = 10.0
# The most of a test endpoint's answer the page shows.
EXCERPT_CHARS = 2000
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


def can_act(request: HttpRequest) -> bool:
    return request.membership.can_change_connections


def connection_to_read(request: HttpRequest, pk: int) -> Connection:
    return get_object_or_404(visible_connections(request), pk=pk)


def connection_to_change(request: HttpRequest, pk: int) -> Connection:
    conn = connection_to_read(request, pk)
    if not can_act(request):
        raise PermissionDenied("Ops can read connections but not change them.")
    return conn


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
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    conn = connection_to_read(request, pk)
    result = request.session.pop(TEST_RESULT, None)
    if result and result.get("connection") != conn.pk:
        result = None
    context = {
        "conn": conn,
        "app": conn.app,
        "scopes": conn.app.catalogue.split_scopes(conn.scope),
        "events": conn.events.select_related("actor")[:50],
        "can_act": can_act(request),
        "test_result": result,
    }
    response = render(request, "connections/connections/detail.html", context)
    # Reconnect posts to the portal, which redirects to the provider: the CSP must allow it.
    return allow_form_redirect(response, conn.app.endpoint("authorize_url"))


def _test_once(conn: Connection) -> tuple[Connection, object]:
    conn = lifecycle.connection_token(conn.pk, tenant_id=conn.tenant_id, wait_seconds=TEST_WAIT_SECONDS)
    return conn, flow.call_test_endpoint(conn)


def excerpt(text: str) -> str:
    """What the page shows of an answer: capped (the template escapes it)."""
    if len(text) <= EXCERPT_CHARS:
        return text
    return f"{text[:EXCERPT_CHARS]}\n… ({len(text) - EXCERPT_CHARS} more characters not shown)"


def run_test(conn: Connection) -> dict:
    """Call the test endpoint with a valid token; a 401 means the provider dropped the token
    before its expiry (revoked, scopes widened), so refresh once and try again."""
    try:
        conn, response = _test_once(conn)
        if response.status_code == 401:
            lifecycle.connection_refresh(conn.pk, reason="manual", force=True)
            conn, response = _test_once(conn)
    except TokenUnavailable as exc:
        return {"ok": False, "status": None, "body": f"No valid token ({exc.reason}): {exc}"}
    except oauth.ProviderError as exc:
        return {"ok": False, "status": None, "body": exc.describe()}
    data = oauth.safe_json(response)
    return {
        "ok": response.status_code < 400,
        "status": response.status_code,
        "body": excerpt(json.dumps(data, indent=2, sort_keys=True)),
        "request_id": response.headers.get("X-Request-Id", "")[:120],
    }


@require_POST
@any_member
def connection_test(request: HttpRequest, pk: int) -> HttpResponse:
    conn = connection_to_change(request, pk)
    with audit.acting(request.user):
        result = run_test(conn)
    audit.record(
        AuditEvent.Kind.TESTED,
        tenant=conn.tenant,
        connection=conn,
        actor=request.user,
        request_id=result.get("request_id", ""),
        message=(
            f"Test call answered HTTP {result['status']}."
            if result["status"]
            else f"Test call not answered: {result['body']}"
        ),
    )
    request.session[TEST_RESULT] = {"connection": conn.pk, **result}
    return to_connection(conn)


@require_POST
@any_member
def connection_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    conn = connection_to_change(request, pk)
    with audit.acting(request.user):
        outcome = lifecycle.connection_refresh(conn.pk, reason="manual", force=True)
    level, text = REFRESH_MESSAGES[outcome]
    messages.add_message(request, getattr(messages, level.upper()), text)
    if outcome == Outcome.REFRESHED:
        warn_if_secret_refused(request, conn.app)
    return to_connection(conn)


@require_POST
@any_member
def connection_reconnect(request: HttpRequest, pk: int) -> HttpResponse:
    """Authorise again into the same row: tenants' services hold the connection's id."""
    conn = connection_to_change(request, pk)
    if conn.app.grant_type == Grant.AUTHORIZATION_CODE:
        return start_or_explain(request, conn.app, connection=conn)
    return obtain_service_or_explain(request, conn.app, connection=conn)


@require_POST
@any_member
def connection_disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    conn = connection_to_change(request, pk)
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


@require_POST
@admin_only
def connection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a disconnected connection from the lists; its history stays in the audit log."""
    conn = connection_to_read(request, pk)
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

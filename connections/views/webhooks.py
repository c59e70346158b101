"""Inbound webhooks: the endpoint providers post to, and the pages of what arrived.

The endpoint is reached by its URL token alone (no session, so no CSRF) and answers JSON
only: 200 when verified and stored (and for a signed resend of a delivery id it already has:
a provider's retry, recorded but not stored or relayed again), 401 when not verifiable, 404 for an unknown URL, 405
for anything but POST, 413 for a body over WEBHOOK_MAX_BODY_BYTES. The pages are for the
tenant's admins and ops (who read the audit trail); only admins see payloads.
"""

import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from connections import webhook_events, webhooks_inbound, webhooks_outbound
from connections.lookups import app_in_tenant, delivery_in_tenant
from connections.models import InboundDelivery, PrivateApp
from connections.views.delivery_lists import DeliveryFilters, list_context
from portal.tenancy import admin_only, object_view, tenant_view

log = logging.getLogger(__name__)
readers = tenant_view(may="reads_audit")


def _answer(body: dict, status: int = 200, headers: dict | None = None) -> JsonResponse:
    """Every answer of the endpoint: JSON, never cached."""
    response = JsonResponse(body, status=status, headers=headers)
    response["Cache-Control"] = "no-store"
    return response


def _error(code: str, message: str, status: int, headers: dict | None = None) -> JsonResponse:
    response = _answer({"error": code, "message": message}, status, headers)
    # Django's request logger would write "Unauthorized: <path>", and the path carries the
    # URL's token: this line says the same without it.
    response._has_been_logged = True
    log.warning("inbound webhook answered %s: %s", status, code)
    return response


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


@csrf_exempt
def webhook_inbound(request: HttpRequest, token: str) -> JsonResponse:
    if request.method != "POST":
        return _error(
            "method_not_allowed", "Webhooks are sent with POST.", 405, headers={"Allow": "POST"}
        )
    app = webhooks_inbound.app_for_token(token)
    if app is None:
        return _error("not_found", "No such webhook URL.", 404)
    if app.status == PrivateApp.Status.DISABLED:
        # Paused like its connections: the sender hears it at once (seed 000's feedback).
        paused = webhooks_inbound.Rejected(
            "app_disabled", f"{app.name} is disabled in the portal; an admin can enable it."
        )
        webhooks_inbound.record_rejected(app, request.headers, _declared_length(request), paused)
        return _error(paused.reason, paused.message, 409)
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    too_large = webhooks_inbound.Rejected(
        "too_large", f"The body is larger than the {limit} bytes the portal accepts."
    )
    declared = _declared_length(request)
    # A declared size over the limit is refused unread; otherwise at most limit + 1 bytes are
    # read, so a body without (or with a lying) Content-Length is caught too.
    if declared > limit:
        webhooks_inbound.record_rejected(app, request.headers, declared, too_large)
        return _error(too_large.reason, too_large.message, 413)
    try:
        body = request.read(limit + 1)
    except OSError:
        return _error("unreadable", "The request body could not be read.", 400)
    if len(body) > limit:
        webhooks_inbound.record_rejected(app, request.headers, len(body), too_large)
        return _error(too_large.reason, too_large.message, 413)
    # The delivery and its relay are written together: a verified webhook is never kept
    # without the relay it owes (a provider's retry would only be a duplicate then).
    with transaction.atomic():
        delivery = webhooks_inbound.receive(app, request.headers, body)
        relayed = None
        if delivery.result == InboundDelivery.Result.VERIFIED:
            relayed = webhook_events.relay(delivery, queue=not app.listener_sync)
    if delivery.reason == webhooks_inbound.REPLAYED:
        return _duplicate(app, delivery)
    if delivery.result != InboundDelivery.Result.VERIFIED:
        return _error(delivery.reason, delivery.message, 401)
    answer = {"received": True, "malformed": delivery.malformed}
    status = 200
    if relayed is not None and app.listener_sync:
        answer["listener"], status = _relay_while_waiting(relayed)
    return _answer(answer, status)


def _duplicate(app: PrivateApp, replay: InboundDelivery) -> JsonResponse:
    """A correctly signed delivery the portal already has: the provider retrying. It is not
    stored or relayed twice, and hears 200, so it stops; in synchronous mode, while the relay
    of the first is still owed, the retry is the moment to try the listener again."""
    answer, status = {"received": True, "duplicate": True}, 200
    first = app.inbound.filter(
        result=InboundDelivery.Result.VERIFIED, delivery_id=replay.delivery_id
    ).first()
    relayed = first.relays.first() if first is not None else None
    if app.listener_sync and relayed is not None and relayed.status == relayed.Status.PENDING:
        answer["listener"], status = _relay_while_waiting(relayed)
    return _answer(answer, status)


def _relay_while_waiting(relayed) -> tuple[dict, int]:
    """Synchronous mode: the provider hears the listener's status (seed 000's immediate
    feedback). A redirect or no answer is a 502 (504 for the deadline); a failure is retried
    by the portal later as usual. With the tenant's slots taken, the delivery is queued (202)."""
    try:
        sent = webhooks_outbound.relay_now(relayed)
    except DatabaseError:
        log.exception("synchronous relay of delivery %s failed; it stays queued", relayed.pk)
        sent = None
    if sent is None:
        webhook_events.queue_send(relayed.pk)
        return {"queued": True, "message": "The listener is busy; the delivery is queued."}, 202
    listener = {"status": sent.code, "error": sent.error, "webhook_id": relayed.message_id}
    return listener, _passed_on(sent)


def _passed_on(sent) -> int:
    """The listener's status as the provider's answer: a 2xx is 200 (a 204's or 304's
    answer cannot carry this JSON), a 4xx or 5xx as it was; anything else (a redirect, a
    code past 599, no answer) 502, or 504 past the deadline."""
    if sent.code is None or not 200 <= sent.code < 600 or 300 <= sent.code < 400:
        return 504 if sent.timed_out else 502
    return 200 if sent.code < 300 else sent.code


@admin_only
@object_view(app_in_tenant, methods=["POST"])
def webhook_regenerate(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    webhooks_inbound.regenerate_token(app=app, actor=request.user)
    messages.success(
        request,
        f"{app.name} has a new inbound webhook URL. Paste it into {app.catalogue.name}'s "
        "settings: the old one no longer works.",
    )
    return redirect("app_detail", request.tenant.slug, app.pk)


class DeliveryFilterForm(DeliveryFilters):
    exact = ("result",)
    result = forms.ChoiceField(
        required=False, choices=[("", "Any result"), *InboundDelivery.Result.choices]
    )
    field_order = ["result", "app"]


def _deliveries_page(request: HttpRequest, app: PrivateApp | None) -> HttpResponse:
    form = DeliveryFilterForm(request.GET, tenant=request.tenant, app=app)
    rows = InboundDelivery.objects.all()
    context = list_context(request, rows, form, app=app, time_field="received_at")
    return render(request, "connections/webhooks/list.html", context)


@readers
def delivery_list(request: HttpRequest) -> HttpResponse:
    return _deliveries_page(request, None)


@readers
@object_view(app_in_tenant)
def app_delivery_list(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    return _deliveries_page(request, app)


@readers
@object_view(delivery_in_tenant)
def delivery_detail(request: HttpRequest, delivery: InboundDelivery) -> HttpResponse:
    context = {
        "d": delivery,
        "show_payload": request.membership.is_admin,
        # What the portal sent on to the app's listener (webhook_events.relay).
        "relays": delivery.relays.defer("body").order_by("created_at", "id"),
    }
    return render(request, "connections/webhooks/detail.html", context)


# Outside the tenant prefix: a provider knows only the URL.
inbound_urlpatterns = [
    path("webhooks/in/<str:token>/", webhook_inbound, name="webhook_inbound"),
]
urlpatterns = [
    path("webhooks/", delivery_list, name="webhook_list"),
    path("webhooks/<int:pk>/", delivery_detail, name="webhook_detail"),
    path("apps/<int:pk>/webhooks/", app_delivery_list, name="app_webhook_list"),
    path("apps/<int:pk>/webhooks/regenerate/", webhook_regenerate, name="webhook_regenerate"),
]

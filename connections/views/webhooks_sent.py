"""Outbound webhooks: the pages of what the portal sent to the tenant's listeners.

For the tenant's admins and ops (who read the audit trail), like the inbound pages; only
admins see a delivery's payload and may send it again (Redeliver, same webhook-id).
"""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from connections import webhooks_outbound
from connections.lookups import app_in_tenant, outbound_delivery_in_tenant
from connections.models import OutboundDelivery, PrivateApp
from connections.views.delivery_lists import DeliveryFilters, list_context
from connections.webhook_events import EventType
from portal.tenancy import admin_only, object_view, tenant_view

readers = tenant_view(may="reads_audit")
Status = OutboundDelivery.Status
EVENT_LABELS = dict(EventType.choices)
#: Redeliver is offered for these: the others are still on their way
SETTLED = (Status.DELIVERED, Status.FAILED)


def event_label(event_type: str) -> str:
    return EVENT_LABELS.get(event_type, event_type)


class SentFilterForm(DeliveryFilters):
    exact = ("status", "event_type")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    event_type = forms.ChoiceField(
        required=False, label="Event", choices=[("", "Any event"), *EventType.choices]
    )
    field_order = ["status", "event_type", "app"]


def _sent_page(request: HttpRequest, app: PrivateApp | None) -> HttpResponse:
    form = SentFilterForm(request.GET, tenant=request.tenant, app=app)
    rows = OutboundDelivery.objects.all()
    context = list_context(request, rows, form, app=app, time_field="created_at")
    for d in context["deliveries"]:
        d.event_label = event_label(d.event_type)
    return render(request, "connections/webhooks/sent_list.html", context)


@readers
def sent_list(request: HttpRequest) -> HttpResponse:
    return _sent_page(request, None)


@readers
@object_view(app_in_tenant)
def app_sent_list(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    return _sent_page(request, app)


@readers
@object_view(outbound_delivery_in_tenant)
def sent_detail(request: HttpRequest, delivery: OutboundDelivery) -> HttpResponse:
    is_admin = request.membership.is_admin
    context = {
        "d": delivery,
        "event_label": event_label(delivery.event_type),
        "tries": delivery.tries.all(),
        "show_payload": is_admin,
        "may_redeliver": is_admin and delivery.status in SETTLED,
    }
    return render(request, "connections/webhooks/sent_detail.html", context)


@admin_only
@object_view(outbound_delivery_in_tenant, methods=["POST"])
def sent_redeliver(request: HttpRequest, delivery: OutboundDelivery) -> HttpResponse:
    if webhooks_outbound.redeliver(delivery, actor=request.user):
        messages.success(
            request,
            f"{event_label(delivery.event_type)} will be sent again to {delivery.app.name}'s "
            f"listener, with the same webhook-id {delivery.message_id}.",
        )
    else:
        messages.info(
            request, "This delivery is still on its way: it can be sent again once it settles."
        )
    return redirect("webhook_sent_detail", request.tenant.slug, delivery.pk)


urlpatterns = [
    path("webhooks/sent/", sent_list, name="webhook_sent_list"),
    path("webhooks/sent/<int:pk>/", sent_detail, name="webhook_sent_detail"),
    path("webhooks/sent/<int:pk>/redeliver/", sent_redeliver, name="webhook_redeliver"),
    path("apps/<int:pk>/webhooks/sent/", app_sent_list, name="app_webhook_sent_list"),
]

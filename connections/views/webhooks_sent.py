"""Outbound webhooks: the pages of what the portal sent to the tenant's listeners.

For the tenant's admins and ops (who read the audit trail), like the inbound pages; only
admins see a delivery's payload and may send it again (Redeliver, same webhook-id).
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from connections import keyset, webhooks_outbound
from connections.lookups import app_in_tenant, outbound_delivery_in_tenant
from connections.models import OutboundDelivery, PrivateApp
from connections.webhook_events import EventType
from portal.tenancy import admin_only, object_view, tenant_view

PAGE = 50
readers = tenant_view(may="reads_audit")
Status = OutboundDelivery.Status
EVENT_LABELS = dict(EventType.choices)
#: Redeliver is offered for these: the others are still on their way
SETTLED = (Status.DELIVERED, Status.FAILED)


def event_label(event_type: str) -> str:
    return EVENT_LABELS.get(event_type, event_type)


class SentFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    event_type = forms.ChoiceField(
        required=False, label="Event", choices=[("", "Any event"), *EventType.choices]
    )
    app = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    before = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput
    )

    def __init__(self, data, *, tenant, app: PrivateApp | None = None):
        super().__init__(data)
        if app is not None:
            del self.fields["app"]  # the page is the app's
            return
        apps = PrivateApp.objects.filter(tenant=tenant).order_by("name").values_list("pk", "name")
        self.fields["app"].choices = [("", "Any app"), *apps]


def _sent_page(request: HttpRequest, app: PrivateApp | None) -> HttpResponse:
    form = SentFilterForm(request.GET, tenant=request.tenant, app=app)
    data = form.cleaned_data if form.is_valid() else {}
    rows = OutboundDelivery.objects.in_tenant(request.tenant)
    if app is not None:
        rows = rows.filter(app=app)
    elif data.get("app"):
        rows = rows.filter(app_id=data["app"])
    if data.get("status"):
        rows = rows.filter(status=data["status"])
    if data.get("event_type"):
        rows = rows.filter(event_type=data["event_type"])
    page = keyset.newest_first(
        rows.select_related("app", "connection").defer("body"),
        "created_at",
        before=data.get("before"),
        query=request.GET.dict(),
        per_page=PAGE,
    )
    for d in page["rows"]:
        d.event_label = event_label(d.event_type)
    context = {
        "form": form,
        "deliveries": page["rows"],
        "app": app,
        "retention_days": settings.WEBHOOK_RETENTION_DAYS,
        "older": page["older"],
        "newest": page["newest"],
    }
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

"""The tenant's audit trail: every event, newest first, filtered, paged by keyset.

A tenant can hold millions of events, so pages never count or OFFSET: "Older" continues below
the last event shown (created_at, id), on the (tenant, -created_at, -id) index. Admins and ops
read everything; members the events of their own connections. No event holds a secret.
"""

from datetime import datetime, time, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from connections import keyset
from connections.models import AuditEvent, PrivateApp
from portal.tenancy import any_member

PAGE = 50
MAX_YEAR = 9000
SYSTEM = "system"


class AuditFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=[("", "Any event"), *AuditEvent.Kind.choices])
    app = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    connection = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    actor = forms.ChoiceField(required=False, label="By")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data, *, tenant):
        super().__init__(data)
        apps = PrivateApp.objects.filter(tenant=tenant).order_by("name").values_list("pk", "name")
        self.fields["app"].choices = [("", "Any app"), *apps]
        people = tenant.memberships.select_related("user").order_by("user__username")
        self.fields["actor"].choices = [
            ("", "Anyone"),
            (SYSTEM, "System (beat, workers)"),
            *((str(m.user_id), m.user.get_username()) for m in people),
        ]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“Since” is after “until”.")
        for name in ("since", "until"):
            if data.get(name) and data[name].year > MAX_YEAR:  # a day after it must exist
                self.add_error(name, f"Choose a date before {MAX_YEAR + 1}.")
        return data


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def visible_events(request: HttpRequest):
    events = AuditEvent.objects.filter(tenant=request.tenant)
    if not request.membership.sees_all_connections:
        events = events.filter(connection__user=request.user)
    return events


def filtered_events(events, data: dict):
    if data.get("kind"):
        events = events.filter(kind=data["kind"])
    if data.get("app"):
        events = events.filter(app_id=data["app"])
    if data.get("connection"):
        events = events.filter(connection_id=data["connection"])
    if data.get("actor") == SYSTEM:
        events = events.filter(actor__isnull=True)
    elif data.get("actor"):
        events = events.filter(actor_id=int(data["actor"]))
    if data.get("since"):
        events = events.filter(created_at__gte=_day_start(data["since"]))
    if data.get("until"):
        events = events.filter(created_at__lt=_day_start(data["until"] + timedelta(days=1)))
    return events


@any_member
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET, tenant=request.tenant)
    data = form.cleaned_data if form.is_valid() else {}
    events = filtered_events(visible_events(request), data)
    rows = events.select_related("actor", "app", "connection").only(
        "id",
        "kind",
        "message",
        "request_id",
        "created_at",
        "connection_id",
        "app__name",
        "actor__username",
        "connection__account_name",
        "connection__account_id",
    )
    page = keyset.newest_first(
        rows, "created_at", before=data.get("before"), query=request.GET.dict(), per_page=PAGE
    )
    context = {
        "form": form,
        "events": page["rows"],
        "older": page["older"],
        "newest": page["newest"],
    }
    return render(request, "connections/audit/list.html", context)


urlpatterns = [path("audit/", audit_log, name="audit_log")]

"""What the Received and Sent lists of webhook deliveries share: the app filter (gone on an
app's own page), the keyset pager, and the page's context."""

from django import forms
from django.conf import settings
from django.http import HttpRequest

from connections import keyset
from connections.models import PrivateApp

PAGE = 50


class DeliveryFilters(forms.Form):
    """The app and pager fields; a subclass adds the list's own filters, each an exact match
    on the field of the same name."""

    exact: tuple[str, ...] = ()
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


def list_context(
    request: HttpRequest, rows, form: DeliveryFilters, *, app, time_field: str
) -> dict:
    """The tenant's rows, filtered by the form, newest first, a page of them."""
    data = form.cleaned_data if form.is_valid() else {}
    rows = rows.in_tenant(request.tenant)
    if app is not None:
        rows = rows.filter(app=app)
    elif data.get("app"):
        rows = rows.filter(app_id=data["app"])
    for name in form.exact:
        if data.get(name):
            rows = rows.filter(**{name: data[name]})
    page = keyset.newest_first(
        rows.select_related("app", "connection").defer("body"),
        time_field,
        before=data.get("before"),
        query=request.GET.dict(),
        per_page=PAGE,
    )
    return {
        "form": form,
        "deliveries": page["rows"],
        "app": app,
        "retention_days": settings.WEBHOOK_RETENTION_DAYS,
        "older": page["older"],
        "newest": page["newest"],
    }

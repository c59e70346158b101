"""An app's listener settings, for the tenant's admins: where deliveries go, whether a
provider's request waits for the listener, which events it hears, and its signing secrets.

A signing secret is shown once, on the page after the POST that made it (portal.show_once):
the first when a listener URL is first saved, a new one at each rotation. The page lists the
current secrets by their last four characters, never their values.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.debug import sensitive_variables

from connections import destinations, webhook_listener
from connections.lookups import app_in_tenant
from connections.models import PrivateApp
from connections.webhook_events import EventType
from portal import show_once
from portal.tenancy import admin_only, object_view

SIGNING_SECRET_ONCE = "listener_secret_once"


class ListenerForm(forms.Form):
    listener_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Listener URL",
        help_text="Your service's https:// URL the portal posts this app's events to. Blank: "
        "no listener, nothing is sent.",
    )
    listener_sync = forms.BooleanField(required=False, label="Synchronous mode")
    listener_events = forms.MultipleChoiceField(
        required=False,
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Events sent",
        help_text="“Connection refreshed” is off by default: every refresh of every "
        "connection would be a delivery.",
    )
    lapse_warning_days = forms.IntegerField(
        min_value=1,
        max_value=365,
        label="Lapse warning (days)",
        help_text="“Refresh token lapsing” is sent this many days before a connection's "
        "refresh token expires (1 to 365).",
    )

    def __init__(self, data, *, app: PrivateApp):
        initial = {name: getattr(app, name) for name in webhook_listener.LISTENER_FIELDS}
        super().__init__(data, initial=initial)
        self.fields["listener_sync"].help_text = (
            "The provider's webhook request waits for the listener, up to "
            f"{settings.WEBHOOK_SYNC_DEADLINE:g} s, and is answered with the listener's "
            "status. Off: the provider is answered at once and the relay is sent after."
        )

    def clean_listener_url(self) -> str:
        url = self.cleaned_data["listener_url"]
        if url:
            try:
                destinations.check_url(url)
            except destinations.Refused as exc:
                raise ValidationError(f"The portal does not send requests there: {exc}.") from None
        return url

    def clean_listener_events(self) -> list[str]:
        # In the choices' order, so an unchanged set is not recorded as a change.
        chosen = set(self.cleaned_data["listener_events"])
        return [value for value in EventType.values if value in chosen]


def _to_settings(app: PrivateApp) -> HttpResponse:
    return redirect("webhook_listener", app.tenant.slug, app.pk)


def _show_once(request: HttpRequest, app: PrivateApp, value: str) -> None:
    newest = webhook_listener.current_secrets(app).values_list("pk", flat=True).first()
    show_once.remember(request, SIGNING_SECRET_ONCE, owner=app.pk, obj_id=newest, value=value)


@sensitive_variables()
@admin_only
@object_view(app_in_tenant, methods=["GET", "POST"])
def listener_settings(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    form = ListenerForm(request.POST if request.method == "POST" else None, app=app)
    if request.method == "POST" and form.is_valid():
        secret = webhook_listener.configure(app=app, actor=request.user, **form.cleaned_data)
        if secret:
            _show_once(request, app, secret)
        if not form.cleaned_data["listener_url"]:
            done = f"{app.name} has no listener now: nothing is sent."
        elif secret:
            done = f"Listener of {app.name} saved. Copy its signing secret below."
        else:
            done = f"Listener of {app.name} saved."
        messages.success(request, done)
        return _to_settings(app)
    secrets = list(webhook_listener.current_secrets(app))
    context = {
        "app": app,
        "form": form,
        "secrets": secrets,
        "overlap_until": max((s.expires_at for s in secrets if s.expires_at), default=None),
        "overlap": timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS),
        "secret_once": show_once.take(request, SIGNING_SECRET_ONCE, owner=app.pk),
    }
    return render(request, "connections/webhooks/listener.html", context)


@sensitive_variables()
@admin_only
@object_view(app_in_tenant, methods=["POST"])
def listener_rotate(request: HttpRequest, app: PrivateApp) -> HttpResponse:
    _show_once(request, app, webhook_listener.rotate_secret(app=app, actor=request.user))
    messages.success(request, f"{app.name} has a new signing secret: copy it below.")
    return _to_settings(app)


urlpatterns = [
    path("apps/<int:pk>/webhooks/listener/", listener_settings, name="webhook_listener"),
    path(
        "apps/<int:pk>/webhooks/listener/rotate/", listener_rotate, name="webhook_listener_rotate"
    ),
]

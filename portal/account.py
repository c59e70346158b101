"""A person's own account: profile (name, e-mail confirmed by a link, notices), password,
"sign out everywhere", and the TOTP second factor with recovery codes (django-otp)."""

import base64
import hashlib
import secrets

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import Profile
from portal.tasks import send_email

RECOVERY_CODES = 10
EMAIL_LINK_HOURS = 48


def profile_of(user) -> Profile:
    return Profile.objects.get_or_create(user=user)[0]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False, label="First name")
    last_name = forms.CharField(max_length=150, required=False, label="Last name")
    email = forms.EmailField(
        required=False,
        label="E-mail",
        help_text="Notices go here once you have opened the confirmation link we send.",
    )
    notify_reauth = forms.BooleanField(
        required=False,
        label="E-mail me when a connection needs re-authorisation or an app's credentials are "
        "rejected (admins and ops; your own connections are always)",
    )
    notify_digest = forms.BooleanField(
        required=False, label="Send me the weekly digest of refresh tokens ending soon"
    )


def _profile_initial(user, prefs: Profile) -> dict:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": prefs.pending_email or user.email,
        "notify_reauth": prefs.notify_reauth,
        "notify_digest": prefs.notify_digest,
    }


def _render_profile(request, *, prefs: Profile, form, password_form, status: int = 200):
    """The profile page, for itself and for a password change that failed."""
    user = request.user
    context = {
        "form": form,
        "prefs": prefs,
        "password_form": password_form,
        "has_totp": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "recovery_left": StaticToken.objects.filter(device__user=user).count(),
    }
    return render(request, "portal/profile.html", context, status=status)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user, prefs = request.user, profile_of(request.user)
    form = ProfileForm(request.POST or None, initial=_profile_initial(user, prefs))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        get_user_model().objects.filter(pk=user.pk).update(
            first_name=data["first_name"], last_name=data["last_name"]
        )
        Profile.objects.filter(pk=prefs.pk).update(
            notify_reauth=data["notify_reauth"], notify_digest=data["notify_digest"]
        )
        email = data["email"].strip().lower()
        if email and email != user.email.lower() and email != prefs.pending_email:
            _start_email_change(request, prefs, email)
            messages.info(request, f"We sent a confirmation link to {email}.")
        else:
            messages.success(request, "Saved.")
        return redirect("profile")
    return _render_profile(
        request, prefs=prefs, form=form, password_form=PasswordChangeForm(user)
    )


def _start_email_change(request, prefs: Profile, email: str) -> None:
    token = secrets.token_urlsafe(32)
    Profile.objects.filter(pk=prefs.pk).update(
        pending_email=email, pending_email_token_hash=_hash(token), pending_email_sent_at=timezone.now()
    )
    link = f"{settings.PORTAL_BASE_URL}{reverse('email_confirm', args=[token])}"
    body = (
        f"Open this link within {EMAIL_LINK_HOURS} hours to use {email} for the integration "
        f"portal's notices to {request.user.get_username()}:\n{link}\n"
    )
    transaction.on_commit(
        lambda: send_email.delay([email], "Confirm your e-mail for the integration portal", body),
        robust=True,  # a broker outage is logged, never a 500 after the address was saved
    )


@login_required
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    prefs = profile_of(request.user)
    fresh = prefs.pending_email_sent_at and (
        timezone.now() - prefs.pending_email_sent_at
    ).total_seconds() < EMAIL_LINK_HOURS * 3600
    if (
        prefs.pending_email
        and fresh
        and secrets.compare_digest(prefs.pending_email_token_hash, _hash(token))
    ):
        get_user_model().objects.filter(pk=request.user.pk).update(email=prefs.pending_email)
        Profile.objects.filter(pk=prefs.pk).update(pending_email="", pending_email_token_hash="")
        messages.success(request, f"{prefs.pending_email} is confirmed; notices go there now.")
    else:
        messages.error(request, "This confirmation link is not valid any more. Save the address again.")
    return redirect("profile")


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@require_POST
@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST)
    if form.is_valid():
        form.save()
        update_session_auth_hash(request, form.user)  # this browser stays signed in
        messages.success(request, "Password changed. Other browsers were signed out.")
        return redirect("profile")
    prefs = profile_of(request.user)
    profile_form = ProfileForm(initial=_profile_initial(request.user, prefs))
    return _render_profile(
        request, prefs=prefs, form=profile_form, password_form=form, status=400
    )


@require_POST
@login_required
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """Every session of this person ends at its next request, this one included."""
    prefs = profile_of(request.user)
    Profile.objects.filter(pk=prefs.pk).update(sessions_valid_after=timezone.now())
    return redirect("login")


# --- TOTP -------------------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=16,
        label="Code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _qr_svg(url: str) -> str:
    return mark_safe(segno.make(url, error="m").svg_inline(scale=4, dark="#1d2330"))  # noqa: S308


def _new_recovery_codes(user) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, name="recovery")
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


@login_required
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol a TOTP app: scan or type the key, prove it with one code, get recovery codes."""
    user = request.user
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        messages.info(request, "Two-factor sign-in is on for your account.")
        return redirect("profile")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].replace(" ", "")):
            TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
            device.confirmed = True
            otp_login(request, device)
            request.session["recovery_codes"] = _new_recovery_codes(user)
            return redirect("otp_recovery")
        form.add_error("code", "That code is not right; check the time on your phone and try again.")
    context = {
        "form": form,
        "secret": base64.b32encode(device.bin_key).decode(),
        "qr": _qr_svg(device.config_url),
        "required": settings.REQUIRE_TOTP_FOR_ADMINS,
    }
    return render(request, "portal/otp_setup.html", context)


@login_required
def otp_recovery(request: HttpRequest) -> HttpResponse:
    """The recovery codes, shown once (new ones on request replace them)."""
    if request.method == "POST" and request.user.is_verified():
        request.session["recovery_codes"] = _new_recovery_codes(request.user)
        return redirect("otp_recovery")
    codes = request.session.pop("recovery_codes", None)
    if not codes:
        return redirect("profile")
    return render(request, "portal/otp_recovery.html", {"codes": codes})


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or reverse("home")
    ok = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if ok else reverse("home")


@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the app, or one recovery code (used up)."""
    if request.user.is_verified():
        return redirect(_safe_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["code"].replace(" ", ""))
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(request, f"Recovery code used; {left} left. Make new ones on your profile.")
            return redirect(_safe_next(request))
        form.add_error("code", "That code is not right (or was used already).")
    return render(request, "portal/otp_verify.html", {"form": form, "next": _safe_next(request)})


@require_POST
@login_required
def otp_disable(request: HttpRequest) -> HttpResponse:
    if settings.REQUIRE_TOTP_FOR_ADMINS:
        from portal.middleware import is_any_admin

        if is_any_admin(request.user):
            messages.error(request, "Admins must keep two-factor sign-in on here.")
            return redirect("profile")
    form = CodeForm(request.POST)
    device = match_token(request.user, form.data.get("code", "").replace(" ", "")) if form.is_valid() else None
    if device is None:
        messages.error(request, "Give a current code to turn two-factor sign-in off.")
        return redirect("profile")
    for d in devices_for_user(request.user, confirmed=None):
        d.delete()
    messages.success(request, "Two-factor sign-in is off.")
    return redirect("profile")


urlpatterns = [
    path("profile/", profile, name="profile"),
    path("profile/email/<str:token>/", email_confirm, name="email_confirm"),
    path("profile/password/", password_change, name="password_change"),
    path("profile/sign-out-everywhere/", sign_out_everywhere, name="sign_out_everywhere"),
    path("profile/2fa/", otp_setup, name="otp_setup"),
    path("profile/2fa/recovery/", otp_recovery, name="otp_recovery"),
    path("profile/2fa/off/", otp_disable, name="otp_disable"),
    path("login/2fa/", otp_verify, name="otp_verify"),
]

"""Sessions: the idle timeout, "sign out everywhere", and the second factor before any page."""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.dispatch import receiver
from django.urls import Resolver404, resolve, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import Membership, Profile

#: the session key holding the time (Unix seconds) of the user's previous request
LAST_SEEN = "portal_last_seen"


class IdleTimeoutMiddleware:
    """Sign the user out when their previous request is longer ago than SESSION_IDLE_SECONDS
    (0 turns the timeout off). Goes after AuthenticationMiddleware (it needs request.user) and
    MessageMiddleware (it says why). Requests with an API key have no signed-in user: untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        idle = settings.SESSION_IDLE_SECONDS
        if idle and request.user.is_authenticated:
            now = int(time.time())
            last_seen = request.session.get(LAST_SEEN)
            if last_seen is not None and now - last_seen > idle:
                # Flushes the session; the view then sees an anonymous user (login_required
                # sends them to the login page, with ?next= back here).
                logout(request)
                messages.info(request, "You were signed out after a period of inactivity.")
            else:
                if last_seen is None:
                    # First request of this sign-in. Storing LAST_SEEN saves the session on
                    # every request, and each save would push its end SESSION_COOKIE_AGE further
                    # out: pin the end now, so SESSION_COOKIE_AGE stays the longest a sign-in lasts.
                    request.session.set_expiry(timedelta(seconds=settings.SESSION_COOKIE_AGE))
                request.session[LAST_SEEN] = now
        return self.get_response(request)


#: the session key holding when (Unix seconds) this sign-in happened
LOGIN_AT = "portal_login_at"


@receiver(user_logged_in)
def _remember_login_time(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[LOGIN_AT] = time.time()


class SignOutEverywhereMiddleware:
    """End a session that began before its person pressed "Sign out everywhere" (their
    profile's sessions_valid_after): every browser they were signed in on, at its next request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            cutoff = (
                Profile.objects.filter(user=request.user)
                .values_list("sessions_valid_after", flat=True)
                .first()
            )
            if cutoff and request.session.get(LOGIN_AT, 0) < cutoff.timestamp():
                logout(request)
                messages.info(request, "You were signed out everywhere; sign in again.")
        return self.get_response(request)


#: pages a signed-in person reaches before the second factor: the code, enrolment, sign-out
SECOND_FACTOR_FREE = {"otp_verify", "otp_setup", "logout"}


class SecondFactorMiddleware:
    """After the password, a person with a TOTP device (or recovery codes) must give a code
    before any page; with REQUIRE_TOTP_FOR_ADMINS, a tenant admin (or superuser) without one
    must enrol first. Needs django_otp's OTPMiddleware before it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not user.is_verified() and not self._free(request):
            target = None
            # One query: recovery codes exist only beside a confirmed TOTP device (enrolment
            # makes them, turning TOTP off deletes both).
            if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                target = "otp_verify"
            elif settings.REQUIRE_TOTP_FOR_ADMINS and is_any_admin(user):
                target = "otp_setup"
            if target:
                return redirect_to_login(request.get_full_path(), login_url=reverse(target))
        return self.get_response(request)

    @staticmethod
    def _free(request) -> bool:
        if request.path.startswith(f"/{settings.STATIC_URL.strip('/')}/"):
            return True
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return True  # a 404 is a 404, signed in or not
        # The emulated providers are another site that happens to share the process.
        return match.view_name in SECOND_FACTOR_FREE or request.path.startswith("/sandbox/")


def is_any_admin(user) -> bool:
    return (
        user.is_superuser
        or user.is_staff  # the Django admin
        or Membership.objects.filter(user=user, role="admin").exists()
    )

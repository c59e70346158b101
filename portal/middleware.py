"""The idle timeout: a signed-in user who made no request for SESSION_IDLE_SECONDS is signed out."""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout

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

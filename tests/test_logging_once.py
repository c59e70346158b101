"""Each log line is printed once: settings.LOGGING on top of Django's DEFAULT_LOGGING, as
runserver and the worker get it.

Django's default configuration puts a console handler (DEBUG only) on the "django" logger;
with root's console handler below it, a 403's "Forbidden" warning and its traceback printed
twice.
"""

import io
import logging
from contextlib import contextmanager, redirect_stderr

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils.log import configure_logging


@contextmanager
def logging_to(stream: io.StringIO):
    """The project's logging configured the way django.setup() does, its console handlers
    writing to `stream` (a StreamHandler takes sys.stderr when it is made)."""
    with redirect_stderr(stream):
        configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)
    try:
        yield
    finally:
        configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "no DEBUG"])
def test_a_403_logs_its_warning_and_traceback_once(settings, login, bob, debug):
    # Django's default console handler printed with DEBUG on (`make run`) only.
    settings.DEBUG = debug
    out = io.StringIO()
    with logging_to(out):
        response = login(bob).get(reverse("members", kwargs={"tenant_slug": "acme"}))
    assert response.status_code == 403
    logged = out.getvalue()
    assert logged.count("Forbidden (Permission denied): /t/acme/members/\n") == 1, logged
    assert logged.count("Traceback (most recent call last)") == 1, logged


def test_every_logger_line_reaches_one_console_handler_once(settings):
    settings.DEBUG = True  # as `make run` (pytest-django turns it off for tests)
    out = io.StringIO()
    with logging_to(out):
        for name in ("django", "django.request", "django.security.csrf", "portal", "celery"):
            logging.getLogger(name).warning("line from %s", name)
    for name in ("django", "django.request", "django.security.csrf", "portal", "celery"):
        assert out.getvalue().count(f"line from {name}\n") == 1, out.getvalue()

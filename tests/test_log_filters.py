"""The OAuth callback's query string (authorization code, state) stays out of the access logs:
runserver's (the django.server logger, through portal.log_filters) and gunicorn's (the
format in portal.gunicorn_conf)."""

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

from django.core.servers.basehttp import WSGIRequestHandler
from gunicorn.config import Config
from gunicorn.glogging import Logger

from portal import gunicorn_conf
from portal.log_filters import DropQueryString

CALLBACK_LINE = "GET /oauth/callback/?code=SECRET-CODE&state=SECRET-STATE HTTP/1.1"


def server_record(*args) -> logging.LogRecord:
    return logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', args, None)


def test_the_filter_drops_the_query_string_of_a_request_line():
    record = server_record(CALLBACK_LINE, "302", "0")
    assert DropQueryString().filter(record) is True  # the line is kept, only shortened
    assert record.getMessage() == '"GET /oauth/callback/ HTTP/1.1" 302 0'


def test_the_filter_leaves_other_lines_and_arguments_alone():
    record = server_record("GET /t/acme/apps/ HTTP/1.1", "200", "5120")
    DropQueryString().filter(record)
    assert record.getMessage() == '"GET /t/acme/apps/ HTTP/1.1" 200 5120'
    bare = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, "Bad request 'GET /x?code=c'", (), None
    )
    DropQueryString().filter(bare)
    assert bare.getMessage() == "Bad request 'GET /x'"
    numbers = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, "code %d, message %s", (400, "/?code=c"), None
    )
    DropQueryString().filter(numbers)
    assert numbers.getMessage() == "code 400, message /"


def test_runserver_logs_the_callback_without_its_query_string():
    """Django's own request handler logging through the configured django.server logger."""
    logger = logging.getLogger("django.server")
    assert any(isinstance(f, DropQueryString) for f in logger.filters)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        handler_stub = SimpleNamespace(request=None, log_date_time_string=lambda: "now")
        WSGIRequestHandler.log_message(handler_stub, '"%s" %s %s', CALLBACK_LINE, "302", "0")
    finally:
        logger.removeHandler(handler)
    logged = out.getvalue()
    assert '"GET /oauth/callback/ HTTP/1.1" 302 0' in logged
    assert "SECRET" not in logged


def test_gunicorn_s_access_log_has_the_path_without_the_query_string():
    assert "%(U)s" in gunicorn_conf.access_log_format
    for atom in ("%(r)s", "%(q)s", "%(f)s"):  # request line, query, referer
        assert atom not in gunicorn_conf.access_log_format
    cfg = Config()
    cfg.set("accesslog", gunicorn_conf.accesslog)
    cfg.set("access_log_format", gunicorn_conf.access_log_format)
    log = Logger(cfg)
    out = io.StringIO()
    log.access_log.handlers = [logging.StreamHandler(out)]
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/oauth/callback/?code=SECRET-CODE&state=SECRET-STATE",
        "PATH_INFO": "/oauth/callback/",
        "QUERY_STRING": "code=SECRET-CODE&state=SECRET-STATE",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": "https://portal.example/oauth/callback/?code=SECRET-CODE",
        "HTTP_USER_AGENT": "browser",
    }
    response = SimpleNamespace(status="302 Found", sent=0, headers=[])
    log.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=12))
    logged = out.getvalue()
    assert '"GET /oauth/callback/ HTTP/1.1" 302' in logged
    assert "SECRET" not in logged


def _report_for(request) -> str:
    """The report an error raised while serving `request` would produce."""
    import sys

    from django.views.debug import get_exception_reporter_class

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
        return reporter.get_traceback_text() + reporter.get_traceback_html()


def test_an_error_report_for_the_callback_carries_no_code_or_state(rf):
    request = rf.get("/oauth/callback/", {"code": "the-auth-code", "state": "the-state"})

    report = _report_for(request)

    assert request.GET["code"] not in report and request.GET["state"] not in report
    assert "/oauth/callback/" in report

"""The development server's request lines without their query string or a webhook URL token.

runserver logs `"GET /oauth/callback/?code=…&state=… HTTP/1.1" 302 0`: the authorization code
and state would sit in the log; and an inbound webhook URL's path is its only credential. (Not named logging.py: a script run from portal/ would import
it in place of the standard library's.)
"""

import logging
import re

# From "?" to the end of the target: the request line is "METHOD TARGET VERSION".
QUERY = re.compile(r"\?[^\s\"']*")


# /webhooks/in/<token>/ (connections.views.webhooks): the token is the URL's secret.
INBOUND_TOKEN = re.compile(r"(/webhooks/in/)[^/\s\"'?]+")


def without_query(text: str) -> str:
    return INBOUND_TOKEN.sub(r"\1…", QUERY.sub("", text))


class DropQueryString(logging.Filter):
    """For the django.server logger (settings.LOGGING): every string argument of the record
    (the request line, an error's message quoting it) loses its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(without_query(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = without_query(record.msg)
        return True

"""gunicorn settings: `gunicorn portal.wsgi -c python:portal.gunicorn_conf` (README).

The access log has the path without its query string (%(U)s, not the request line %(r)s) and
no referer (%(f)s): the OAuth callback's query carries the authorization code and state. An
inbound webhook URL's token is cut from the path (PathWithoutSecrets).
"""

from gunicorn.glogging import Logger

from portal.log_filters import without_query


class PathWithoutSecrets(Logger):
    """%(U)s without an inbound webhook URL's token (the path is that URL's credential)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = without_query(atoms.get("U", ""))
        return atoms


logger_class = PathWithoutSecrets
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'

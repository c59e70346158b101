"""gunicorn settings: `gunicorn portal.wsgi -c python:portal.gunicorn_conf` (README).

The access log has the path without its query string (%(U)s, not the request line %(r)s) and
no referer (%(f)s): the OAuth callback's query carries the authorization code and state.
"""

accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'

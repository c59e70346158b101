"""Error reports (the e-mails to ADMINS, the DEBUG page) without query strings.

The OAuth callback's query string carries an authorization code and the state; Django's
report prints GET parameters, the request URL and QUERY_STRING as they came. Here none of
them: a query string on any page is shown as cleansed.
"""

from django.http import HttpRequest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

QUERY_META = ("QUERY_STRING", "REQUEST_URI", "RAW_URI")


class QueryCleansingFilter(SafeExceptionReporterFilter):
    def get_traceback_frame_variables(self, request, tb_frame):
        # A request's repr carries its full path, query string included.
        return [
            (name, f"<{type(value).__name__}: {value.method} {value.path!r}>")
            if isinstance(value, HttpRequest)
            else (name, value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        for key in QUERY_META:
            if meta.get(key):
                meta[key] = self.cleansed_substitute
        return meta


class QueryCleansingReporter(ExceptionReporter):
    def _get_raw_insecure_uri(self):
        return super()._get_raw_insecure_uri().split("?", 1)[0]

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if "request_GET_items" in data:
            cleansed = self.filter.cleansed_substitute
            data["request_GET_items"] = [(key, cleansed) for key in self.request.GET]
        return data

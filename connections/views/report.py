"""The token expiry report: needs attention, counts, charts and the filtered table; the same
table as CSV (streamed) and JSON. Ops and admins see the tenant, members their own."""

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from connections import charts, exports, reports
from connections.listing import connection_table
from connections.views.connections import visible_connections
from portal.tenancy import any_member

FORMATS = ("html", "csv", "json")


def _bad_filters(form) -> JsonResponse:
    return JsonResponse(
        {
            "error": "invalid_filter",
            "message": "Some filters are not valid.",
            "fields": {name: [str(e) for e in errs] for name, errs in form.errors.items()},
        },
        status=400,
    )


@any_member
def expiry_report(request: HttpRequest) -> HttpResponse:
    fmt = request.GET.get("format", "html")
    if fmt not in FORMATS:
        return JsonResponse(
            {"error": "invalid_format", "message": f"format is one of {', '.join(FORMATS)}."},
            status=400,
        )
    now = timezone.now()
    visible = visible_connections(request)
    counts = reports.summary(visible, tenant=request.tenant, now=now) if fmt != "csv" else None
    table = connection_table(
        visible,
        request.GET,
        tenant=request.tenant,
        membership=request.membership,
        default_sort="refresh_expires",
        now=now,
        known_total=counts.total if counts else None,
    )
    if fmt != "html" and not table.form.is_valid():
        return _bad_filters(table.form)
    if fmt == "csv":
        response = StreamingHttpResponse(exports.csv_lines(table.filtered), content_type="text/csv")
        stamp = timezone.localtime(now).strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = (
            f'attachment; filename="{request.tenant.slug}-connections-{stamp}.csv"'
        )
        return response
    if fmt == "json":
        return _json(request, table, counts, now)
    context = {
        "table": table,
        "summary": counts,
        "attention": reports.attention(
            visible, tenant=request.tenant, counts=counts.attention, now=now
        ),
        "expiry_chart": charts.expiry_chart(reports.expiries_per_day(visible, now=now)),
        # tenant-wide figures: not for members, whose report is their own connections
        "activity_chart": None
        if not request.membership.sees_all_connections
        else charts.activity_chart(reports.activity_per_hour(tenant=request.tenant, now=now)),
        "now": now,
    }
    return render(request, "connections/report/report.html", context)


def _json(request, table, counts, now) -> JsonResponse:
    page = table.page
    rows = []
    if page.paginator.count:  # an empty page's start_index() is 0: no window to slice
        window = table.filtered[page.start_index() - 1 : page.end_index()]
        rows = [exports.json_row(row) for row in exports.records(window)]
    body = {
        "generated_at": now.isoformat(),
        "tenant": request.tenant.slug,
        "summary": {
            "total": counts.total,
            "by_status": counts.by_status,
            "by_provider": {key: n for key, _, n in counts.by_provider},
            "by_app": {str(pk): {"name": name, "count": n} for pk, name, _, n in counts.by_app},
            "needs_attention": counts.attention,
            "paused": counts.paused,
        },
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
        "next": request.build_absolute_uri(table.link(format="json", page=page.number + 1))
        if page.has_next()
        else None,
        "connections": rows,
    }
    return JsonResponse(body, headers={"Cache-Control": "no-store"})


urlpatterns = [path("report/", expiry_report, name="expiry_report")]

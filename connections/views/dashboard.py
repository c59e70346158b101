"""The tenant's front page: its apps and the connections the person sees, counted by status."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from connections.selectors import dashboard_summary
from portal.tenancy import any_member


@any_member
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/dashboard.html", dashboard_summary(request.membership))


urlpatterns = [path("", dashboard, name="dashboard")]

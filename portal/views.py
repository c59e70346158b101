from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from portal.tenancy import membership_in_tenant


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links: point them at the SVG."""
    return redirect(static("portal/favicon.svg"), permanent=True)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to their tenant, or let them pick one when they have several.

    The tenant switcher in the header posts `tenant` (a slug) here: a plain form, so switching
    works without JavaScript. A tenant the user is not a member of is a 404, as everywhere.
    """
    if request.method == "POST":
        membership = membership_in_tenant(user=request.user, slug=request.POST.get("tenant", ""))
        return redirect("dashboard", tenant_slug=membership.tenant.slug)
    memberships = list(request.user.memberships.select_related("tenant"))
    if len(memberships) == 1:
        return redirect("dashboard", tenant_slug=memberships[0].tenant.slug)
    return render(request, "portal/tenant_picker.html", {"memberships": memberships})

"""The one scoping path for tenant-owned objects.

Every view that works inside a tenant is wrapped by `tenant_view`, which loads the tenant from
the URL only through the user's own membership (another tenant is a 404, never a 403), and
checks the role for views that change something. Objects are loaded with `get_in_tenant`.
"""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404

from portal.models import Invitation, Membership, Tenant

M = TypeVar("M", bound=models.Model)


def membership_in_tenant(*, user, slug: str) -> Membership:
    try:
        return Membership.objects.select_related("tenant").get(user=user, tenant__slug=slug)
    except Membership.DoesNotExist:
        raise Http404("No such tenant.") from None


def get_in_tenant(model_or_qs: type[M] | models.QuerySet, *, tenant: Tenant, **lookup) -> M:
    """Look an object up inside `tenant`; missing and foreign answer the same 404."""
    qs = model_or_qs if isinstance(model_or_qs, models.QuerySet) else model_or_qs._default_manager
    return get_object_or_404(qs.filter(tenant=tenant), **lookup)


def tenant_view(*, may: str = "") -> Callable:
    """Resolve `tenant_slug` into request.tenant / request.membership; `may` names the
    Membership predicate the person's role must satisfy (is_admin, can_change_connections)."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, tenant_slug: str, *args, **kwargs):
            membership = membership_in_tenant(user=request.user, slug=tenant_slug)
            if may and not getattr(membership, may):
                raise PermissionDenied("Your role in this tenant does not allow this.")
            request.membership = membership
            request.tenant = membership.tenant
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def object_view(getter: Callable, *, methods: Iterable[str] = ("GET",), by: str = "tenant"):
    """For a view of one object, the `pk` in its URL, below a tenant_view: the object comes
    from `getter(request.<by>, pk, **other URL ids)` first (another tenant's is a 404), then
    the method is checked (405), then the view runs with the object. One order for every
    object URL: tenant, object, method; so nothing tells a foreign id apart from a missing
    one."""
    allowed = list(methods)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, pk: int, **ids):
            obj = getter(getattr(request, by), pk, **ids)
            if request.method not in allowed:
                return HttpResponseNotAllowed(allowed)
            return view(request, obj)

        return wrapper

    return decorator


admin_only = tenant_view(may="is_admin")
connection_changers = tenant_view(may="can_change_connections")
any_member = tenant_view()


def member_in_tenant(tenant: Tenant, pk: int) -> Membership:
    return get_in_tenant(Membership.objects.select_related("user", "tenant"), tenant=tenant, pk=pk)


def invitation_in_tenant(tenant: Tenant, pk: int) -> Invitation:
    return get_in_tenant(Invitation.objects.select_related("tenant"), tenant=tenant, pk=pk)

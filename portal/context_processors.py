def tenancy(request):
    """The current tenant and the user's other tenants, for the navigation and switcher."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "user_memberships": user.memberships.select_related("tenant"),
    }

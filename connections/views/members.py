"""The Members page (tenant admins): invite by e-mail, change roles, remove people, withdraw
pending invitations. Everything else about people is in connections.people."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone

from connections import people
from portal.models import Invitation, Membership
from portal.tenancy import admin_only, invitation_in_tenant, member_in_tenant, object_view

Role = Membership.Role


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def _to_members(request: HttpRequest) -> HttpResponse:
    return redirect("members", tenant_slug=request.tenant.slug)


@admin_only
def members(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = people.invitation_create(
                tenant=request.tenant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        except people.PeopleError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(
                request,
                f"Invitation sent to {issued.invitation.email}; the link works once, for "
                f"{Invitation.LIFETIME_DAYS} days.",
            )
            return _to_members(request)
    context = {
        "form": form,
        "memberships": request.tenant.memberships.select_related("user").order_by("user__username"),
        "pending": request.tenant.invitations.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).select_related("invited_by"),
        "roles": Role.choices,
    }
    return render(
        request, "connections/members/list.html", context, status=400 if form.errors else 200
    )


@admin_only
@object_view(member_in_tenant, methods=["POST"])
def member_role(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: admin, member or ops.")
        return _to_members(request)
    try:
        people.role_change(
            membership=membership, role=form.cleaned_data["role"], actor=request.user
        )
    except people.PeopleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{membership.user.get_username()} is now {Role(form.cleaned_data['role']).label}.",
        )
    return _to_members(request)


@admin_only
@object_view(member_in_tenant, methods=["POST"])
def member_remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        people.member_remove(membership=membership, actor=request.user)
    except people.PeopleError as exc:
        messages.error(request, str(exc))
        return _to_members(request)
    messages.success(request, f"{membership.user.get_username()} no longer has access.")
    if membership.user_id == request.user.pk:
        return redirect("home")
    return _to_members(request)


@admin_only
@object_view(invitation_in_tenant, methods=["POST"])
def invitation_revoke(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    try:
        people.invitation_revoke(invitation=invitation, actor=request.user)
    except people.PeopleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The invitation of {invitation.email} no longer works.")
    return _to_members(request)


urlpatterns = [
    path("members/", members, name="members"),
    path("members/<int:pk>/role/", member_role, name="member_role"),
    path("members/<int:pk>/remove/", member_remove, name="member_remove"),
    path("invitations/<int:pk>/revoke/", invitation_revoke, name="invitation_revoke"),
]

"""People in a tenant: invitations, roles, removal. Every change is an audit event with the
person who made it; e-mails leave after commit, from a task.

The last admin of a tenant can be neither demoted nor removed: the check and the write run
in one transaction that locks the tenant's admin memberships, so two admins demoting each
other at once cannot leave the tenant without one.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from connections import audit
from connections.models import AuditEvent, sha256_hex
from portal.models import Invitation, Membership, Tenant
from portal.tasks import send_email

Kind = AuditEvent.Kind
Role = Membership.Role


class PeopleError(Exception):
    """A change that would break a rule; the message says which, for the person."""


def invitation_url(token: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{reverse('invitation_accept', args=[token])}"


@dataclass
class Issued:
    invitation: Invitation
    token: str

    @property
    def url(self) -> str:
        return invitation_url(self.token)


def invitation_create(*, tenant: Tenant, email: str, role: str, actor, send: bool = True) -> Issued:
    """A new invitation; the e-mail with its link is queued on commit (send=False: the caller
    hands the link over itself, as the operator command does)."""
    email = email.strip().lower()
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise PeopleError(f"{email} is already a member of {tenant.name}.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # A new invitation to the same address replaces the pending one.
        Invitation.objects.filter(
            tenant=tenant, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            tenant=tenant,
            email=email,
            role=role,
            token_hash=sha256_hex(token),
            invited_by=actor if getattr(actor, "is_authenticated", False) else None,
            expires_at=now + timedelta(days=Invitation.LIFETIME_DAYS),
        )
        audit.record(
            Kind.MEMBER_INVITED,
            tenant=tenant,
            actor=actor,
            message=f"{email} invited as {Role(role).label}.",
            email=email,
            role=role,
        )
        if send:
            issued = Issued(invitation, token)
            # robust: a broker outage is logged, never a 500 after the invitation was saved
            transaction.on_commit(lambda: _send_invitation(issued), robust=True)
    return Issued(invitation, token)


def _send_invitation(issued: Issued) -> None:
    inv = issued.invitation
    by = inv.invited_by.get_username() if inv.invited_by else "An administrator"
    send_email.delay(
        [inv.email],
        f"You are invited to {inv.tenant.name} on the integration portal",
        f"{by} invited you to {inv.tenant.name} as {Role(inv.role).label}.\n\n"
        f"Accept within {Invitation.LIFETIME_DAYS} days (the link works once):\n{issued.url}\n",
    )


def invitation_revoke(*, invitation: Invitation, actor) -> None:
    with transaction.atomic():
        revoked = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not revoked:
            raise PeopleError("This invitation was already accepted or revoked.")
        audit.record(
            Kind.INVITATION_REVOKED,
            tenant=invitation.tenant,
            actor=actor,
            message=f"Invitation of {invitation.email} revoked.",
            email=invitation.email,
        )


def invitation_by_token(token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(token_hash=sha256_hex(token))
        .first()
    )


def invitation_problem(invitation: Invitation | None) -> str:
    """Why the link cannot be used, or "" when it can."""
    if invitation is None:
        return "This invitation link is not valid. Ask an admin of your tenant for a new one."
    if invitation.accepted_at:
        return "This invitation has already been used. Sign in instead."
    if invitation.revoked_at:
        return "This invitation was withdrawn. Ask an admin of your tenant for a new one."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired. Ask an admin of your tenant for a new one."
    return ""


def email_matches(invitation: Invitation, user) -> bool:
    return bool(user.email) and user.email.strip().lower() == invitation.email.lower()


def invitation_accept(*, invitation: Invitation, user) -> Membership:
    """Use the invitation, once, for `user` (whose e-mail must be the invited one)."""
    if not email_matches(invitation, user):
        raise PeopleError(
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{user.get_username()}. Sign out and open the link again."
        )
    if Membership.objects.filter(user=user, tenant=invitation.tenant).exists():
        # A role changes on the Members page, under the last-admin rule, never by a link.
        raise PeopleError(
            f"You are already a member of {invitation.tenant.name}; an admin changes roles on "
            "the Members page."
        )
    with transaction.atomic():
        used = Invitation.objects.filter(
            pk=invitation.pk,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        ).update(accepted_at=timezone.now(), accepted_by=user)
        if not used:
            raise PeopleError(invitation_problem(_reloaded(invitation)))
        membership = Membership.objects.create(
            user=user, tenant=invitation.tenant, role=invitation.role
        )
        audit.record(
            Kind.MEMBER_JOINED,
            tenant=invitation.tenant,
            actor=user,
            message=f"{user.get_username()} joined as {Role(membership.role).label}.",
            role=membership.role,
        )
    return membership


def _reloaded(invitation: Invitation) -> Invitation | None:
    return Invitation.objects.filter(pk=invitation.pk).first()


def account_create(*, invitation: Invitation, username: str, password: str, name: str = ""):
    """A new person from an invitation: the e-mail is the invited one, confirmed by the link."""
    first, _, last = name.strip().partition(" ")
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=username,
                email=invitation.email,
                password=password,
                first_name=first[:150],
                last_name=last[:150],
            )
            invitation_accept(invitation=invitation, user=user)
    except IntegrityError:
        raise PeopleError("That username is taken; choose another.") from None
    return user


def _admins_locked(tenant: Tenant) -> list[int]:
    return list(
        Membership.objects.select_for_update()
        .filter(tenant=tenant, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )


def role_change(*, membership: Membership, role: str, actor) -> None:
    with transaction.atomic():
        admins = _admins_locked(membership.tenant)
        if membership.role == Role.ADMIN and role != Role.ADMIN and admins == [membership.pk]:
            raise PeopleError("This is the tenant's last admin: make someone else admin first.")
        if role != membership.role:
            Membership.objects.filter(pk=membership.pk).update(role=role)
            audit.record(
                Kind.ROLE_CHANGED,
                tenant=membership.tenant,
                actor=actor,
                message=f"{membership.user.get_username()}: {Role(membership.role).label} → "
                f"{Role(role).label}.",
                user=membership.user.get_username(),
                role=role,
            )


def member_remove(*, membership: Membership, actor) -> None:
    with transaction.atomic():
        admins = _admins_locked(membership.tenant)
        if membership.role == Role.ADMIN and admins == [membership.pk]:
            raise PeopleError("This is the tenant's last admin and cannot be removed.")
        Membership.objects.filter(pk=membership.pk).delete()
        audit.record(
            Kind.MEMBER_REMOVED,
            tenant=membership.tenant,
            actor=actor,
            message=f"{membership.user.get_username()} removed from the tenant.",
            user=membership.user.get_username(),
        )

from django.conf import settings
from django.db import models


class Tenant(models.Model):
    """A company using the portal; every product object belongs to exactly one."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        OPS = "ops", "Ops"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_tenant")
        ]
        ordering = ["tenant__name"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    # What each role may do, asked by views and templates alike (portal.tenancy checks roles
    # on the way in): admins register apps and manage people, members connect their own
    # accounts, ops read the whole tenant and change nothing.

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def sees_all_connections(self) -> bool:
        """Admins and ops see every connection of the tenant; members their own."""
        return self.role != self.Role.MEMBER

    @property
    def can_change_connections(self) -> bool:
        """Connect, test, refresh, reconnect, disconnect: not ops."""
        return self.role != self.Role.OPS

    @property
    def reads_audit(self) -> bool:
        return self.role != self.Role.MEMBER


class Heartbeat(models.Model):
    """Last time a periodic job ran; the health check reads it to tell beat and workers live."""

    name = models.CharField(max_length=60, unique=True)
    beat_at = models.DateTimeField()
    count = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class Invitation(models.Model):
    """A single-use link that makes someone a member of a tenant: sent by e-mail, valid for
    LIFETIME, accepted once (by a new person who sets a password, or by an existing account
    with the same e-mail), revocable until then. Only the token's hash is stored."""

    LIFETIME_DAYS = 7

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} as {self.role}"


class Profile(models.Model):
    """What a person sets for themselves: notices they want, and an e-mail change waiting for
    its confirmation link (the address is used for notices only once confirmed)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    pending_email = models.EmailField(blank=True)
    pending_email_token_hash = models.CharField(max_length=64, blank=True)
    pending_email_sent_at = models.DateTimeField(null=True, blank=True)
    #: admins and ops: e-mail me when any connection of my tenants needs re-authorisation or
    #: an app's credentials are rejected (owners are always told about their own)
    notify_reauth = models.BooleanField(default=True)
    #: admins and ops: the weekly digest of refresh tokens ending soon
    notify_digest = models.BooleanField(default=True)
    #: "sign out everywhere": sessions signed in before this are ended at their next request
    sessions_valid_after = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

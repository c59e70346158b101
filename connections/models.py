"""Private apps, their secrets, connections and the audit trail.

Tokens are written only by connections.lifecycle; secrets only by connections.services.
"""

import hashlib
import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from connections.providers import (
    PROVIDER_CHOICES,
    ClientAuth,
    Grant,
    PkceMode,
    RateLimit,
    SignatureEncoding,
    get_provider,
)
from portal.fields import EncryptedTextField
from portal.models import Tenant


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# An HTTP field name (RFC 9110 §5.1: a token), so a typo cannot name a header no request has.
header_name = RegexValidator(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", "Not a valid HTTP header name.")


def default_listener_events() -> list[str]:
    from connections.webhook_events import DEFAULT_EVENTS

    return list(DEFAULT_EVENTS)


def new_webhook_token() -> tuple[str, str]:
    """A fresh inbound-URL token and the hash it is looked up by."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


class TenantQuerySet(models.QuerySet):
    def in_tenant(self, tenant: Tenant):
        return self.filter(tenant=tenant)


class PrivateApp(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ENABLED = "enabled", "Enabled"
        DISABLED = "disabled", "Disabled"

    class RefreshPolicy(models.TextChoices):
        WARM = "warm", "Keep the access token warm"
        ON_DEMAND = "on_demand", "Refresh on demand"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=120)
    provider = models.CharField(max_length=40, choices=PROVIDER_CHOICES)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    grant_type = models.CharField(max_length=30, choices=Grant.choices)
    client_id = models.CharField(max_length=255)
    client_auth = models.CharField(
        max_length=10, choices=ClientAuth.choices, default=ClientAuth.FORM
    )
    pkce_mode = models.CharField(max_length=12, choices=PkceMode.choices, default=PkceMode.SECRET)
    account_ids = models.JSONField(default=list, blank=True)
    redirect_uris = models.JSONField(default=list, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    connector_uids = models.JSONField(default=list, blank=True)
    scope_separator = models.CharField(max_length=3, blank=True, help_text="Generic only.")
    internal_comments = models.TextField(blank=True)
    application_url = models.URLField(blank=True)
    # Overrides of the catalogue's endpoints: the generic provider, custom domains, the sandbox.
    authorize_url = models.URLField(blank=True)
    token_url = models.URLField(blank=True)
    revoke_url = models.URLField(blank=True)
    api_base_url = models.URLField(blank=True)
    test_path = models.CharField(max_length=255, blank=True)
    issuer = models.CharField(max_length=255, blank=True)
    refresh_policy = models.CharField(
        max_length=10, choices=RefreshPolicy.choices, default=RefreshPolicy.WARM
    )
    #: token-endpoint rate limit per client id; blank takes the catalogue's
    token_rate_limit = models.PositiveIntegerField(null=True, blank=True)
    token_rate_window = models.PositiveIntegerField(null=True, blank=True, help_text="seconds")
    # Service-account credentials (Manhattan Active password grant, Manitou subscription keys).
    service_username = EncryptedTextField(null=True, blank=True)
    service_password = EncryptedTextField(null=True, blank=True)
    subscription_key_primary = EncryptedTextField(null=True, blank=True)
    subscription_key_secondary = EncryptedTextField(null=True, blank=True)
    #: set when the provider answered invalid_client: the credentials need fixing
    credentials_invalid_at = models.DateTimeField(null=True, blank=True)
    # The inbound webhook URL's token: looked up by its hash; kept encrypted so the app page
    # can show the URL to admins again.
    webhook_token = EncryptedTextField(null=True, blank=True, editable=False)
    webhook_token_hash = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    # How the generic provider signs its webhooks; catalogue providers take the catalogue's.
    webhook_signature_header = models.CharField(
        max_length=100, blank=True, validators=[header_name]
    )
    #: blank reads as hex: the form need not insist on a field most apps never use
    webhook_signature_encoding = models.CharField(
        max_length=10, choices=SignatureEncoding.choices, default=SignatureEncoding.HEX, blank=True
    )
    webhook_timestamp_header = models.CharField(
        max_length=100, blank=True, validators=[header_name]
    )
    webhook_id_header = models.CharField(max_length=100, blank=True, validators=[header_name])
    # Outbound: the tenant's own listener, which hears relayed provider webhooks and the
    # portal's events about this app's connections (connections.webhooks_outbound).
    listener_url = models.URLField(max_length=500, blank=True)
    #: relay a provider's webhook while its request waits, and answer with the listener's status
    listener_sync = models.BooleanField(default=False)
    #: the event types sent to the listener (connections.webhook_events.EventType values)
    listener_events = models.JSONField(default=default_listener_events, blank=True)
    #: "refresh token lapsing" is sent this many days before the refresh token expires
    lapse_warning_days = models.PositiveSmallIntegerField(default=7)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="app_name_unique_in_tenant")
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Every app gets its inbound URL when it is created, however it is created.
        if self._state.adding and not self.webhook_token_hash:
            self.webhook_token, self.webhook_token_hash = new_webhook_token()
        super().save(*args, **kwargs)

    @property
    def catalogue(self):
        return get_provider(self.provider)

    @property
    def is_enabled(self) -> bool:
        return self.status == self.Status.ENABLED

    @property
    def connects_in_browser(self) -> bool:
        """The authorization code grant: people click Connect; otherwise a service account."""
        return self.grant_type == Grant.AUTHORIZATION_CODE

    @property
    def signs_in_as_service_user(self) -> bool:
        return self.grant_type == Grant.PASSWORD

    def endpoint(self, name: str) -> str:
        """An endpoint URL: the app's override, else the catalogue's."""
        return getattr(self, name) or getattr(self.catalogue, name)

    @property
    def separator(self) -> str:
        return self.scope_separator or self.catalogue.scope_separator

    def rate_limit(self) -> RateLimit | None:
        if self.token_rate_limit and self.token_rate_window:
            return RateLimit(self.token_rate_limit, self.token_rate_window)
        return self.catalogue.token_rate_limit

    def rejected_primary(self) -> "ClientSecret | None":
        """The primary secret, when the provider refused it and accepted another."""
        return self.client_secrets.filter(
            revoked_at__isnull=True, is_primary=True, rejected_at__isnull=False
        ).first()

    def active_secrets(self):
        return ClientSecret.active_of(self)


class ClientSecret(models.Model):
    app = models.ForeignKey(PrivateApp, on_delete=models.CASCADE, related_name="client_secrets")
    label = models.CharField(max_length=80, blank=True)
    value = EncryptedTextField()
    last_four = models.CharField(max_length=4)
    #: Manu Online verifies webhooks with the first secret only (seed 000)
    is_primary = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    #: when the provider last refused this secret while a later one was accepted (cleared
    #: when it is accepted again): a primary that stopped working is shown, not hidden
    rejected_at = models.DateTimeField(null=True, blank=True)

    #: The shortest client secret accepted; only a secret at least this long shows its tail,
    #: so at most four characters of any secret are ever shown.
    MIN_LENGTH = 16

    class Meta:
        ordering = ["-is_primary", "created_at"]

    def __str__(self) -> str:
        return self.masked

    @staticmethod
    def active_of(app) -> models.QuerySet:
        """An app's secrets to try in order: the primary first, then the newest others
        (`app` an app, or an expression standing for its id)."""
        return ClientSecret.objects.filter(app=app, revoked_at__isnull=True).order_by(
            "-is_primary", "-created_at"
        )

    @property
    def masked(self) -> str:
        # Secrets stored before the minimum length existed may be short: no tail for those.
        long_enough = len(self.value or "") >= self.MIN_LENGTH
        return f"••••{self.last_four}" if long_enough else "••••"


class ConnectionQuerySet(TenantQuerySet):
    def visible_to(self, membership):
        """The tenant's connections this person may read: all, or a member's own."""
        mine = self.in_tenant(membership.tenant)
        return mine if membership.sees_all_connections else mine.filter(user=membership.user_id)

    def refreshable(self):
        return self.filter(status__in=Connection.REFRESHABLE)

    def paused(self):
        """Refreshable, but the app is disabled (Connection.paused_reason)."""
        return self.refreshable().filter(app__status=PrivateApp.Status.DISABLED)

    def due(self, now):
        """Refreshable, of an app that is not disabled, and its next refresh has come."""
        return (
            self.refreshable()
            .filter(next_refresh_at__lte=now)
            .exclude(app__status=PrivateApp.Status.DISABLED)
        )


class Connection(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
        FAILING = "failing", "Failing (retrying)"
        REVOKED = "revoked", "Revoked"

    class Kind(models.TextChoices):
        USER = "user", "User"
        SERVICE = "service", "Service account"

    #: the statuses the engine refreshes (and in which a token can be handed out)
    REFRESHABLE = (Status.ACTIVE, Status.FAILING)
    #: not a stored status: a refreshable connection of a disabled app (paused_reason)
    PAUSED = "paused"
    SHOWN_STATUSES = (*Status.choices, (PAUSED, "Paused (app disabled)"))

    # Every index is written on each refresh (two UPDATEs, neither HOT): a column gets one
    # only where no composite index below leads with it (tenant: conn_tenant_id_idx; app:
    # conn_app_access_idx; status: conn_due_idx). Seven fewer cut the database's CPU per
    # refresh by a seventh.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="connections", db_index=False
    )
    #: PROTECT: an app with connections cannot be deleted
    app = models.ForeignKey(
        PrivateApp, on_delete=models.PROTECT, related_name="connections", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="connections",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.USER)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.ACTIVE)
    account_id = models.CharField(max_length=255, blank=True)
    account_name = models.CharField(max_length=255, blank=True)
    access_token = EncryptedTextField(null=True, blank=True)
    refresh_token = EncryptedTextField(null=True, blank=True)
    #: sha256 of the stored refresh token, to tell a lost race from a dead token
    refresh_token_hash = models.CharField(max_length=64, blank=True)
    token_type = models.CharField(max_length=20, default="Bearer")
    scope = models.TextField(blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    next_refresh_at = models.DateTimeField(null=True, blank=True)
    #: set after a disconnect the provider did not confirm: the tokens it still has to revoke
    #: are kept (encrypted, never handed out: the connection is revoked) until it does
    revoke_retry_at = models.DateTimeField(null=True, blank=True)
    #: set by the beat picker when it enqueues a refresh, so a queued task is not queued again
    refresh_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The refresh lease (compare-and-set; see lifecycle).
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    #: sha256 of the refresh token sent in the refresh under way
    inflight_refresh_hash = models.CharField(max_length=64, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_refresh_at"], name="conn_due_idx"),
            # The beat's due scan (lifecycle.schedule): rows neither queued nor leased, in
            # due order; a backlog of queued rows is not in it, so it cannot slow the scan.
            models.Index(
                fields=["next_refresh_at"],
                condition=models.Q(
                    refresh_enqueued_at__isnull=True,
                    lease_owner="",
                    status__in=["active", "failing"],
                ),
                name="conn_unqueued_due_idx",
            ),
            # ... and the claims that were lost (queued too long, or a lapsed lease).
            models.Index(
                fields=["refresh_enqueued_at"],
                condition=models.Q(refresh_enqueued_at__isnull=False),
                name="conn_queued_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=~models.Q(lease_owner=""),
                name="conn_leased_idx",
            ),
            # Disconnects still to confirm: few rows, so the rest are left out of it.
            models.Index(
                fields=["revoke_retry_at"],
                condition=models.Q(revoke_retry_at__isnull=False),
                name="conn_revoke_retry_idx",
            ),
            # The report and the Connections list filter by tenant and sort by these, at
            # 100,000 rows a tenant (connections/listing.py): each sort is an index scan in
            # the index's order (the id breaks ties), and the report's counts read only
            # indexes (INCLUDE is PostgreSQL's; other databases ignore it).
            models.Index(fields=["tenant", "id"], name="conn_tenant_id_idx"),
            models.Index(fields=["tenant", "status", "app"], name="conn_tenant_status_idx"),
            models.Index(
                fields=["tenant", "refresh_expires_at", "id"],
                include=["status"],
                name="conn_tenant_refresh_idx",
            ),
            models.Index(
                fields=["tenant", "access_expires_at", "id"],
                include=["status"],
                name="conn_tenant_access_idx",
            ),
            models.Index(fields=["tenant", "next_refresh_at", "id"], name="conn_tenant_next_idx"),
            # "Not kept warm": the expired access tokens of the apps that keep them warm.
            models.Index(
                fields=["app", "access_expires_at"],
                include=["status", "tenant"],
                name="conn_app_access_idx",
            ),
            models.Index(fields=["tenant", "last_refreshed_at", "id"], name="conn_tenant_last_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.app} · {self.account_name or self.account_id or self.pk}"

    @property
    def paused_reason(self) -> str:
        """Why a live connection is paused, or "": its app is disabled, so the portal neither
        refreshes it nor hands out its token (the token API answers app_disabled)."""
        if not self.is_refreshable or self.app.status != PrivateApp.Status.DISABLED:
            return ""
        return (
            f"The app {self.app.name} is disabled: the portal does not refresh this connection "
            "or hand out its token until an admin enables the app again."
        )

    #: the most an access token is treated as expiring early, to cover clock skew and the
    #: time a caller takes to use it
    ACCESS_MARGIN = timezone.timedelta(seconds=30)

    def access_margin(self) -> timezone.timedelta:
        """The smaller of 30 s and a quarter of the token's lifetime: a provider's 20-second
        token is still usable for 15 s, instead of never."""
        if self.access_expires_at is None or self.last_refreshed_at is None:
            return self.ACCESS_MARGIN
        lifetime = self.access_expires_at - self.last_refreshed_at
        return max(timezone.timedelta(0), min(self.ACCESS_MARGIN, lifetime / 4))

    @property
    def is_refreshable(self) -> bool:
        return self.status in self.REFRESHABLE

    def is_due(self, now) -> bool:
        return self.next_refresh_at is not None and self.next_refresh_at <= now

    def access_token_live(self) -> bool:
        """A token services can still use right now (not expired), in a refreshable state."""
        if not self.access_token or not self.is_refreshable:
            return False
        return self.access_expires_at is None or self.access_expires_at > timezone.now()

    def access_token_valid(self) -> bool:
        """Live, and not within the margin of its expiry: no refresh needed yet."""
        if not self.access_token_live():
            return False
        if self.access_expires_at is None:
            return True
        return self.access_expires_at > timezone.now() + self.access_margin()


class AuthorizationAttempt(models.Model):
    """One server-side record per trip to the provider: single-use, expires in 10 minutes."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    app = models.ForeignKey(PrivateApp, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    #: set when reconnecting, so the connection keeps its id
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    state_hash = models.CharField(max_length=64, unique=True)
    pkce_verifier = EncryptedTextField(null=True, blank=True)
    redirect_uri = models.CharField(max_length=500)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"attempt for {self.app} by {self.user} at {self.created_at:%Y-%m-%d %H:%M}"


class RateLimitWindow(models.Model):
    """The DB fallback of the token-endpoint limiter (Redis holds it when configured)."""

    key = models.CharField(max_length=200, unique=True)
    stamps = models.JSONField(default=list)

    def __str__(self) -> str:
        return self.key


class AuditEvent(models.Model):
    class Kind(models.TextChoices):
        APP_CREATED = "app_created", "App created"
        APP_UPDATED = "app_updated", "App updated"
        APP_STATUS = "app_status", "App status changed"
        APP_DELETED = "app_deleted", "App deleted"
        APP_CREDENTIALS_INVALID = "app_credentials_invalid", "App credentials rejected"
        SECRET_ADDED = "secret_added", "Secret added"
        SECRET_PRIMARY = "secret_primary", "Secret made primary"
        SECRET_REVOKED = "secret_revoked", "Secret revoked"
        SECRET_REJECTED = "secret_rejected", "Secret refused by the provider"
        CONNECTION_DELETED = "connection_deleted", "Connection deleted"
        SCOPES_WIDENED = "scopes_widened", "Scopes widened"
        AUTHORIZED = "authorized", "Authorised"
        AUTHORIZE_FAILED = "authorize_failed", "Authorisation failed"
        REFRESHED = "refreshed", "Refreshed"
        REFRESH_FAILED = "refresh_failed", "Refresh failed"
        REAUTH_NEEDED = "reauth_needed", "Re-authorisation needed"
        REVOKED = "revoked", "Revoked"
        REVOKE_FAILED = "revoke_failed", "Revocation not confirmed"
        GRANT_REPLACED = "grant_replaced", "Replaced grant revoked"
        TOKENS_ORPHANED = "tokens_orphaned", "Late answer not stored"
        TOKENS_SPOOLED = "tokens_spooled", "Tokens kept through a database outage"
        SHORT_LIVED_TOKEN = "short_lived_token", "Provider sent a short-lived token"
        TESTED = "tested", "Tested"
        API_KEY_CREATED = "api_key_created", "API key created"
        API_KEY_REVOKED = "api_key_revoked", "API key revoked"
        MEMBER_INVITED = "member_invited", "Person invited"
        INVITATION_REVOKED = "invitation_revoked", "Invitation withdrawn"
        MEMBER_JOINED = "member_joined", "Person joined"
        ROLE_CHANGED = "role_changed", "Role changed"
        MEMBER_REMOVED = "member_removed", "Person removed"
        WEBHOOK_URL_REGENERATED = "webhook_url_regenerated", "Inbound webhook URL regenerated"
        WEBHOOK_LISTENER_CHANGED = "webhook_listener_changed", "Webhook listener changed"
        WEBHOOK_SECRET_ROTATED = "webhook_secret_rotated", "Webhook signing secret rotated"
        WEBHOOK_REDELIVERED = "webhook_redelivered", "Webhook redelivered"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="events")
    app = models.ForeignKey(
        PrivateApp, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices, db_index=True)
    message = models.TextField(blank=True)
    #: the provider's X-Request-Id, for support tickets
    request_id = models.CharField(max_length=120, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The audit page pages backwards through a tenant's events (keyset on these).
            models.Index(fields=["tenant", "-created_at", "-id"], name="event_tenant_time_idx"),
            # The hourly roll-up counts refreshes and failures by kind and hour.
            models.Index(fields=["kind", "created_at"], name="event_kind_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.created_at:%Y-%m-%d %H:%M}"


class TenantApiKey(models.Model):
    """A key a tenant's own services use for the token API; only its hash is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ActivityHour(models.Model):
    """Refreshes and failures of one tenant in one hour: the report's chart reads these, so it
    costs the same at a thousand refreshes an hour as at a million. Rolled up from the audit
    trail by a periodic task (connections.activity), which also keeps them past its retention."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    refreshed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hour"], name="activity_hour_unique")
        ]

    def __str__(self) -> str:
        return f"{self.tenant} {self.hour:%Y-%m-%d %H}h: {self.refreshed}/{self.failed}"


class Notice(models.Model):
    """An alert that was sent, by the condition it was about: the same condition is never
    sent twice (a task retried, a beat tick repeated, a digest week already covered)."""

    key = models.CharField(max_length=200, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=255)
    recipients = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class InboundDelivery(models.Model):
    """One request to an app's inbound webhook URL: verified (body kept), or rejected (the
    reason kept, never the body: nobody vouches for it)."""

    class Result(models.TextChoices):
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    app = models.ForeignKey(PrivateApp, on_delete=models.CASCADE, related_name="inbound")
    #: the app's connection the payload names (its account_id); null: unattributed
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result = models.CharField(max_length=10, choices=Result.choices, db_index=True)
    #: why it was rejected, a code (bad_signature, stale_timestamp, replayed, …)
    reason = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=255, blank=True)
    #: the provider's id of the delivery, where it sends one
    delivery_id = models.CharField(max_length=200, blank=True)
    #: the headers that matter (content type, user agent, timestamp, id), not the signature
    headers = models.JSONField(default=dict, blank=True)
    #: as received; null for a rejected request
    body = models.BinaryField(null=True, blank=True)
    body_size = models.PositiveIntegerField(default=0)
    #: the body is not a JSON document (it is stored anyway)
    malformed = models.BooleanField(default=False)
    #: the account the payload names, as sent (matched or not)
    account_id = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-received_at", "-id"], name="inbound_tenant_time_idx"),
            models.Index(fields=["app", "-received_at", "-id"], name="inbound_app_time_idx"),
        ]
        constraints = [
            # Replay protection: one verified delivery per id and app (a second is refused).
            models.UniqueConstraint(
                fields=["app", "delivery_id"],
                condition=models.Q(result="verified") & ~models.Q(delivery_id=""),
                name="inbound_delivery_id_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.app_id} {self.result} @ {self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def attributed(self) -> bool:
        return self.connection_id is not None

    def body_text(self) -> str:
        """The body for the page: as received, undecodable bytes shown replaced."""
        return bytes(self.body or b"").decode("utf-8", errors="replace")


class SigningSecret(models.Model):
    """A secret the portal signs an app's outbound deliveries with (Standard Webhooks: whsec_
    and base64). Rotating leaves the old one signing too until expires_at, so a listener can
    switch over without missing a delivery."""

    app = models.ForeignKey(PrivateApp, on_delete=models.CASCADE, related_name="signing_secrets")
    value = EncryptedTextField()
    last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    #: null: current; otherwise it stops signing at this time
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"whsec_…{self.last_four}"


class OutboundDelivery(models.Model):
    """One message to an app's listener: a relayed provider webhook or a portal event, with
    its webhook-id fixed across attempts (the listener's idempotency key)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    app = models.ForeignKey(PrivateApp, on_delete=models.CASCADE, related_name="outbound")
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: the provider's webhook this relays; null for a portal event
    inbound = models.ForeignKey(
        InboundDelivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="relays"
    )
    event_type = models.CharField(max_length=40, db_index=True)
    #: webhook-id: the same on every attempt and redelivery
    message_id = models.CharField(max_length=40, unique=True)
    #: what makes an event happen once (a connection's mark, a token's expiry); blank: none
    event_key = models.CharField(max_length=200, blank=True)
    #: the exact JSON text that is signed and sent
    body = models.BinaryField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    #: while SENDING: the claim lapses then (a worker that died leaves it for the sweep)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="outbound_tenant_time_idx"),
            models.Index(fields=["app", "-created_at", "-id"], name="outbound_app_time_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="outbound_due_idx",
            ),
            # Every claim counts its tenant's deliveries in flight: a handful of rows, not
            # the tenant's month of delivered ones.
            models.Index(
                fields=["tenant"], condition=models.Q(status="sending"), name="outbound_sending_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "event_key"],
                condition=~models.Q(event_key=""),
                name="outbound_event_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} {self.status}"

    def body_text(self) -> str:
        return bytes(self.body or b"").decode("utf-8", errors="replace")


class OutboundAttempt(models.Model):
    """One try at a delivery: what the listener answered (or why there was no answer)."""

    delivery = models.ForeignKey(OutboundDelivery, on_delete=models.CASCADE, related_name="tries")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    #: the start of the listener's answer, printable characters only
    response_excerpt = models.CharField(max_length=300, blank=True)
    #: in the provider's request (synchronous mode), not from a worker
    synchronous = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error}"

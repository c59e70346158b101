"""Django admin for support staff: lists and filters, never a secret or token value.

Encrypted fields are left out of every form and list (not merely read-only), so the admin
never decrypts them into a page.
"""

from django.contrib import admin

from connections.models import AuditEvent, ClientSecret, Connection, InboundDelivery, PrivateApp
from portal.fields import EncryptedTextField


def _plain_fields(model) -> list[str]:
    return [
        f.name
        for f in model._meta.concrete_fields
        if not isinstance(f, EncryptedTextField) and f.name != "id"
    ]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through the portal's services, which audit them; the admin only looks."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        return _plain_fields(self.model)


class SecretInline(admin.TabularInline):
    model = ClientSecret
    fields = ["label", "masked", "is_primary", "created_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PrivateApp)
class PrivateAppAdmin(ReadOnlyAdmin):
    list_display = ["name", "tenant", "provider", "status", "client_id", "created_at"]
    list_filter = ["provider", "status", "tenant"]
    search_fields = ["name", "client_id"]
    inlines = [SecretInline]


@admin.register(ClientSecret)
class ClientSecretAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "app", "label", "is_primary", "created_at", "revoked_at"]
    list_filter = ["is_primary"]
    readonly_fields = ["masked"]

    def get_fields(self, request, obj=None):
        # The stored tail only through `masked`, which shows none of a short secret.
        return ["masked" if f == "last_four" else f for f in super().get_fields(request, obj)]


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "tenant", "app", "user", "status", "access_expires_at"]
    list_filter = ["status", "kind", "tenant"]
    search_fields = ["account_id", "account_name"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "tenant", "app", "actor", "message"]
    list_filter = ["kind", "tenant"]
    search_fields = ["message", "request_id"]


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "result", "reason", "tenant", "app", "connection"]
    list_filter = ["result", "malformed", "tenant"]
    search_fields = ["delivery_id", "account_id"]

    def get_fields(self, request, obj=None):
        # Payloads are the tenant's business data, shown to its own admins only.
        return [f for f in super().get_fields(request, obj) if f != "body"]

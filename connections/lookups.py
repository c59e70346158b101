"""The one way views load the objects of a tenant: a getter per kind, built on
portal.tenancy.get_in_tenant. Another tenant's object, or for a member another person's
connection, is a 404 like a missing one; the tenant (or the membership) is never optional."""

from django.shortcuts import get_object_or_404

from connections.models import (
    ClientSecret,
    Connection,
    InboundDelivery,
    OutboundDelivery,
    PrivateApp,
    TenantApiKey,
)
from portal.tenancy import get_in_tenant


def app_in_tenant(tenant, pk: int) -> PrivateApp:
    return get_in_tenant(PrivateApp, tenant=tenant, pk=pk)


def secret_in_tenant(tenant, pk: int, secret_pk: int) -> ClientSecret:
    """A secret of the tenant's app `pk` (the URL names both), in one query."""
    secrets = ClientSecret.objects.select_related("app__tenant")
    return get_object_or_404(secrets, pk=secret_pk, app_id=pk, app__tenant=tenant)


def connection_in_tenant(membership, pk: int) -> Connection:
    """A connection the person may read: in their tenant, and a member's own."""
    visible = Connection.objects.visible_to(membership).select_related("app", "user", "tenant")
    return get_in_tenant(visible, tenant=membership.tenant, pk=pk)


def api_key_in_tenant(tenant, pk: int) -> TenantApiKey:
    return get_in_tenant(TenantApiKey, tenant=tenant, pk=pk)


def delivery_in_tenant(tenant, pk: int) -> InboundDelivery:
    return get_in_tenant(
        InboundDelivery.objects.select_related("app", "connection"), tenant=tenant, pk=pk
    )


def outbound_delivery_in_tenant(tenant, pk: int) -> OutboundDelivery:
    return get_in_tenant(
        OutboundDelivery.objects.select_related("app", "connection", "inbound"),
        tenant=tenant,
        pk=pk,
    )

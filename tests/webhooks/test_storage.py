"""Storage details: the replay race, and apps from before inbound webhooks get a URL."""

import pytest
from django.db import connection as db
from django.db.migrations.executor import MigrationExecutor

from connections import webhooks_inbound
from connections.models import InboundDelivery


@pytest.mark.django_db
def test_two_deliveries_with_one_id_at_once_store_one(manu_app):
    """Both passed the replay check before either was stored: the constraint decides."""
    first = webhooks_inbound.record_verified(manu_app, {}, b"{}", "evt-race")
    second = webhooks_inbound.record_verified(manu_app, {}, b"{}", "evt-race")
    assert first.result == InboundDelivery.Result.VERIFIED
    assert (second.result, second.reason, second.body) == ("rejected", "replayed", None)


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_apps_a_webhook_url(acme):
    before, after = ("connections", "0006_secrets_refused_and_labels"), (
        "connections",
        "0007_inbound_webhooks",
    )
    executor = MigrationExecutor(db)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps.get_model("connections", "PrivateApp")
    made = old.objects.create(
        tenant_id=acme.pk, name="Old", provider="manu_online", grant_type="authorization_code",
        client_id="old-client",
    )
    executor = MigrationExecutor(db)
    executor.loader.build_graph()
    executor.migrate([after])
    # The current model has the later migrations' columns too: read it at the leaf.
    executor = MigrationExecutor(db)
    executor.migrate(executor.loader.graph.leaf_nodes())
    from connections.models import PrivateApp

    app = PrivateApp.objects.get(pk=made.pk)
    assert app.webhook_token and len(app.webhook_token_hash) == 64
    assert webhooks_inbound.app_for_token(app.webhook_token) == app

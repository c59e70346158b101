import json

from django.core.management.base import BaseCommand, CommandError

from sandbox.webhooks import CannotSign, send_webhook


class Command(BaseCommand):
    help = (
        "The sandbox provider sends one signed webhook: to a portal app's inbound URL "
        "(--app), or to any URL for a sandbox client (--provider, --client-id, --url)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app", type=int, help="a portal app id (the demo's apps)")
        parser.add_argument("--provider")
        parser.add_argument("--client-id")
        parser.add_argument("--url")
        parser.add_argument("--event", default="sandbox.ping")
        parser.add_argument("--account-id", default="", help="names the connection's account")
        parser.add_argument("--payload", help="a JSON object sent instead of the default")

    def handle(self, *args, **options):
        provider, client_id, url = options["provider"], options["client_id"], options["url"]
        if options["app"]:
            # The portal side is read only for the demo's convenience: its URL and client.
            from connections.models import PrivateApp
            from connections.webhooks_inbound import inbound_url

            app = PrivateApp.objects.filter(pk=options["app"]).first()
            if app is None:
                raise CommandError(f"No app {options['app']}.")
            provider, client_id, url = app.provider, app.client_id, inbound_url(app)
        if not (provider and client_id and url):
            raise CommandError("Give --app, or --provider, --client-id and --url.")
        if options["payload"]:
            try:
                payload = json.loads(options["payload"])
            except ValueError as exc:
                raise CommandError(f"--payload is not JSON: {exc}") from None
        else:
            payload = {"event": options["event"]}
            if options["account_id"]:
                payload["account_id"] = options["account_id"]
        try:
            response = send_webhook(provider, client_id, url, payload)
        except (CannotSign, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{response.status_code} {response.text[:500]}")

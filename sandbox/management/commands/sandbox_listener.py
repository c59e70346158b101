"""`manage.py sandbox_listener`: a tenant's webhook listener (sandbox.listener) on loopback, in
the foreground, for the demo: it verifies every delivery with the `standardwebhooks` package,
prints one line per delivery, and answers as told (--fail N, --status CODE) until Ctrl-C.

Secrets: --secret (repeatable), or the current signing secrets of --app; --configure-app
points that app's listener at this one first (the default events) and uses its secrets.
It only ever listens on 127.0.0.1.
"""

import json
import threading
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from sandbox.listener import Listener, Received, Reply, start

DEFAULT_PORT = 8765


class PrintingListener(Listener):
    """A Listener that reports each delivery as it answers it."""

    def __init__(self, write, **kwargs):
        super().__init__(**kwargs)
        self.write = write
        self.heard = 0

    def record(self, received: Received) -> None:
        super().record(received)
        with self.lock:
            self.heard += 1
            number = self.heard
        self.write(delivery_line(number, received))


def delivery_line(number: int, received: Received) -> str:
    """time, webhook-id, type, verified or why not, the status answered."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    try:
        kind = str(json.loads(received.body).get("type") or "?")
    except (ValueError, AttributeError):
        kind = "(not JSON)"
    when = datetime.fromtimestamp(received.at).strftime("%H:%M:%S.%f")[:-3]
    # The listener tries each secret and gives each one's reason: the same reason once.
    why = "; ".join(dict.fromkeys(received.error.split("; ")))
    verdict = "verified" if received.verified else f"NOT verified: {why}"
    message_id = headers.get("webhook-id") or "(no webhook-id)"
    return f"{when}  #{number}  {message_id}  {kind}  {verdict}  -> {received.answered}"


class Command(BaseCommand):
    help = (
        "Run a webhook listener on 127.0.0.1 in the foreground (Ctrl-C stops it): it verifies "
        "each delivery with standardwebhooks and prints a line per delivery."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: set to stop handle() (what Ctrl-C does, for callers in another thread)
        self.stopping = threading.Event()
        self.listener: PrintingListener | None = None
        self._out = threading.Lock()

    def add_arguments(self, parser):
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free port)",
        )
        parser.add_argument(
            "--secret",
            action="append",
            default=[],
            help="a signing secret (whsec_...) to verify with; repeat for several",
        )
        apps = parser.add_mutually_exclusive_group()
        apps.add_argument("--app", type=int, help="verify with this app's current signing secrets")
        apps.add_argument(
            "--configure-app",
            type=int,
            metavar="ID",
            help="point this app's listener here (default events) and verify with its secrets",
        )
        parser.add_argument(
            "--fail", type=int, default=0, metavar="N", help="answer 503 to the first N deliveries"
        )
        parser.add_argument(
            "--status",
            type=int,
            default=200,
            metavar="CODE",
            help="the answer to every other delivery (default 200)",
        )

    def say(self, line: str) -> None:
        with self._out:
            self.stdout.write(line)
            self.stdout.flush()

    def handle(self, *args, **options):
        port, fail, status = options["port"], options["fail"], options["status"]
        if not 0 <= port <= 65535:
            raise CommandError("--port is 0 to 65535.")
        if fail < 0:
            raise CommandError("--fail is a number of deliveries, 0 or more.")
        if not 200 <= status <= 599:
            raise CommandError("--status is an HTTP status from 200 to 599.")
        app = self._app(options["app"] or options["configure_app"])
        secrets = list(options["secret"])
        if app is not None and options["app"]:
            secrets += _current_secrets(app)
            if not secrets:
                raise CommandError(
                    f"App {app.pk} has no signing secret yet: set its listener on its page, "
                    "or use --configure-app."
                )
        if app is None and not secrets:
            raise CommandError("Give --secret, --app or --configure-app: what to verify with.")

        listener = PrintingListener(self.say, replies=[Reply(503)] * fail)
        listener.default = Reply(status)
        try:
            start(listener, port=port)
        except OSError as exc:
            raise CommandError(f"Cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.listener = listener
        try:
            if options["configure_app"]:
                secrets += self._configure(app, listener.url)
            listener.secrets = secrets
            self._announce(listener, fail, status)
            self._wait()
        finally:
            listener.stop()
        heard = listener.count()
        self.say(f"Stopped after {heard} deliver{'y' if heard == 1 else 'ies'}.")

    def _app(self, pk):
        if pk is None:
            return None
        from connections.models import PrivateApp

        app = PrivateApp.objects.filter(pk=pk).select_related("tenant").first()
        if app is None:
            raise CommandError(f"No app {pk}.")
        return app

    def _configure(self, app, url: str) -> list[str]:
        """Point the app's listener at `url` with the default events (its synchronous mode
        and lapse warning kept); its current secrets, the first one made now if it had none."""
        from connections import webhook_listener
        from connections.webhook_events import DEFAULT_EVENTS

        webhook_listener.configure(
            app=app,
            actor=None,
            listener_url=url,
            listener_sync=app.listener_sync,
            listener_events=list(DEFAULT_EVENTS),
            lapse_warning_days=app.lapse_warning_days,
        )
        self.say(
            f"App {app.pk} ({app.name}, tenant {app.tenant.slug}): listener set to {url}, "
            f"{'synchronous' if app.listener_sync else 'queued'} mode, events: "
            + ", ".join(DEFAULT_EVENTS)
        )
        return _current_secrets(app)

    def _announce(self, listener, fail: int, status: int) -> None:
        ends = ", ".join(f"whsec_...{s[-4:]}" for s in listener.secrets)
        plan = f"the first {fail} answered 503, then {status}" if fail else f"answering {status}"
        self.say(
            f"Listening on {listener.url} (loopback only), verifying with {ends}; {plan}. "
            "Ctrl-C stops."
        )

    def _wait(self) -> None:
        try:
            while not self.stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.say("")


def _current_secrets(app) -> list[str]:
    from connections.webhook_listener import current_secrets

    return [s.value for s in current_secrets(app)]

"""System checks of the portal's own settings (run by `manage.py check`, migrate, runserver)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def sandbox_in_production(app_configs, **kwargs) -> list[Warning]:
    if not settings.SANDBOX_ENABLED or settings.DEBUG:
        return []
    return [
        Warning(
            "SANDBOX_ENABLED is on with DEBUG off: the sandbox's unauthenticated "
            "fault-control endpoints (/sandbox/<provider>/_control/faults) and emulated "
            "providers are mounted on the portal's own origin.",
            hint="Set SANDBOX_ENABLED=false in production; the sandbox is for the demo and "
            "the tests.",
            id="portal.W001",
        )
    ]

"""Emulated providers served by the portal itself when SANDBOX_ENABLED (demo and tests)."""

from sandbox.profiles import urls_for

__all__ = ["urls_for"]

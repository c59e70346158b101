"""The token lifecycle: the only code that writes tokens (obtain, refresh, revoke)."""

"""Emulated providers served by the portal itself when SANDBOX_ENABLED (demo and tests).

Mounted at /sandbox/<slug>/ (manu-online, manus, manhattan-active, manitou-group).
- sandbox.urls_for(provider, base_url): the endpoint overrides for a PrivateApp.
- sandbox.registry: register_client, create_user, token_is_active, refresh_token_is_active,
  token_request_count, presentations, most_presented, live_refresh_tokens, token_hash.
- sandbox.faults: inject / clear (error_5xx, rate_limit, latency, lost_response, trickle); over
  HTTP POST / DELETE /sandbox/<slug>/_control/faults.
- sandbox.profiles: how each provider behaves, as data (lifetimes, client auth, scopes...).
Login pages: inputs #username, #password, button #login; Manu Online's account picker:
radio inputs name="account", button #choose-account; consent: buttons #grant and #deny.
"""

from sandbox.profiles import urls_for

__all__ = ["urls_for"]

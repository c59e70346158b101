"""The token lifecycle: the one owner of a connection's tokens, status, lease and schedule.

Everything outside this package goes through the names below; the modules inside are
private to it (tests/test_structure.py checks both). Every write after a connection's
creation is a conditional UPDATE that checks and bumps `version`.
"""

from connections.lifecycle.obtain import AccountNotAllowed
from connections.lifecycle.obtain import (
    obtain_from_code as connection_obtain_from_code,
)
from connections.lifecycle.obtain import (
    obtain_service_token as connection_obtain_service,
)
from connections.lifecycle.obtain import record_failure as connection_record_failure
from connections.lifecycle.reauth import connections_mark_reauth
from connections.lifecycle.refresh import Outcome
from connections.lifecycle.refresh import refresh_connection as connection_refresh
from connections.lifecycle.revoke import (
    Disconnected,
    NotDeletable,
    RefreshUnderWay,
    Revocation,
)
from connections.lifecycle.revoke import delete_revoked as connection_delete
from connections.lifecycle.revoke import disconnect as connection_disconnect
from connections.lifecycle.revoke import retry_revocation as connection_retry_revocation
from connections.lifecycle.schedule import (
    connection_unclaim,
    connections_claim_due,
    connections_due,
)
from connections.lifecycle.spool import entries as spool_entries
from connections.lifecycle.store import replay_spool as spool_replay
from connections.lifecycle.tokens import TokenUnavailable, connection_token

__all__ = [
    "AccountNotAllowed",
    "Disconnected",
    "NotDeletable",
    "Outcome",
    "RefreshUnderWay",
    "Revocation",
    "TokenUnavailable",
    "connection_delete",
    "connection_disconnect",
    "connection_obtain_from_code",
    "connection_obtain_service",
    "connection_record_failure",
    "connection_refresh",
    "connection_retry_revocation",
    "connection_token",
    "connection_unclaim",
    "connections_claim_due",
    "connections_due",
    "connections_mark_reauth",
    "spool_entries",
    "spool_replay",
]

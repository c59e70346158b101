"""A durable place for a provider's answer the database would not take.

A rotated refresh token exists only in the answer that carried it. If the database refuses
the write, the worker keeps retrying, but a worker can die while it waits: so before its
first retry the answer is written here, sealed with the field keys (never plaintext), to an
fsync'd file under VAR_DIR/spool and, when configured, to Redis (another host's worker can
replay it). Workers replay the spool at start and on every beat (store.replay_spool).
"""

import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import redis
from django.conf import settings

from connections.oauth import TokenSet
from portal.fields import decrypt, encrypt

log = logging.getLogger(__name__)
REDIS_KEY = "portal:token-spool"


@dataclass(frozen=True)
class Entry:
    name: str
    connection_id: int
    sent_hash: str  # the generation the answer belongs to: the refresh token that was sent
    answered_at: str  # ISO time the provider answered; expiries count from it
    sealed: str  # the TokenSet as JSON, encrypted with the field keys
    owner: str = ""  # the lease the refresh held: the replay lets it go with the write

    def tokens(self) -> TokenSet:
        return TokenSet(**json.loads(decrypt(self.sealed)))

    @property
    def answered(self) -> datetime:
        return datetime.fromisoformat(self.answered_at)


def _path() -> Path:
    return Path(settings.VAR_DIR) / "spool"


def _folder() -> Path:
    folder = _path()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _redis():
    return _client(settings.REDIS_URL) if settings.REDIS_URL else None


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def keep(
    *, connection_id: int, sent_hash: str, tokens: TokenSet, answered: datetime, owner: str = ""
) -> Entry:
    """Write the answer durably; raises OSError only when neither the file nor Redis took it."""
    entry = Entry(
        name=f"{connection_id}-{uuid.uuid4().hex}",
        connection_id=connection_id,
        sent_hash=sent_hash,
        answered_at=answered.isoformat(),
        sealed=encrypt(json.dumps(asdict(tokens))),
        owner=owner,
    )
    data = json.dumps(asdict(entry))
    kept = []
    try:
        _write_file(_folder(), entry.name, data)
        kept.append("file")
    except OSError:
        log.exception("could not write the token spool file for connection %s", connection_id)
    client = _redis()
    if client is not None:
        try:
            client.hset(REDIS_KEY, entry.name, data)
            kept.append("redis")
        except redis.RedisError:
            log.exception("could not write the token spool to Redis for %s", connection_id)
    if not kept:
        raise OSError(f"the token spool took nothing for connection {connection_id}")
    log.critical(
        "database refused the tokens of connection %s; kept in the spool (%s) as %s",
        connection_id,
        ", ".join(kept),
        entry.name,
    )
    return entry


def _write_file(folder: Path, name: str, data: str) -> None:
    """Whole or not at all: a hidden temporary file, fsync'd, renamed, the folder fsync'd."""
    temporary = folder / f".{name}.tmp"
    with open(temporary, "w") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / f"{name}.json")
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def entries(connection_id: int | None = None) -> list[Entry]:
    """Every answer waiting in the spool (the file and Redis), oldest first by name order."""
    found: dict[str, str] = {}
    prefix = f"{connection_id}-" if connection_id is not None else ""
    folder = _folder()
    for path in folder.glob(f"{prefix}*.json"):
        try:
            found[path.stem] = path.read_text()
        except OSError:
            continue  # replayed and dropped by another worker meanwhile
    client = _redis()
    if client is not None:
        try:
            if client.hlen(REDIS_KEY):
                for name, data in client.hgetall(REDIS_KEY).items():
                    if name.decode().startswith(prefix):
                        found.setdefault(name.decode(), data.decode())
        except redis.RedisError:
            log.warning("could not read the token spool in Redis", exc_info=True)
    result = []
    for data in found.values():
        try:
            result.append(Entry(**json.loads(data)))
        except (ValueError, TypeError):
            log.error("unreadable token spool entry skipped")
    return sorted(result, key=lambda e: e.answered_at)


def drop(entry: Entry) -> None:
    try:
        (_folder() / f"{entry.name}.json").unlink(missing_ok=True)
    except OSError:
        log.exception("could not remove spool file %s", entry.name)
    client = _redis()
    if client is not None:
        try:
            client.hdel(REDIS_KEY, entry.name)
        except redis.RedisError:
            log.warning("could not remove spool entry %s from Redis", entry.name, exc_info=True)


def is_empty() -> bool:
    """Cheap: one directory scan and one HLEN. Normally true."""
    if any(_path().glob("*.json")):  # no folder yet: nothing spooled (no mkdir every refresh)
        return False
    client = _redis()
    if client is None:
        return True
    try:
        return not client.hlen(REDIS_KEY)
    except redis.RedisError:
        return True

"""A model-based test of the refresh engine against the sandbox provider, over real HTTP.

A bounded random driver, deterministic per seed in the steps it chooses: per example one Manus
or Manu Online app, two or three connections, then random steps (scheduled, on-demand and
forced refreshes, reconnects, disconnects, a refresh in flight against a slow provider while
another step runs or while its lease is made to lapse, a worker that dies between the
provider's answer and the store, provider faults, the database refusing writes while an
answer is on its way, and the beat's spool replay and revocation retries). The invariants are
checked after every step, at quiescence and once more after every connection was refreshed:

(a) a refresh token is presented again only after a presentation that got no usable answer:
    at the provider, presentations <= 1 + (earlier presentations answered 5xx or 429, lost, cut
    by the deadline, spent by a simulated dead worker, in flight when the model made the lease
    lapse, or whose answer a refused write left unrecorded), which is the plain
    `most_presented <= 2` when at most one such thing happened to a token;
(b) an ACTIVE/FAILING connection's refresh token is live at the provider, unless the model
    knows the provider spent it without the portal learning so (then its next refresh must
    find out: checked at the end with no excuse), or its answer waits in the spool; a
    NEEDS_REAUTH connection has its cause in last_error and an event, a REVOKED one an event;
(c) every refresh token live at the provider for the app is referenced by a connection
    (REVOKED rows only while a revocation is pending) or waits in the spool, except pairs a
    simulated worker death dropped (reported), pairs the portal never received because the
    call got no answer (at most one per such call), and, for a provider without a revocation
    endpoint, at most one per event that says so (a disconnect, an orphaned answer, a
    reconnect);
(d) a forced refresh of a healthy, unleased connection with no fault refreshes; the token API
    serves only access tokens live at the provider; at the end, every connection holding a
    live token refreshes;
(e) once every operation has ended, no lease is left held except by a simulated dead worker
    or an operation the refused database kept from releasing it.

CI runs three seeds of 40 steps. On demand, MODEL_STEPS=10000 (and MODEL_SEED, the first
seed; MODEL_EXAMPLE_STEPS, the steps per example) runs examples until that many steps were
taken and prints "model: N steps, N checks, 0 broken"; `make soak-model` does that. MODEL_SEED
alone replays one example. Token values are never printed: hashes only.
"""

import os
import random
import re
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.db import connections as db_connections
from django.utils import timezone

import connections.lifecycle.refresh as refresh_module
from connections import oauth, tasks
from connections.lifecycle import (
    Outcome,
    RefreshUnderWay,
    TokenUnavailable,
    connection_disconnect,
    connection_refresh,
    connection_token,
    connection_unclaim,
    connections_claim_due,
    lease,
    obtain,
    provider_calls,
    spool,
    spool_replay,
)
from connections.lifecycle.store import StoreFailed
from connections.models import AuditEvent, Connection, PrivateApp
from sandbox import faults, registry
from sandbox.models import Client as SandboxClient
from sandbox.models import Token, TokenRequest
from tests import factories
from tests.support.lifecycle import expire_access_token, provider_refresh
from tests.support.outage import accept_writes, refuse_writes
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = Connection.Status

SOAK_STEPS = int(os.environ.get("MODEL_STEPS") or 0)
FIRST_SEED = os.environ.get("MODEL_SEED")
EXAMPLE_STEPS = int(os.environ.get("MODEL_EXAMPLE_STEPS") or 40)
CI_SEEDS = (1, 2, 3)

# Small enough that no step takes more than about two seconds.
DEADLINE = 0.5  # PROVIDER_DEADLINE: latency or trickle above it is cut
LEASE_MARGIN = 0.3
LEASE_SECONDS = 2
STORE_RETRY = 0.5  # tries at 0, 0.2 and 0.6 s: a longer outage leaves the answer to the spool
HIGH_RATE = 100_000  # Manus: no rate limit in the way (a 429 is injected as a fault)
JOIN_SECONDS = 15

STEP_WEIGHTS = {
    "scheduled": 12,
    "on_demand": 12,
    "forced": 12,
    "reconnect": 6,
    "disconnect": 5,
    "concurrent": 10,
    "worker_death": 4,
    "outage": 6,
    "retry_revocations": 5,
    "spool_replay": 3,
}
FAULT_STEPS = {"scheduled", "on_demand", "forced", "reconnect"}
FAULT_KINDS = ("error_5xx", "rate_limit", "lost_response", "latency", "trickle")
FAULT_CHANCE = 0.35
REVIVE_CHANCE = 0.6  # a step that picked a disconnected or dead connection reconnects it
# Outcomes of a presentation after which sending the same token again is right: the provider
# did not answer usably, or (worker_death) the portal never saw its answer.
NO_USABLE_ANSWER = {"server", "transport", "rate_limited", "worker_death"}
# ...and of those, the ones after which the provider may have spent the token unbeknown.
MAYBE_SPENT = {"server", "transport", "worker_death"}


class Broken(Exception):
    """An invariant does not hold; the message says which, with the steps and the state."""


def short(value: str) -> str:
    return value[:12] if value else "-"


# --- What went over the wire -----------------------------------------------------------------


class Probe:
    """What the portal (and the model's simulated dead workers) sent to the provider and got
    back, recorded by wrapping connections.oauth. Token values are kept only as hashes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = Counter()  # client id: HTTP requests to the token and revoke endpoints
        self.finished = Counter()  # client id: refresh calls that returned or raised
        self.outcomes = defaultdict(list)  # refresh-token hash: the outcome of each presentation
        self.delivered = set()  # refresh-token hashes the portal received
        self.dropped = {}  # refresh-token hash: the step whose simulated dead worker dropped it
        # client id: token calls that got no answer (the provider may have issued a pair)
        self.unanswered = Counter()
        self.local = threading.local()

    def install(self, monkeypatch) -> None:
        real_post, real_refresh, real_exchange = oauth._post, oauth.refresh, oauth.exchange_code

        def post(url, creds, params):
            with self.lock:
                self.sent[creds.client_id] += 1
            return real_post(url, creds, params)

        def refresh(app, creds, *, refresh_token):
            presented = registry.token_hash(refresh_token)
            dying = getattr(self.local, "dying", None)
            try:
                tokens = real_refresh(app, creds, refresh_token=refresh_token)
            except oauth.ProviderError as exc:
                with self.lock:
                    self.outcomes[presented].append("worker_death" if dying else _kind(exc))
                    if exc.kind in (oauth.ErrorKind.SERVER, oauth.ErrorKind.TRANSPORT):
                        self.unanswered[app.client_id] += 1
                raise
            finally:
                with self.lock:
                    self.finished[app.client_id] += 1
            with self.lock:
                if dying:
                    self.outcomes[presented].append("worker_death")
                    if tokens.refresh_token:
                        self.dropped[registry.token_hash(tokens.refresh_token)] = dying
                else:
                    self.outcomes[presented].append("answered")
                    if tokens.refresh_token:
                        self.delivered.add(registry.token_hash(tokens.refresh_token))
            return tokens

        def exchange_code(app, creds, **kwargs):
            try:
                tokens = real_exchange(app, creds, **kwargs)
            except oauth.ProviderError as exc:
                if exc.kind in (oauth.ErrorKind.SERVER, oauth.ErrorKind.TRANSPORT):
                    with self.lock:
                        self.unanswered[app.client_id] += 1
                raise
            if tokens.refresh_token:
                with self.lock:
                    self.delivered.add(registry.token_hash(tokens.refresh_token))
            return tokens

        monkeypatch.setattr(oauth, "_post", post)
        monkeypatch.setattr(oauth, "refresh", refresh)
        monkeypatch.setattr(oauth, "exchange_code", exchange_code)


def _kind(exc: oauth.ProviderError) -> str:
    if exc.kind == oauth.ErrorKind.RATE_LIMITED:
        return "held_back" if exc.held_back else "rate_limited"
    return exc.kind.value


class InFlight:
    """Wraps the live server's WSGI application: how many requests it is handling (a trickled
    answer counts until its last byte went out or the client hung up)."""

    def __init__(self, application):
        self.application = application
        self.lock = threading.Lock()
        self.count = 0

    def __call__(self, environ, start_response):
        with self.lock:
            self.count += 1
        try:
            result = self.application(environ, start_response)
        except BaseException:
            self._leave()
            raise
        return _Closing(result, self._leave)

    def _leave(self) -> None:
        with self.lock:
            self.count -= 1


class _Closing:
    def __init__(self, result, done):
        self.result, self.done, self.closed = result, done, False

    def __iter__(self):
        return iter(self.result)

    def close(self):
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            if not self.closed:
                self.closed = True
                self.done()


class Background(threading.Thread):
    """One operation in a thread of its own (another worker); its result or exception."""

    def __init__(self, label: str, work):
        super().__init__(daemon=True, name=f"model-{label}")
        self.label, self.work = label, work
        self.result, self.error = None, None

    def run(self):
        try:
            self.result = self.work()
        except BaseException as exc:  # noqa: BLE001 - judged by the step that started it
            self.error = exc
        finally:
            db_connections.close_all()

    def finish(self) -> None:
        self.join(JOIN_SECONDS)
        if self.is_alive():
            raise Broken(f"the background {self.label} did not end within {JOIN_SECONDS} s")


# --- The model ------------------------------------------------------------------------------


@dataclass
class Stats:
    steps: int = 0
    checks: int = 0
    broken: int = 0
    examples: int = 0
    most_presented: int = 0
    most_presented_why: str = ""
    slowest_step: float = 0.0
    lost_by_worker_death: int = 0
    lost_in_transit: int = 0
    outcomes: Counter = field(default_factory=Counter)
    reports: list = field(default_factory=list)


@dataclass
class World:
    seed: int
    rng: random.Random
    app: PrivateApp
    tenant_id: int
    user: object
    conns: list
    probe: Probe
    inflight: InFlight
    stats: Stats
    log: list = field(default_factory=list)
    step: int = 0
    dead_owners: set = field(default_factory=set)  # leases of simulated dead workers
    excused_owners: set = field(default_factory=set)  # leases a refused database kept held
    lapsed: Counter = field(default_factory=Counter)  # hash: lease lapses while it was in flight
    # hash: refreshes that presented it and then died on a refused write, their answer unrecorded
    unrecorded: Counter = field(default_factory=Counter)

    @property
    def provider(self) -> str:
        return self.app.provider

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def revocable(self) -> bool:
        return bool(self.app.endpoint("revoke_url"))

    def rows(self):
        return Connection.objects.filter(pk__in=self.conns).order_by("pk")

    def inject(self, kind: str) -> str:
        rng = self.rng
        extra = {}
        if kind == "error_5xx":
            extra = {"status": rng.choice([500, 502, 503])}
        elif kind == "rate_limit":
            extra = {"retry_after": rng.randint(1, 3)}
        elif kind in ("latency", "trickle"):
            extra = {"latency_ms": rng.randint(100, 600)}
        faults.inject(provider=self.provider, client_id=self.client_id, kind=kind, **extra)
        detail = ",".join(f"{k}={v}" for k, v in extra.items())
        return f"{kind}({detail})" if detail else kind

    def refuse_revocations(self, refusing: bool) -> None:
        """The provider answers every request of this client 429 (its window allows none)."""
        SandboxClient.objects.filter(provider=self.provider, client_id=self.client_id).update(
            rate_limit=0 if refusing else (HIGH_RATE if self.provider == "manus" else None)
        )

    def settle_provider(self) -> None:
        """Wait until the sandbox has seen and finished every request the portal sent: a call
        the portal gave up on still runs there (and may spend a token) until it ends."""

        def quiet():
            logged = TokenRequest.objects.filter(client_id=self.client_id).count()
            return self.inflight.count == 0 and logged >= self.probe.sent[self.client_id]

        try:
            wait_for(quiet, timeout=10, every=0.01)
        except AssertionError:
            raise Broken(
                f"the sandbox did not settle: {self.inflight.count} in flight, "
                f"{self.probe.sent[self.client_id]} sent"
            ) from None


def spooled_answers(world: World) -> dict[str, str]:
    """sent hash -> the refresh-token hash of the answer waiting in the spool."""
    waiting = {}
    for entry in spool.entries():
        if entry.connection_id in world.conns:
            tokens = entry.tokens()
            waiting[entry.sent_hash] = (
                registry.token_hash(tokens.refresh_token) if tokens.refresh_token else ""
            )
    return waiting


def check(world: World, *, phase: str = "step") -> list[str]:
    """The invariants; phase "step" (after a step), "quiescent" (threads joined, writes
    accepted, spool and revocations settled) or "final" (every connection refreshed once
    more: no excuse for a spent token left)."""
    world.stats.checks += 1
    probe, provider, client_id = world.probe, world.provider, world.client_id
    problems = []
    rows = list(world.rows())
    live = set(registry.live_refresh_tokens(provider, client_id))
    waiting = spooled_answers(world)
    if phase != "step" and waiting:
        problems.append(f"spool: {len(waiting)} answers still waiting after the replay")

    # (a) a token is sent again only after a presentation that got no usable answer
    presented = Token.objects.filter(
        client__provider=provider,
        client__client_id=client_id,
        kind=Token.Kind.REFRESH,
        presentations__gt=1,
    ).values_list("value_hash", "presentations")
    for value_hash, count in presented:
        seen = probe.outcomes.get(value_hash, [])
        # Only what came back before the last presentation can excuse sending it again.
        excused = (
            sum(o in NO_USABLE_ANSWER for o in seen[:-1])
            + world.lapsed[value_hash]
            + world.unrecorded[value_hash]
        )
        if count > world.stats.most_presented:
            world.stats.most_presented = count
            world.stats.most_presented_why = f"{short(value_hash)}: {seen}"
        if count > 1 + excused:
            problems.append(
                f"(a) refresh token {short(value_hash)} presented {count} times; the portal's "
                f"presentations got {seen}, lease lapses forced while in flight: "
                f"{world.lapsed[value_hash]}, answers a refused write left unrecorded: "
                f"{world.unrecorded[value_hash]}"
            )
    world.stats.most_presented = max(
        world.stats.most_presented, registry.most_presented(provider, client_id)
    )

    # (b) every refreshable connection holds a live token, or the portal cannot know yet
    for row in rows:
        where = f"#{row.pk} ({row.status}, token {short(row.refresh_token_hash)})"
        if row.status in (Status.ACTIVE, Status.FAILING):
            if row.refresh_token_hash and row.refresh_token_hash in live:
                continue
            seen = probe.outcomes.get(row.refresh_token_hash, [])
            unknown = any(o in MAYBE_SPENT for o in seen)
            if phase != "final" and (unknown or row.refresh_token_hash in waiting):
                continue
            problems.append(
                f"(b) {where}: its refresh token is not live at the provider "
                f"(presentations: {seen or 'none'})"
            )
        elif row.status == Status.NEEDS_REAUTH:
            if not row.last_error.strip():
                problems.append(f"(b) {where}: needs re-authorisation with no last_error")
            if not AuditEvent.objects.filter(
                connection_id=row.pk, kind=AuditEvent.Kind.REAUTH_NEEDED
            ).exists():
                problems.append(f"(b) {where}: needs re-authorisation with no reauth event")
        elif row.status == Status.REVOKED:
            if not AuditEvent.objects.filter(
                connection_id=row.pk, kind=AuditEvent.Kind.REVOKED
            ).exists():
                problems.append(f"(b) {where}: revoked with no revocation event")
            if phase != "step" and row.revoke_retry_at is not None:
                problems.append(f"(b) {where}: a revocation still pending at quiescence")

    # (c) every live grant is referenced, or the model knows why not
    referenced = {
        row.refresh_token_hash
        for row in rows
        if row.refresh_token_hash
        and (row.status != Status.REVOKED or row.revoke_retry_at is not None)
    }
    unreferenced = live - referenced - set(waiting.values())
    dead = {h for h in unreferenced if h in probe.dropped}
    world.stats.lost_by_worker_death = max(world.stats.lost_by_worker_death, len(dead))
    rest = unreferenced - dead
    never_received = rest - probe.delivered
    received = rest & probe.delivered
    world.stats.lost_in_transit = max(world.stats.lost_in_transit, len(never_received))
    if len(never_received) > probe.unanswered[client_id]:
        problems.append(
            f"(c) {len(never_received)} live grants the portal never received, but only "
            f"{probe.unanswered[client_id]} calls got no answer: "
            f"{sorted(short(h) for h in never_received)}"
        )
    if received:
        names = sorted(short(h) for h in received)
        if world.revocable:
            problems.append(
                f"(c) live at the provider, received by the portal, referenced by no "
                f"connection: {names}"
            )
        else:
            events = AuditEvent.objects.filter(connection_id__in=world.conns)
            said = (
                events.filter(
                    kind=AuditEvent.Kind.REVOKED, message__contains="no revocation endpoint"
                ).count()
                + events.filter(kind=AuditEvent.Kind.TOKENS_ORPHANED).count()
                + events.filter(kind=AuditEvent.Kind.AUTHORIZED, message="Reconnected.").count()
            )
            if len(received) > said:
                problems.append(
                    f"(c) {len(received)} live grants referenced by no connection, but only "
                    f"{said} events say one was left to lapse: {names}"
                )

    # (e) no lease outlives the operation that took it
    for row in rows:
        owner = row.lease_owner
        if owner and owner not in world.dead_owners | world.excused_owners:
            problems.append(
                f"(e) #{row.pk}: lease {short(owner)} still held (expires "
                f"{row.lease_expires_at:%H:%M:%S.%f}) after every operation ended"
            )
    return problems


def describe(world: World, problems: list[str]) -> str:
    probe = world.probe
    lines = [
        f"model invariant broken: seed {world.seed}, step {world.step}, {world.provider} app "
        f"{world.client_id} (revocation endpoint: {'yes' if world.revocable else 'no'})",
        *[f"  {p}" for p in problems],
        "steps:",
        *[f"  {line}" for line in world.log],
        "state:",
    ]
    for row in world.rows():
        lines.append(
            f"  #{row.pk} {row.status} token={short(row.refresh_token_hash)} "
            f"lease={short(row.lease_owner)} inflight={short(row.inflight_refresh_hash)} "
            f"failures={row.failure_count} revoke_retry_at={row.revoke_retry_at} "
            f"version={row.version} error={row.last_error[:160]!r}"
        )
        events = AuditEvent.objects.filter(connection_id=row.pk).order_by("pk")
        lines.append(f"    events: {[e.kind for e in events]}")
    live = registry.live_refresh_tokens(world.provider, world.client_id)
    lines.append(f"  live refresh tokens at the provider: {[short(h) for h in live]}")
    tokens = Token.objects.filter(client__client_id=world.client_id, kind=Token.Kind.REFRESH)
    for token in tokens.order_by("pk"):
        lines.append(
            f"    {short(token.value_hash)} presented={token.presentations} "
            f"used={'y' if token.used_at else 'n'} revoked={'y' if token.revoked_at else 'n'} "
            f"portal saw: {probe.outcomes.get(token.value_hash, [])}"
            + (" [received]" if token.value_hash in probe.delivered else "")
            + (
                f" [lost by a worker death, step {probe.dropped[token.value_hash]}]"
                if token.value_hash in probe.dropped
                else ""
            )
        )
    lines.append(f"  spool: { {short(k): short(v) for k, v in spooled_answers(world).items()} }")
    lines.append(
        f"  calls with no answer (pairs maybe lost in transit): {probe.unanswered[world.client_id]}"
    )
    return "\n".join(lines)


# --- Steps ----------------------------------------------------------------------------------


def do_forced(world: World, pk: int) -> str:
    return connection_refresh(pk, reason="manual", force=True).value


def do_scheduled(world: World, pk: int) -> str:
    Connection.objects.filter(pk=pk).update(next_refresh_at=timezone.now() - timedelta(seconds=1))
    if world.rng.random() < 0.5:
        return connection_refresh(pk, reason="scheduled").value
    # What the beat and a worker do: claim what is due, run each batch task's body inline.
    claimed = connections_claim_due(now=timezone.now(), limit=100)
    for other in claimed:
        if other not in world.conns:
            connection_unclaim(other)  # an earlier example's row: not this model's business
    outcome = "not claimed"
    for batch in tasks.task_batches([other for other in claimed if other in world.conns]):
        refreshed = tasks.refresh_connections_task(batch)
        if pk in batch:
            outcome = f"claimed in a batch of {len(batch)}: {refreshed} refreshed"
    return outcome


def do_on_demand(world: World, pk: int, *, alone: bool = True) -> str:
    expire_access_token(Connection(pk=pk))
    wait = world.rng.choice([0.3, 0.6, 1.0])
    try:
        conn = connection_token(pk, tenant_id=world.tenant_id, wait_seconds=wait)
    except TokenUnavailable as exc:
        return f"unavailable: {exc.reason}"
    if alone and not registry.token_is_active(world.provider, conn.access_token):
        raise Broken(
            f"(d) #{pk}: the token API served an access token the provider does not know as active"
        )
    return "served"


def do_disconnect(world: World, pk: int, *, may_refuse: bool = True) -> str:
    refusing = may_refuse and world.revocable and world.rng.random() < 0.3
    wait = world.rng.choice([0.2, 0.5, 1.0])
    if refusing:
        world.refuse_revocations(True)
    try:
        done = connection_disconnect(
            conn=Connection.objects.get(pk=pk), actor=None, wait_seconds=wait
        )
    except RefreshUnderWay:
        return "refresh under way"
    finally:
        if refusing:
            world.refuse_revocations(False)
    return ("confirmed" if done.confirmed else "not confirmed") + (
        " (revocations refused)" if refusing else ""
    )


def do_reconnect(world: World, pk: int) -> str:
    try:
        factories.minted_connection(
            world.app, user=world.user, reconnect=Connection.objects.get(pk=pk)
        )
    except oauth.ProviderError as exc:
        return f"provider error: {exc.kind.value}"
    except lease.LeaseLost:
        return "lease lost"
    return "reconnected"


def do_retry_revocations(world: World, pk: int) -> str:
    world.rows().filter(status=Status.REVOKED, revoke_retry_at__isnull=False).update(
        revoke_retry_at=timezone.now() - timedelta(seconds=1)
    )
    return f"{tasks.retry_revocations()} retried"


def do_spool_replay(world: World, pk: int) -> str:
    return f"{spool_replay()} settled"


def do_worker_death(world: World, pk: int) -> str:
    """A worker took the lease, sent the token, got the answer and died before storing it."""
    conn = Connection.objects.select_related("app").get(pk=pk)
    if conn.status not in (Status.ACTIVE, Status.FAILING) or not conn.refresh_token:
        return "skipped (not refreshable)"
    variant = world.rng.choice(["lease lapsed", "lease held", "no lease"])
    owner = f"dead-worker-{world.seed}-{world.step}"
    if variant != "no lease":
        if not lease.acquire(conn, owner=owner):
            return "skipped (leased)"
        world.dead_owners.add(owner)
    world.probe.local.dying = world.step
    try:
        provider_refresh(conn)
        answer = "answered"
    except oauth.ProviderError as exc:
        answer = f"refused: {exc.kind.value}"
    finally:
        world.probe.local.dying = None
    if variant == "lease lapsed":
        Connection.objects.filter(pk=pk, lease_owner=owner).update(
            lease_expires_at=timezone.now() - timedelta(seconds=5)
        )
    return f"{variant}, {answer}, answer dropped"


def do_concurrent(world: World, pk: int) -> str:
    """A refresh in flight against a slow provider while another step runs, its lease
    sometimes made to lapse meanwhile (a stalled worker)."""
    rng = world.rng
    slow = rng.choice(["latency", "trickle"])
    ms = rng.randint(150, 700)
    faults.inject(provider=world.provider, client_id=world.client_id, kind=slow, latency_ms=ms)
    back = rng.choice(["forced", "on_demand", "scheduled"])
    front = rng.choice(["forced", "on_demand", "scheduled", "disconnect", "reconnect"])
    front_pk = pk if rng.random() < 0.8 else rng.choice(world.conns)
    lapse = rng.random() < 0.5
    if back == "on_demand":
        expire_access_token(Connection(pk=pk))
        work = lambda: _token_outcome(world, pk)  # noqa: E731
    elif back == "scheduled":
        Connection.objects.filter(pk=pk).update(
            next_refresh_at=timezone.now() - timedelta(seconds=1)
        )
        work = lambda: connection_refresh(pk, reason="scheduled").value  # noqa: E731
    else:
        work = lambda: connection_refresh(pk, reason="manual", force=True).value  # noqa: E731
    worker = Background(back, work)
    worker.start()
    wait_for(lambda: world.inflight.count > 0 or not worker.is_alive(), timeout=5, every=0.005)
    lapsed = ""
    if lapse and worker.is_alive():
        row = Connection.objects.filter(pk=pk).values("lease_owner", "inflight_refresh_hash")[0]
        if row["lease_owner"] and Connection.objects.filter(
            pk=pk, lease_owner=row["lease_owner"]
        ).update(lease_expires_at=timezone.now() - timedelta(seconds=5)):
            world.lapsed[row["inflight_refresh_hash"]] += 1
            lapsed = ", lease lapsed"
    try:
        front_outcome = STEPS_ALONE[front](world, front_pk, alone=False)
    finally:
        worker.finish()
    if worker.error is not None:
        raise worker.error
    return (
        f"[{slow} {ms} ms] background {back} #{pk}{lapsed} -> {worker.result}; "
        f"{front} #{front_pk} -> {front_outcome}"
    )


def _token_outcome(world: World, pk: int) -> str:
    try:
        connection_token(pk, tenant_id=world.tenant_id, wait_seconds=1.0)
    except TokenUnavailable as exc:
        return f"unavailable: {exc.reason}"
    return "served"


def do_outage(world: World, pk: int) -> str:
    """The database refuses the portal's writes once the provider has the refresh in hand,
    for a little less (usually) or a little more than the store keeps retrying."""
    rng = world.rng
    ms = rng.randint(150, 350)
    faults.inject(provider=world.provider, client_id=world.client_id, kind="latency", latency_ms=ms)
    long = rng.random() < 0.3
    outage = rng.uniform(0.8, 1.1) if long else rng.uniform(0.05, 0.3)
    after = rng.choice(["nothing", "spool_replay", "forced", "on_demand"])
    finished = world.probe.finished[world.client_id]
    sent_hash = Connection.objects.filter(pk=pk).values_list("refresh_token_hash", flat=True)[0]
    worker = Background("refresh", lambda: connection_refresh(pk, reason="manual", force=True))
    worker.start()
    refused = False
    try:
        wait_for(lambda: world.inflight.count > 0 or not worker.is_alive(), timeout=5, every=0.005)
        if worker.is_alive():
            refuse_writes()
            refused = True
            wait_for(
                lambda: world.probe.finished[world.client_id] > finished or not worker.is_alive(),
                timeout=5,
                every=0.005,
            )
            time.sleep(outage)  # the outage itself: its length is what is modelled
    finally:
        accept_writes()
    try:
        then = STEPS_ALONE[after](world, pk, alone=False) if after != "nothing" else "-"
    finally:
        worker.finish()
    result = worker.result.value if worker.result is not None else None
    if worker.error is not None:
        if not (refused and isinstance(worker.error, DatabaseError | StoreFailed)):
            raise worker.error
        result = f"{type(worker.error).__name__}"
        spooled = StoreFailed in (type(worker.error), type(worker.error.__context__))
        if not spooled:
            # Like a worker dying before it stored: the answer (an invalid_grant, a 5xx...) is
            # not recorded, so the token may be presented once more. (StoreFailed spooled it,
            # even when the release that followed was refused too.)
            world.unrecorded[sent_hash] += 1
        # The refused database may have kept it from letting go of its lease.
        owner = Connection.objects.filter(pk=pk).values_list("lease_owner", flat=True)[0]
        if owner:
            world.excused_owners.add(owner)
    return (
        f"[latency {ms} ms] refresh #{pk}, writes refused {outage:.2f} s "
        f"({'longer' if long else 'shorter'} than the store retries) -> {result}; "
        f"then {after} -> {then}"
    )


STEPS_ALONE = {
    "forced": lambda world, pk, alone=True: do_forced(world, pk),
    "scheduled": lambda world, pk, alone=True: do_scheduled(world, pk),
    "on_demand": lambda world, pk, alone=True: do_on_demand(world, pk, alone=alone),
    "disconnect": lambda world, pk, alone=True: do_disconnect(world, pk, may_refuse=alone),
    "reconnect": lambda world, pk, alone=True: do_reconnect(world, pk),
    "spool_replay": lambda world, pk, alone=True: do_spool_replay(world, pk),
}
STEPS = {
    **STEPS_ALONE,
    "retry_revocations": do_retry_revocations,
    "worker_death": do_worker_death,
    "concurrent": do_concurrent,
    "outage": do_outage,
}


def liveness(world: World, kind: str, pk: int, fault: str, before: dict, outcome: str):
    """(d) a forced refresh of a healthy, unleased connection with no fault refreshes."""
    if kind != "forced" or fault or before["lease_owner"] or spooled_answers(world):
        return None
    if before["status"] not in (Status.ACTIVE, Status.FAILING):
        return None
    live = registry.live_refresh_tokens(world.provider, world.client_id)
    if outcome != Outcome.REFRESHED.value and before["refresh_token_hash"] in live:
        return f"(d) #{pk}: a forced refresh of a healthy connection ended {outcome}"
    return None


# --- Driving ---------------------------------------------------------------------------------


def normalized(text: str) -> str:
    """An outcome without its numbers and connection ids, for the soak's tally."""
    text = re.sub(r"\b[0-9a-f]{12}\b", "H", re.sub(r"#\d+", "#", text))
    return re.sub(r"\d+(\.\d+)?", "N", text)[:110]


def take_step(world: World) -> None:
    rng = world.rng
    kinds, weights = zip(*STEP_WEIGHTS.items(), strict=True)
    kind = rng.choices(kinds, weights)[0]
    pk = rng.choice(world.conns)
    revive = rng.random() < REVIVE_CHANCE
    before = Connection.objects.filter(pk=pk).values("status", "lease_owner", "refresh_token_hash")[
        0
    ]
    if revive and before["status"] in (Status.REVOKED, Status.NEEDS_REAUTH):
        kind = "reconnect"  # a person reconnects it, so most steps meet a live connection
    fault = ""
    if rng.random() < FAULT_CHANCE and kind in FAULT_STEPS:
        fault = world.inject(rng.choice(FAULT_KINDS))
    entry = f"{world.step:>4} {kind} #{pk}" + (f" [{fault}]" if fault else "")
    world.log.append(entry + " ...")
    started = time.monotonic()
    try:
        outcome = STEPS[kind](world, pk)
    except Broken:
        raise
    except Exception as exc:  # noqa: BLE001 - any other exception is a finding
        world.log[-1] = entry + f" -> raised {type(exc).__name__}"
        raise Broken(
            f"step {kind} raised {type(exc).__name__}: {exc}\n"
            + "".join(traceback.format_exception(exc)[-6:])
        ) from exc
    world.settle_provider()
    took = time.monotonic() - started
    world.stats.slowest_step = max(world.stats.slowest_step, took)
    world.log[-1] = f"{entry} -> {outcome} ({took:.2f} s)"
    world.stats.outcomes[f"{kind}: {normalized(outcome)}"] += 1
    faults.clear(provider=world.provider, client_id=world.client_id)
    problems = check(world)
    slow_step = liveness(world, kind, pk, fault, before, outcome)
    if slow_step:
        problems.append(slow_step)
    if problems:
        raise Broken(describe(world, problems))


def quiesce(world: World) -> None:
    """Everything the beat would do once the provider and the database behave, then the
    checks; then every connection is refreshed once more and checked with no excuses."""
    accept_writes()
    faults.clear(provider=world.provider, client_id=world.client_id)
    world.refuse_revocations(False)
    world.rows().filter(lease_owner__in=world.dead_owners | world.excused_owners).update(
        lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    for _ in range(8):
        settled = spool_replay()
        world.rows().filter(status=Status.REVOKED, revoke_retry_at__isnull=False).update(
            revoke_retry_at=timezone.now() - timedelta(seconds=1)
        )
        retried = tasks.retry_revocations()
        world.settle_provider()
        if not settled and not retried and not spooled_answers(world):
            break
    world.log.append("     quiescent: spool replayed, revocations retried")
    problems = check(world, phase="quiescent")
    if problems:
        raise Broken(describe(world, problems))
    # The next refresh of a connection whose token the provider spent unbeknown finds out.
    live = set(registry.live_refresh_tokens(world.provider, world.client_id))
    for row in world.rows().filter(status__in=[Status.ACTIVE, Status.FAILING]):
        outcome = connection_refresh(row.pk, reason="manual", force=True).value
        kind = "live" if row.refresh_token_hash in live else "spent"
        world.log.append(f"     final refresh #{row.pk} ({kind} token) -> {outcome}")
        if kind == "live" and outcome != Outcome.REFRESHED.value:
            raise Broken(describe(world, [f"(d) #{row.pk}: the final refresh ended {outcome}"]))
    world.settle_provider()
    problems = check(world, phase="final")
    if problems:
        raise Broken(describe(world, problems))


def run_example(seed: int, steps: int, *, make_sandbox_app, acme, alice, probe, inflight, stats):
    rng = random.Random(seed)
    provider = "manus" if seed % 2 else "manu_online"
    extra = {"rate_limit": HIGH_RATE, "rate_window": 60} if provider == "manus" else {}
    app = make_sandbox_app(provider, **extra)
    conns = []
    for _ in range(rng.randint(2, 3)):
        conn = factories.minted_connection(app, user=alice)
        assert conn.refresh_token_hash == registry.token_hash(conn.refresh_token)
        conns.append(conn.pk)
    world = World(
        seed=seed,
        rng=rng,
        app=app,
        tenant_id=acme.pk,
        user=alice,
        conns=conns,
        probe=probe,
        inflight=inflight,
        stats=stats,
    )
    stats.examples += 1
    try:
        for number in range(1, steps + 1):
            world.step = number
            take_step(world)
            stats.steps += 1
        world.step = steps
        quiesce(world)
    except Broken as exc:
        text = str(exc)
        if not text.startswith("model invariant broken"):
            text = describe(world, [text])
        raise Broken(text) from None
    finally:
        accept_writes()


def drop_spool() -> None:
    for entry in spool.entries():
        spool.drop(entry)


@pytest.fixture
def model(make_sandbox_app, acme, alice, settings, monkeypatch, live_server):
    settings.PROVIDER_DEADLINE = DEADLINE
    settings.PROVIDER_CONNECT_TIMEOUT = DEADLINE
    settings.PROVIDER_READ_TIMEOUT = DEADLINE
    settings.LEASE_MARGIN_SECONDS = LEASE_MARGIN
    settings.REFRESH_LEASE_SECONDS = LEASE_SECONDS
    settings.STORE_RETRY_SECONDS = STORE_RETRY
    settings.ON_DEMAND_REFRESH_FLOOR = 0
    monkeypatch.setattr(obtain, "RECONNECT_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(provider_calls, "INTERACTIVE_RATE_LIMIT_WAIT", 0.2)
    monkeypatch.setattr(refresh_module, "RATE_LIMIT_MAX_WAIT", 0.5)
    probe = Probe()
    probe.install(monkeypatch)
    httpd = live_server.thread.httpd
    inflight = InFlight(httpd.application)
    httpd.application = inflight
    drop_spool()  # answers left by an earlier run belong to rows that no longer exist
    try:
        yield {
            "make_sandbox_app": make_sandbox_app,
            "acme": acme,
            "alice": alice,
            "probe": probe,
            "inflight": inflight,
        }
    finally:
        accept_writes()
        httpd.application = inflight.application
        drop_spool()


def cases() -> list:
    if SOAK_STEPS:
        return ["soak"]
    if FIRST_SEED:
        return [int(FIRST_SEED)]
    return list(CI_SEEDS)


@pytest.mark.parametrize("case", cases())
def test_the_engine_keeps_its_invariants_under_random_steps(case, model):
    stats = Stats()
    if case == "soak":
        seed = int(FIRST_SEED or 1)
        while stats.steps < SOAK_STEPS:
            steps = min(EXAMPLE_STEPS, SOAK_STEPS - stats.steps)
            try:
                run_example(seed, steps, stats=stats, **model)
            except Broken as exc:
                stats.broken += 1
                stats.reports.append(str(exc))
                print(f"\n{exc}\n", flush=True)
            seed += 1
    else:
        try:
            run_example(case, EXAMPLE_STEPS, stats=stats, **model)
        except Broken as exc:
            stats.broken += 1
            stats.reports.append(str(exc))
    print(
        f"\nmodel: {stats.steps} steps, {stats.checks} checks, {stats.broken} broken "
        f"({stats.examples} examples; most presentations of one token {stats.most_presented}; "
        f"at most {stats.lost_by_worker_death} grants lost by a worker death and "
        f"{stats.lost_in_transit} lost in transit live at once, reported; slowest step "
        f"{stats.slowest_step:.2f} s)",
        flush=True,
    )
    if stats.most_presented_why:
        print(f"most presented token, what the portal got each time: {stats.most_presented_why}")
    if SOAK_STEPS:
        print("steps taken, by kind and outcome:")
        for name, count in sorted(stats.outcomes.items()):
            print(f"  {count:>6}  {name}")
        broken = Counter(normalized(report.splitlines()[1].strip()) for report in stats.reports)
        for problem, count in broken.most_common():
            print(f"  broken {count:>4}x: {problem}")
    if stats.reports:
        pytest.fail(stats.reports[0], pytrace=False)

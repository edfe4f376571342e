"""The event store: one table that is both the source of truth and the relay's outbox.

Snapshots (`snapshots` table) are a cache of a stream's folded state, never a source of truth:
`load_state` folds only the events after the stream's snapshot, and a snapshot whose fingerprint
(the evolve function's module source and the upcasters) no longer matches the code is ignored.

Appends take a transaction-level advisory lock before inserting, so global positions are
allocated and committed in order: a reader that has seen position N will never later find a
committed event below N. Rolled-back inserts leave gaps in the sequence; readers only ever ask
for "greater than", so gaps are harmless.
"""
import dataclasses
import hashlib
import json
import inspect
import logging
import pickle
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import (
    DDL, BigInteger, Column, Date, DateTime, Identity, Index, Integer, LargeBinary, MetaData, Table, Text,
    UniqueConstraint, func, select,
)
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Session

import psycopg2
from psycopg2.extras import execute_values
from nameko.exceptions import deserialize_to_instance
from sqlalchemy.exc import DBAPIError

from .errors import Conflict
from .events import StoredEvent

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("global_position", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("stream_type", Text, nullable=False),
    Column("stream_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False, server_default="1"),
    Column("payload", JSONB, nullable=False),
    Column("metadata", JSONB, nullable=False, server_default="{}"),
    Column("occurred_on", Date),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("stream_type", "stream_id", "version", name="uq_events_stream_version"),
    # Declared as the first migration creates it (tests/service/test_migrations_match_tables.py).
    Index("ix_events_type", "event_type"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("key", Text, primary_key=True),
    Column("command_type", Text, nullable=False),
    Column("result", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_idempotency_keys_recorded_at", "recorded_at"),
)

relay_checkpoint = Table(
    "relay_checkpoint", metadata,
    Column("name", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

inbox = Table(
    "inbox", metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("source", Text, nullable=False),
    Column("global_position", BigInteger, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_inbox_applied_at", "applied_at"),
)

# Events a consumer could not apply: set aside (with the error) instead of retried forever, so
# the rest of their source keeps flowing; counted in fupin_events_quarantined_total (alerted).
quarantine = Table(
    "quarantine", metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("source", Text, nullable=False),
    Column("global_position", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("envelope", JSONB, nullable=False),
    Column("error", Text, nullable=False),
    Column("quarantined_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

consumer_checkpoints = Table(
    "consumer_checkpoints", metadata,
    Column("source", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# The folded state of a long stream at `version`, pickled; written by the command that takes the
# stream SNAPSHOT_EVERY events past its last snapshot (in that command's transaction).
snapshots = Table(
    "snapshots", metadata,
    Column("stream_type", Text, primary_key=True),
    Column("stream_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

APPEND_LOCK = "fupin.events.append"

# The command path's server-side functions (see _LOAD_STREAM, _APPEND_EVENTS). Every service's
# `*_store_functions` migration creates them, as does metadata.create_all (test-only services).
# fupin_load_stream: the stream's lock (the key lock_stream takes), then its snapshot if taken by
# the same code (fingerprint), the last event id of each `heads` stream, and the events after the
# snapshot: a first row with the snapshot and heads, then one row per event.
# fupin_stream_key(type, id): what a stream type's payload codec needs to open it (a household's
# wrapped data key), read under the stream's lock in the same call; NULL (the default, which a
# service with a codec replaces in a migration of its own) means "read it yourself".
# fupin_append_events: the append lock (when asked: once per transaction), then the rows, which
# draw their positions in version order under it; returns (position, version, recorded_at).
STORE_FUNCTIONS = """
DROP FUNCTION IF EXISTS fupin_load_stream(text, text, text, text[], text[]);

DO $do$ BEGIN
    IF to_regprocedure('fupin_stream_key(text, text)') IS NULL THEN
        CREATE FUNCTION fupin_stream_key(p_type text, p_id text) RETURNS text LANGUAGE sql STABLE
            AS 'SELECT NULL::text';
    END IF;
END $do$;

CREATE OR REPLACE FUNCTION fupin_load_stream(p_type text, p_id text, p_fingerprint text, p_head_types text[],
                                             p_head_ids text[])
RETURNS TABLE (o_global_position bigint, o_event_id text, o_stream_type text, o_stream_id text, o_version int,
               o_event_type text, o_schema_version int, o_payload jsonb, o_metadata jsonb, o_occurred_on date,
               o_recorded_at timestamptz, o_snapshot_version int, o_snapshot_state bytea, o_heads text[],
               o_stream_key text)
LANGUAGE plpgsql AS $$
DECLARE
    snapshot_version int;
    snapshot_state bytea;
    last_ids text[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_type || ':' || p_id));
    SELECT s.version, s.state INTO snapshot_version, snapshot_state FROM snapshots AS s
     WHERE s.stream_type = p_type AND s.stream_id = p_id AND s.fingerprint = p_fingerprint;
    SELECT coalesce(array_agg((SELECT e.event_id::text FROM events AS e WHERE e.stream_type = h.t AND e.stream_id = h.i
                               ORDER BY e.version DESC LIMIT 1) ORDER BY h.n), '{}')
      INTO last_ids FROM unnest(p_head_types, p_head_ids) WITH ORDINALITY AS h(t, i, n);
    RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::int, NULL::text, NULL::int,
                        NULL::jsonb, NULL::jsonb, NULL::date, NULL::timestamptz, snapshot_version, snapshot_state,
                        last_ids, fupin_stream_key(p_type, p_id);
    RETURN QUERY SELECT e.global_position, e.event_id::text, e.stream_type, e.stream_id, e.version, e.event_type,
                        e.schema_version, e.payload, e.metadata, e.occurred_on, e.recorded_at, NULL::int,
                        NULL::bytea, NULL::text[], NULL::text
                   FROM events AS e
                  WHERE e.stream_type = p_type AND e.stream_id = p_id AND e.version > coalesce(snapshot_version, 0)
                  ORDER BY e.version;
END $$;

CREATE OR REPLACE FUNCTION fupin_append_events(p_lock boolean, p_event_ids uuid[], p_type text, p_id text,
                                               p_versions int[], p_types text[], p_schema_versions int[],
                                               p_payloads jsonb[], p_metadata jsonb, p_occurred date[])
RETURNS TABLE (o_global_position bigint, o_version int, o_recorded_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_lock THEN
        PERFORM pg_advisory_xact_lock(hashtext('$APPEND_LOCK'));
    END IF;
    RETURN QUERY
    INSERT INTO events AS e (event_id, stream_type, stream_id, version, event_type, schema_version, payload, metadata,
                             occurred_on)
    SELECT n.event_id, p_type, p_id, n.version, n.event_type, n.schema_version, n.payload, p_metadata, n.occurred_on
      FROM unnest(p_event_ids, p_versions, p_types, p_schema_versions, p_payloads, p_occurred)
           AS n(event_id, version, event_type, schema_version, payload, occurred_on)
     ORDER BY n.version
    RETURNING e.global_position, e.version, e.recorded_at;
END $$;
""".replace("$APPEND_LOCK", APPEND_LOCK)
sa_event.listen(metadata, "after_create", DDL(STORE_FUNCTIONS))

# Every service's first migration creates these (its later event-store revisions the quarantine
# and the snapshots); read models come in later revisions.
EVENT_STORE_TABLES = (events, idempotency_keys, relay_checkpoint, inbox, consumer_checkpoints, quarantine,
                      snapshots)

# Stream types whose fold keeps where its events landed (global_position, recorded_at): a command
# writes their events at once instead of just before its commit (commands.Streams), so the state
# it folds and answers with has them.
WRITTEN_AT_ONCE: set[str] = set()

# A command folding this many events or more past the stream's snapshot writes a new one.
SNAPSHOT_EVERY = 25

log = logging.getLogger(__name__)


# Old payload versions are upcast here when read, never rewritten in the table:
# {(event_type, from_version): function(payload) -> payload of from_version + 1}.
UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {}


class PayloadCodec(Protocol):
    """Seals payloads of one stream type on append and opens them on load, e.g. encrypting
    personal fields (services/common/crypto.py). Both take and return a list of payloads."""

    def seal(self, session: Any, stream_id: str, payloads: list[dict]) -> list[dict]: ...

    def open(self, session: Any, stream_id: str, payloads: list[dict]) -> list[dict]: ...

    # Optional (EventStore looks them up with getattr): seal_snapshot(session, stream_id, data:
    # bytes) -> bytes | None and open_snapshot(...) -> bytes | None; without them the stream type
    # is never snapshotted. prefetched_key(session, stream_id, text): what fupin_stream_key read
    # for the stream under its lock, to use in this transaction instead of reading it again.


# {stream_type: codec}, installed by the service owning the stream type at start. `load` and
# `append` hand back opened payloads; `events_since` (the relay, consumers, rebuilds) the stored,
# sealed ones, so what leaves the service over RabbitMQ stays sealed too.
PAYLOAD_CODECS: dict[str, PayloadCodec] = {}


@deserialize_to_instance
class ConcurrencyConflict(Conflict):
    """Someone else appended to the stream since it was loaded."""


class LockOrderViolation(RuntimeError):
    """A stream lock asked for after this transaction took the append lock: the reverse of the
    order every other writer takes them in (stream locks, then the append lock), which is how two
    commands deadlock. A bug in the command, caught on its first run."""


# The hot statements (lock, load, snapshot, append) run on the session's driver cursor: through
# SQLAlchemy's statement layer each cost about 70 µs of Python on top of a 20 µs round trip, the
# larger part of a command (issue 17's profile). They stay inside the session's transaction.
_COLUMNS = ("global_position, event_id::text, stream_type, stream_id, version, event_type, schema_version, "
            "payload, metadata, occurred_on, recorded_at")
_INSERT_COLUMNS = "event_id, stream_type, stream_id, version, event_type, schema_version, payload, metadata, occurred_on"
_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"
_SNAPSHOT = "SELECT version, fingerprint, state FROM snapshots WHERE stream_type = %s AND stream_id = %s"
_LOAD_AFTER = f"SELECT {_COLUMNS} FROM events WHERE stream_type = %s AND stream_id = %s AND version > %s ORDER BY version"
# The command path's two statements, as server-side functions (STORE_FUNCTIONS): PL/pgSQL keeps
# their plans per connection, and each statement in them sees what committed while it waited for
# a lock; as separate statements the lock, snapshot and load took three round trips and planned
# each time (issue 17's profile).
_LOAD_STREAM = "SELECT * FROM fupin_load_stream(%s, %s, %s, %s::text[], %s::text[])"
_APPEND_EVENTS = ("SELECT * FROM fupin_append_events(%s, %s::uuid[], %s, %s, %s::int[], %s::text[], %s::int[], "
                  "%s::jsonb[], %s::jsonb, %s::date[])")
# A command's idempotency key, on the driver cursor like the statements above (each was ~8 % of
# the registry's CPU through SQLAlchemy's statement layer under load, issue 17's profile).
_REMEMBERED = "SELECT command_type, result FROM idempotency_keys WHERE key = %s"
_REMEMBER = "INSERT INTO idempotency_keys (key, command_type, result) VALUES (%s, %s, %s::jsonb)"
_ALL_OF_TYPE = f"SELECT {_COLUMNS} FROM events WHERE stream_type = %s ORDER BY global_position"
_SINCE = f"SELECT {_COLUMNS} FROM events WHERE global_position > %s ORDER BY global_position LIMIT %s"
_SAVE_SNAPSHOT = (
    "INSERT INTO snapshots (stream_type, stream_id, version, fingerprint, state) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = excluded.version, "
    "fingerprint = excluded.fingerprint, state = excluded.state, taken_at = now() "
    "WHERE snapshots.version < excluded.version"
)


def _row_to_event(row: Any) -> StoredEvent:
    """A StoredEvent from a row of `_COLUMNS`, its payload upcast to the newest schema version."""
    (global_position, event_id, stream_type, stream_id, version, event_type, schema_version, payload, metadata,
     occurred_on, recorded_at) = row
    while (event_type, schema_version) in UPCASTERS:
        payload = UPCASTERS[(event_type, schema_version)](payload)
        schema_version += 1
    return StoredEvent(
        global_position=global_position,
        event_id=event_id,
        stream_type=stream_type,
        stream_id=stream_id,
        version=version,
        type=event_type,
        schema_version=schema_version,
        payload=payload,
        metadata=metadata,
        occurred_on=occurred_on.isoformat() if occurred_on else None,
        recorded_at=recorded_at.isoformat() if recorded_at else None,
    )


@dataclass
class LoadedStream:
    """A stream folded for a command: `state` after `version` events, of which the ones after
    `snapshot_version` were read and folded one by one (the rest came from the snapshot);
    `heads`: the last event id (None: no events) of each stream the caller asked about."""

    state: Any
    version: int
    snapshot_version: int = 0
    heads: dict[tuple[str, str], str | None] = dataclasses.field(default_factory=dict)

    @property
    def folded(self) -> int:
        return self.version - self.snapshot_version


@dataclass
class PreparedAppend:
    """An append built but not sent (EventStore.prepare, then write): `events` as a later load
    returns them, but for their positions."""

    stream_type: str
    stream_id: str
    payloads: list[dict]
    payload_texts: list[str] | None  # None for a sealed stream type: sealed when written
    metadata_text: str
    occurred: list[Any]
    events: list[StoredEvent]


_fingerprints: dict[Any, str] = {}


def snapshot_fingerprint(evolve: Callable[..., Any]) -> str:
    """What a snapshot's state depends on besides the events: the source of the module defining
    `evolve` (the state's classes live beside it) and the upcasters. Any change to either makes
    every older snapshot of this evolve function stale, and `load_state` then ignores it."""
    cache_key = (evolve, tuple(UPCASTERS.items()))
    known = _fingerprints.get(cache_key)
    if known is not None:
        return known
    module = inspect.getmodule(evolve)
    code = getattr(evolve, "__code__", None)  # two lambdas in one function share a qualname, not a line
    digest = hashlib.sha256(f"{evolve.__module__}.{evolve.__qualname__}:{getattr(code, 'co_firstlineno', 0)}".encode())
    digest.update(inspect.getsource(module).encode() if module is not None else b"")
    for key in sorted(UPCASTERS):
        digest.update(repr(key).encode())
        try:
            digest.update(inspect.getsource(UPCASTERS[key]).encode())
        except (OSError, TypeError):
            digest.update(repr(UPCASTERS[key]).encode())
    fingerprint = f"{evolve.__qualname__}:{digest.hexdigest()[:24]}"
    _fingerprints[cache_key] = fingerprint
    return fingerprint


def _as_date(value: Any) -> Any:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


class EventStore:
    """Operations on the event store inside the caller's transaction (a SQLAlchemy Session)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.holds_append_lock = False

    def _cursor(self) -> Any:
        """A driver cursor on the session's connection, inside the session's transaction."""
        return self.session.connection().connection.cursor()

    def _execute(self, sql: Any, params: Any) -> Any:
        """Run one statement on the driver cursor. A driver error is raised as SQLAlchemy raises
        it through the session (IntegrityError, OperationalError, ... with the driver's error as
        `.orig`), which the retries on conflicts, deadlocks and lock timeouts rely on; a lost
        connection is invalidated, so the pool does not hand it out again."""
        connection = self.session.connection()
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, params)
        except psycopg2.Error as exc:
            invalidated = connection.dialect.is_disconnect(exc, connection.connection, cursor)
            if invalidated:
                connection.invalidate(exc)
            raise DBAPIError.instance(sql, params, exc, psycopg2.Error,
                                      connection_invalidated=invalidated) from exc
        return cursor

    def execute_values(self, sql: str, rows: list[tuple[Any, ...]], template: str | None = None,
                       fetch: bool = False) -> list[Any]:
        """`INSERT ... VALUES %s` of many rows in one statement on the driver cursor (psycopg2's
        execute_values), errors raised as `_execute` raises them. SQLAlchemy compiles a multi-row
        insert anew every time (its cache cannot hold one per row count): in a replay of a million
        events that compiling was 41% of the assessment's time (issue 17's profile)."""
        connection = self.session.connection()
        cursor = connection.connection.cursor()
        try:
            return execute_values(cursor, sql, rows, template=template, page_size=max(len(rows), 1),
                                  fetch=fetch) or []
        except psycopg2.Error as exc:
            invalidated = connection.dialect.is_disconnect(exc, connection.connection, cursor)
            if invalidated:
                connection.invalidate(exc)
            raise DBAPIError.instance(sql, rows[:1], exc, psycopg2.Error, connection_invalidated=invalidated) from exc

    def lock_stream(self, stream_type: str, stream_id: str) -> None:
        """Serialise writers of one stream until this transaction ends, so busy streams
        queue up instead of failing on the version constraint (which stays as the guard).

        Lock order, for every writer: the idempotency key, then stream locks, then the append
        lock. A stream lock after an append would be the reverse, so it is refused outright."""
        if self.holds_append_lock:
            raise LockOrderViolation(
                f"lock_stream({stream_type!r}, {stream_id!r}) after an append in the same transaction; "
                "lock every stream first (Streams.lock)"
            )
        self._execute(_LOCK, (f"{stream_type}:{stream_id}",))

    def lock_streams(self, keys: Iterable[tuple[str, str]]) -> None:
        """Lock several (stream_type, stream_id) in one global order (sorted), so two commands
        touching the same streams queue instead of deadlocking."""
        for stream_type, stream_id in sorted(set(keys)):
            self.lock_stream(stream_type, stream_id)

    def lock_idempotency_key(self, key: str) -> None:
        """Taken before the key is looked up: a concurrent retry of the same request waits for
        the first to commit and then gets its result, instead of running (and refusing) again."""
        self._execute(_LOCK, (f"fupin.idempotency:{key}",))

    def load(self, stream_type: str, stream_id: str) -> list[StoredEvent]:
        return self.load_after(stream_type, stream_id, 0)

    def load_all(self, stream_type: str) -> list[StoredEvent]:
        """Every stream of one type, in position order (a few small streams, e.g. months)."""
        return [_row_to_event(row) for row in self._execute(_ALL_OF_TYPE, (stream_type,))]

    def load_after(self, stream_type: str, stream_id: str, version: int) -> list[StoredEvent]:
        """The stream's events after `version`, in order, their payloads opened by the stream
        type's codec if it has one."""
        rows = self._execute(_LOAD_AFTER, (stream_type, stream_id, version))
        return self._opened(stream_type, stream_id, [_row_to_event(row) for row in rows])

    def _opened(self, stream_type: str, stream_id: str, loaded: list[StoredEvent]) -> list[StoredEvent]:
        codec = PAYLOAD_CODECS.get(stream_type)
        if codec is None or not loaded:
            return loaded
        opened = codec.open(self.session, stream_id, [event.payload for event in loaded])
        return [event if payload is event.payload else dataclasses.replace(event, payload=payload)
                for event, payload in zip(loaded, opened)]

    def load_state(self, stream_type: str, stream_id: str, evolve: Callable[[Any, StoredEvent], Any],
                   initial: Any = None, lock: bool = False, heads: Iterable[tuple[str, str]] = ()) -> LoadedStream:
        """The stream folded with `evolve`: from its snapshot when one matches the code, then only
        the later events. `evolve` may mutate the state it is given (the snapshot is unpickled
        fresh for each call, so the caller owns the state).

        `lock=True` takes `lock_stream`'s lock, then reads the snapshot and the events, in one
        round trip (`fupin_load_stream`), along with the last event id of each stream in `heads`
        (`LoadedStream.heads`), for a caller that keeps their folds cached.
        """
        if not lock:
            row = self._execute(_SNAPSHOT, (stream_type, stream_id)).fetchone()
            fingerprint = snapshot_fingerprint(evolve)
            snapshot = (row[0], row[2]) if row is not None and row[1] == fingerprint else None
            return self._fold(stream_type, stream_id, evolve, initial, snapshot, None, {})
        if self.holds_append_lock:
            raise LockOrderViolation(
                f"load_state({stream_type!r}, {stream_id!r}, lock=True) after an append in the same "
                "transaction; lock every stream first (Streams.lock)")
        heads = list(heads)
        rows = self._execute(_LOAD_STREAM, (stream_type, stream_id, snapshot_fingerprint(evolve),
                                            [t for t, _ in heads], [i for _, i in heads])).fetchall()
        header = rows[0]
        if header[14] is not None:  # the codec's key, read with the stream (fupin_stream_key)
            getattr(PAYLOAD_CODECS.get(stream_type), "prefetched_key", lambda *args: None)(
                self.session, stream_id, header[14])
        snapshot = (header[11], header[12]) if header[11] is not None else None
        return self._fold(stream_type, stream_id, evolve, initial, snapshot, [row[:11] for row in rows[1:]],
                          dict(zip(heads, header[13])))

    def _fold(self, stream_type: str, stream_id: str, evolve: Callable[[Any, StoredEvent], Any], initial: Any,
              snapshot: tuple[int, Any] | None, rows: list[Any] | None, heads: dict[tuple[str, str], str | None],
              ) -> LoadedStream:
        """Fold from `snapshot` ((version, sealed state) or None) and the event `rows` after it
        (None: read them now); a snapshot that cannot be opened is dropped for the whole stream."""
        state, snapshot_version = initial, 0
        if snapshot is not None:
            try:
                pickled = self._open_snapshot(stream_type, stream_id, bytes(snapshot[1]))
                if pickled is not None:
                    state, snapshot_version = pickle.loads(pickled), snapshot[0]
            except Exception:  # noqa: BLE001 - a snapshot is only a cache: fold from the start
                log.warning("unreadable snapshot of %s %s; folding its whole stream", stream_type, stream_id)
                state, snapshot_version = initial, 0
            if snapshot_version == 0:
                rows = None  # the rows read were those after the snapshot: read the whole stream
        loaded = (self.load_after(stream_type, stream_id, snapshot_version) if rows is None
                  else self._opened(stream_type, stream_id, [_row_to_event(row) for row in rows]))
        version = snapshot_version
        for event in loaded:
            state = evolve(state, event)
            version = event.version
        return LoadedStream(state, version, snapshot_version, heads)

    def save_snapshot(self, stream_type: str, stream_id: str, version: int, state: Any,
                      evolve: Callable[..., Any]) -> None:
        """Record `state` as the stream folded with `evolve` up to `version` (in the caller's
        transaction, so it commits or rolls back with the events it summarises)."""
        try:
            data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):  # a state that cannot be kept: fold it each time
            log.warning("the state of %s %s cannot be pickled; no snapshot", stream_type, stream_id, exc_info=True)
            return
        pickled = self._seal_snapshot(stream_type, stream_id, data)
        if pickled is None:
            return
        self._execute(_SAVE_SNAPSHOT, (stream_type, stream_id, version, snapshot_fingerprint(evolve),
                                       psycopg2.Binary(pickled)))

    # A stream type with a payload codec holds personal data: its snapshots are sealed whole by the
    # codec's seal_snapshot/open_snapshot (bytes -> bytes, None when it cannot, e.g. an erased
    # key), and a codec without them gets no snapshots at all, so no plaintext lands at rest.
    def _seal_snapshot(self, stream_type: str, stream_id: str, data: bytes) -> bytes | None:
        codec = PAYLOAD_CODECS.get(stream_type)
        if codec is None:
            return data
        seal = getattr(codec, "seal_snapshot", None)
        return None if seal is None else seal(self.session, stream_id, data)

    def _open_snapshot(self, stream_type: str, stream_id: str, data: bytes) -> bytes | None:
        codec = PAYLOAD_CODECS.get(stream_type)
        if codec is None:
            return data
        opener = getattr(codec, "open_snapshot", None)
        return None if opener is None else opener(self.session, stream_id, data)

    def snapshot_if_due(self, stream_type: str, stream_id: str, loaded: LoadedStream, state: Any, version: int,
                        evolve: Callable[..., Any]) -> None:
        """After a command appended up to `version`: snapshot `state` when the stream has grown
        SNAPSHOT_EVERY events or more past the snapshot it was `loaded` from."""
        if version - loaded.snapshot_version >= SNAPSHOT_EVERY and state is not None:
            self.save_snapshot(stream_type, stream_id, version, state, evolve)

    def stream_version(self, stream_type: str, stream_id: str) -> Any:
        return self.session.execute(
            select(func.coalesce(func.max(events.c.version), 0)).where(
                events.c.stream_type == stream_type, events.c.stream_id == stream_id
            )
        ).scalar_one()

    def append(self, stream_type: str, stream_id: str, expected_version: int, new_events: list[Any],
               metadata: dict[str, Any] | None = None) -> list[StoredEvent]:
        """Append `new_events` after `expected_version`; returns the StoredEvents.

        Raises ConcurrencyConflict (via the unique constraint) when the stream moved on; the
        caller's transaction must then be rolled back.
        """
        if not new_events:
            return []
        return self.write(self.prepare(stream_type, stream_id, expected_version, new_events, metadata))

    def prepare(self, stream_type: str, stream_id: str, expected_version: int, new_events: list[Any],
                metadata: dict[str, Any] | None = None) -> "PreparedAppend":
        """Everything an append needs but its positions, with no statement sent: `write` sends it.
        Its `events` are what a later load returns, but for global_position (0) and recorded_at
        (None), which only the write assigns."""
        codec = PAYLOAD_CODECS.get(stream_type)
        payloads = [event.payload for event in new_events]
        metadata_text = json.dumps(metadata or {})
        payload_texts = None if codec is not None else [json.dumps(payload) for payload in payloads]
        versions = list(range(expected_version + 1, expected_version + 1 + len(new_events)))
        event_ids = [str(uuid.uuid4()) for _ in new_events]
        occurred = [_as_date(event.occurred_on) for event in new_events]
        stored_metadata = json.loads(metadata_text)
        provisional = [
            StoredEvent(
                global_position=0, event_id=event_id, stream_type=stream_type, stream_id=stream_id,
                version=version, type=event.type, schema_version=event.schema_version,
                # what a later load returns: the JSON of the payload (opened, for a sealed stream type)
                payload=payload if payload_texts is None else json.loads(payload_texts[index]),
                metadata=stored_metadata, occurred_on=day.isoformat() if day else None, recorded_at=None)
            for index, (event_id, version, event, payload, day)
            in enumerate(zip(event_ids, versions, new_events, payloads, occurred))
        ]
        return PreparedAppend(stream_type, stream_id, payloads, payload_texts, metadata_text, occurred, provisional)

    def write(self, prepared: "PreparedAppend") -> list[StoredEvent]:
        """Send a prepared append (taking the append lock, once per transaction); returns its events
        with their positions and recording time."""
        codec = PAYLOAD_CODECS.get(prepared.stream_type)
        payload_texts = prepared.payload_texts
        if payload_texts is None:  # sealed now, under the stream's lock, in the transaction that commits them
            assert codec is not None  # noqa: S101 - prepare leaves the texts out only for a sealed type
            payload_texts = [json.dumps(payload)
                             for payload in codec.seal(self.session, prepared.stream_id, prepared.payloads)]
        events_ = prepared.events
        rows = self._execute(_APPEND_EVENTS, (
            not self.holds_append_lock, [e.event_id for e in events_], prepared.stream_type, prepared.stream_id,
            [e.version for e in events_], [e.type for e in events_], [e.schema_version for e in events_],
            payload_texts, prepared.metadata_text, prepared.occurred)).fetchall()
        self.holds_append_lock = True
        written = {version: (position, recorded_at) for position, version, recorded_at in rows}
        return [dataclasses.replace(event, global_position=written[event.version][0],
                                    recorded_at=written[event.version][1].isoformat()) for event in events_]

    def events_since(self, position: int, limit: int = 500) -> list[StoredEvent]:
        return [_row_to_event(row) for row in self._execute(_SINCE, (position, limit))]

    def head_position(self) -> Any:
        return self.session.execute(
            select(func.coalesce(func.max(events.c.global_position), 0))
        ).scalar_one()

    def remembered_result(self, key: str, command_type: str) -> Any:
        row = self._execute(_REMEMBERED, (key,)).fetchone()
        if row is None:
            return None
        first_used_for, result = row
        if first_used_for != command_type:
            raise Conflict(
                "this Idempotency-Key was already used for a different request",
                {"idempotency_key": key, "first_used_for": first_used_for},
            )
        return result

    def remember_result(self, key: str, command_type: str, result: Any) -> None:
        self._execute(_REMEMBER, (key, command_type, json.dumps(result)))

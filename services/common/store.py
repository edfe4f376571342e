"""The event store: one table that is both the source of truth and the relay's outbox.

Appends take a transaction-level advisory lock before inserting, so global positions are
allocated and committed in order: a reader that has seen position N will never later find a
committed event below N. Rolled-back inserts leave gaps in the sequence; readers only ever ask
for "greater than", so gaps are harmless.
"""
import dataclasses
import uuid
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger, Column, Date, DateTime, Identity, Index, Integer, MetaData, Table, Text,
    UniqueConstraint, func, insert, select, text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from nameko.exceptions import deserialize_to_instance

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

# Every service's first migration creates these; read models come in later revisions.
EVENT_STORE_TABLES = (events, idempotency_keys, relay_checkpoint, inbox, consumer_checkpoints, quarantine)

APPEND_LOCK = "fupin.events.append"

# Old payload versions are upcast here when read, never rewritten in the table:
# {(event_type, from_version): function(payload) -> payload of from_version + 1}.
UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {}


class PayloadCodec(Protocol):
    """Seals payloads of one stream type on append and opens them on load, e.g. encrypting
    personal fields (services/common/crypto.py). Both take and return a list of payloads."""

    def seal(self, session: Any, stream_id: str, payloads: list[dict]) -> list[dict]: ...

    def open(self, session: Any, stream_id: str, payloads: list[dict]) -> list[dict]: ...


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


def _lock_key(name: str) -> Any:
    return text("SELECT pg_advisory_xact_lock(hashtext(:k))").bindparams(k=name)


def _row_to_event(row: Any) -> Any:
    payload, version = row.payload, row.schema_version
    while (row.event_type, version) in UPCASTERS:
        payload = UPCASTERS[(row.event_type, version)](payload)
        version += 1
    return StoredEvent(
        global_position=row.global_position,
        event_id=str(row.event_id),
        stream_type=row.stream_type,
        stream_id=row.stream_id,
        version=row.version,
        type=row.event_type,
        schema_version=version,
        payload=payload,
        metadata=row.metadata,
        occurred_on=row.occurred_on.isoformat() if row.occurred_on else None,
        recorded_at=row.recorded_at.isoformat() if row.recorded_at else None,
    )


def _as_date(value: Any) -> Any:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


class EventStore:
    """Operations on the event store inside the caller's transaction (a SQLAlchemy Session)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.holds_append_lock = False

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
        self.session.execute(_lock_key(f"{stream_type}:{stream_id}"))

    def lock_streams(self, keys: Iterable[tuple[str, str]]) -> None:
        """Lock several (stream_type, stream_id) in one global order (sorted), so two commands
        touching the same streams queue instead of deadlocking."""
        for stream_type, stream_id in sorted(set(keys)):
            self.lock_stream(stream_type, stream_id)

    def lock_idempotency_key(self, key: str) -> None:
        """Taken before the key is looked up: a concurrent retry of the same request waits for
        the first to commit and then gets its result, instead of running (and refusing) again."""
        self.session.execute(_lock_key(f"fupin.idempotency:{key}"))

    def load(self, stream_type: str, stream_id: str) -> Any:
        rows = self.session.execute(
            select(events)
            .where(events.c.stream_type == stream_type, events.c.stream_id == stream_id)
            .order_by(events.c.version)
        )
        loaded = [_row_to_event(row) for row in rows]
        codec = PAYLOAD_CODECS.get(stream_type)
        if codec is None or not loaded:
            return loaded
        opened = codec.open(self.session, stream_id, [event.payload for event in loaded])
        return [dataclasses.replace(event, payload=payload) for event, payload in zip(loaded, opened)]

    def load_all(self, stream_type: str) -> Any:
        """Every stream of one type, in position order (a few small streams, e.g. months)."""
        rows = self.session.execute(
            select(events).where(events.c.stream_type == stream_type).order_by(events.c.global_position)
        )
        return [_row_to_event(row) for row in rows]

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
        codec = PAYLOAD_CODECS.get(stream_type)
        payloads = [event.payload for event in new_events]
        sealed = codec.seal(self.session, stream_id, payloads) if codec is not None else payloads
        if not self.holds_append_lock:
            self.session.execute(_lock_key(APPEND_LOCK))
            self.holds_append_lock = True
        rows = [
            {
                "event_id": str(uuid.uuid4()),
                "stream_type": stream_type,
                "stream_id": stream_id,
                "version": expected_version + offset,
                "event_type": event.type,
                "schema_version": event.schema_version,
                "payload": sealed[offset - 1],
                "metadata": metadata or {},
                "occurred_on": _as_date(event.occurred_on),
            }
            for offset, event in enumerate(new_events, start=1)
        ]
        stored = [_row_to_event(row) for row in self.session.execute(insert(events).returning(*events.c), rows)]
        if codec is None:
            return stored
        by_version = {expected_version + offset: payload for offset, payload in enumerate(payloads, start=1)}
        return [dataclasses.replace(event, payload=by_version[event.version]) for event in stored]

    def events_since(self, position: int, limit: int = 500) -> Any:
        rows = self.session.execute(
            select(events).where(events.c.global_position > position)
            .order_by(events.c.global_position).limit(limit)
        )
        return [_row_to_event(row) for row in rows]

    def head_position(self) -> Any:
        return self.session.execute(
            select(func.coalesce(func.max(events.c.global_position), 0))
        ).scalar_one()

    def remembered_result(self, key: str, command_type: str) -> Any:
        row = self.session.execute(
            select(idempotency_keys).where(idempotency_keys.c.key == key)
        ).first()
        if row is None:
            return None
        if row.command_type != command_type:
            raise Conflict(
                "this Idempotency-Key was already used for a different request",
                {"idempotency_key": key, "first_used_for": row.command_type},
            )
        return row.result

    def remember_result(self, key: str, command_type: str, result: Any) -> None:
        self.session.execute(
            pg_insert(idempotency_keys).values(key=key, command_type=command_type, result=result)
        )

"""Handling one command: idempotency, load, decide, append, project, remember, commit.

The whole of it is one transaction, so a refused or failed command writes nothing and a
read model never disagrees with the events it was built from.
"""
import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from .errors import Conflict, FupinError, ServiceUnavailable
from .events import NewEvent, StoredEvent
from .metrics import APPEND_SECONDS, COMMANDS, TRANSACTION_RETRIES
from .store import WRITTEN_AT_ONCE, ConcurrencyConflict, EventStore, LoadedStream, PreparedAppend

RETRIES_ON_CONFLICT = 5
# PostgreSQL's "try again" answers: a deadlock victim, a serialization failure. The whole
# transaction is re-run (it re-reads everything), a bounded number of times.
RETRYABLE_SQLSTATES = {"40P01": "deadlock", "40001": "serialization_failure"}
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout: someone holds a lock too long
RETRY_AFTER_SECONDS = 1


def sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "pgcode", None)


def busy(reason: str, details: dict[str, Any] | None = None) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the service is busy ({reason}); retry with the same Idempotency-Key",
        {"reason": reason, "retry_after": RETRY_AFTER_SECONDS, **(details or {})},
    )

Evolve = Callable[[Any, StoredEvent], Any]  # (state, event) -> the next state
Decide = Callable[[Any], list[NewEvent]]  # state -> the events a command adds (or raises)


def command_metadata(context: Any) -> Any:
    """Event metadata from the caller's context dict (actor, correlation, causation, key)."""
    context = context or {}
    metadata = {
        "actor": context.get("actor") or {"id": "system", "role": "system"},
        "correlation_id": context.get("correlation_id"),
        "causation_id": context.get("causation_id"),
    }
    if context.get("idempotency_key"):
        metadata["idempotency_key"] = context["idempotency_key"]
    return metadata


def fold(evolve: Any, initial: Any, stored_events: Any) -> Any:
    state = initial
    for event in stored_events:
        state = evolve(state, event)
    return state


def run_in_transaction(session_factory: Callable[[], Session], service: str, command_type: str,
                       work: Callable[[EventStore, dict[str, Any]], Any], context: dict[str, Any] | None = None,
                       nudge: Any = None, before_commit: Callable[[], Any] | None = None) -> Any:
    """Run `work(store, metadata) -> result dict` in one transaction with idempotency and retries.
    `before_commit()` runs last before the commit, after the result is remembered.

    `work` may append to any number of streams. A concurrency conflict re-runs it (it re-reads
    the streams), up to RETRIES_ON_CONFLICT times; any other unique violation is a Conflict.
    """
    context = context or {}
    key = context.get("idempotency_key")
    metadata = command_metadata(context)
    started = time.perf_counter()
    outcome = "error"
    try:
        for attempt in range(RETRIES_ON_CONFLICT + 1):
            session = session_factory()
            try:
                store = EventStore(session)
                if key:
                    store.lock_idempotency_key(key)
                    remembered = store.remembered_result(key, command_type)
                    if remembered is not None:
                        session.rollback()
                        outcome = "replayed"
                        return remembered
                result = work(store, metadata)
                if key:
                    store.remember_result(key, command_type, result)
                if before_commit is not None:
                    before_commit()
                session.commit()
                outcome = "ok"
                break
            except IntegrityError as exc:
                session.rollback()
                constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
                retryable = constraint in ("uq_events_stream_version", "idempotency_keys_pkey")
                if retryable and attempt < RETRIES_ON_CONFLICT:
                    continue
                if constraint == "uq_events_stream_version":
                    raise ConcurrencyConflict(
                        "the record was changed by someone else at the same time; retry",
                        {"constraint": constraint},
                    ) from None
                raise Conflict("this would duplicate an existing record", {"constraint": constraint}) from None
            except DBAPIError as exc:
                session.rollback()
                state = sqlstate(exc)
                if state in RETRYABLE_SQLSTATES:
                    TRANSACTION_RETRIES.labels(service, RETRYABLE_SQLSTATES[state]).inc()
                    if attempt < RETRIES_ON_CONFLICT:
                        time.sleep(random.uniform(0, 0.05 * 2 ** attempt))  # noqa: S311 - jitter, not crypto
                        continue
                    raise busy(RETRYABLE_SQLSTATES[state]) from None
                if state == LOCK_NOT_AVAILABLE:
                    TRANSACTION_RETRIES.labels(service, "lock_timeout").inc()
                    raise busy("lock_timeout") from None
                raise
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
    except FupinError as error:
        outcome = "conflict" if isinstance(error, Conflict) else error.code
        raise
    finally:
        COMMANDS.labels(service, command_type, outcome).inc()
        APPEND_SECONDS.labels(service).observe(time.perf_counter() - started)
    if nudge is not None:
        nudge()
    return result


def run_command(
    session_factory: Callable[[], Session], service: str, command_type: str, *, stream_type: str, stream_id: str,
    evolve: Evolve, decide: Decide, project: Callable[[Session, StoredEvent], None], result: Any = None,
    initial: Any = None, expected_version: int | None = None, context: dict[str, Any] | None = None,
    nudge: Any = None, project_reads_store: bool = False,
) -> Any:
    """The common case: one stream. `decide(state) -> [NewEvent]`; `project(session, event)`
    updates read models; `result(state, stored_events) -> dict` is what the caller gets.

    With `expected_version`, a stream that moved on is a 409 instead of a silent retry.
    """

    def work(streams: "Streams") -> Any:
        state = streams.load(stream_type, stream_id, evolve, initial, lock=True)
        version = streams.version(stream_type, stream_id)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyConflict(
                "the record changed since you read it",
                {"expected_version": expected_version, "current_version": version},
            )
        stored = streams.append(stream_type, stream_id, decide(state))
        state = streams.state(stream_type, stream_id)
        if result is None:
            return {"stream_id": stream_id, "version": version + len(stored),
                    "events": [event.type for event in stored]}
        return result(state, stored)

    return run_streams(session_factory, service, command_type, work, project=project, context=context, nudge=nudge,
                       project_reads_store=project_reads_store)


class Streams:
    """The streams one command reads and writes, in one transaction: the one way to write
    several streams (bulk imports, a settlement over many loans, a decision that takes a quota).

    `lock(*keys)` locks (stream_type, stream_id) pairs in one global order and refuses once
    anything was appended (stream locks always come before the append lock, for every writer);
    `load` folds a stream and remembers its version; `append` appends after that version,
    projects each event and keeps the folded state. Retries, idempotency and the commit are
    `run_streams`'s (run_in_transaction's) business, in one place.

    Appends are written last (`flush`, just before the commit): the store's append lock, which
    keeps positions committed in order, is held from the first write to the commit, so every
    command of the service waits for it. Written last, it covers two round trips (the append,
    the commit) instead of the projection, the snapshot and the remembered result as well
    (issue 17: 4-7 of the registry's 5-8 transactions were waiting on it). Until then an
    appended event has global_position 0 and no recorded_at; reading a stream with events not
    yet written writes them first. Only a stream this command holds the lock of is written last
    (no one else can append to it meanwhile, so its write cannot meet a version conflict that a
    read model's constraint would have hidden); any other is written at once, as is every event
    not yet written before it. A projection that reads the event store (`project_reads_store`)
    gets its events written before it runs, unless the command hands it the folded state; a
    stream type whose fold keeps its events' positions (store.WRITTEN_AT_ONCE) is written at once.
    """

    def __init__(self, store: EventStore, metadata: Any, project: Callable[..., Any],
                 project_reads_store: bool = False) -> None:
        self.store, self.metadata, self.project = store, metadata, project
        self.project_reads_store = project_reads_store
        self.session = store.session
        self._unwritten: list[PreparedAppend] = []
        self._locked: set[tuple[str, str]] = set()  # streams this command holds the lock of
        self._versions: dict[tuple[str, str], int] = {}
        self._loaded: dict[tuple[str, str], LoadedStream] = {}
        self._states: dict[tuple[str, str], Any] = {}
        self._evolvers: dict[tuple[str, str], Evolve] = {}
        # (stream_type, stream_id) -> its last event id, read in this transaction (Streams.load's heads)
        self.heads: dict[tuple[str, str], str | None] = {}

    def lock(self, *keys: tuple[str, str]) -> "Streams":
        self.store.lock_streams(keys)
        self._locked.update(keys)
        return self

    def load(self, stream_type: str, stream_id: str, evolve: Evolve, initial: Any = None, *, lock: bool = False,
             heads: Any = ()) -> Any:
        """The folded state of a stream (`lock=True` locks it first, in the same round trip as
        its snapshot and events are read, and the last event ids of the streams in `heads` too:
        `self.heads`): from its snapshot, if any, and the events after it. Its version is
        remembered for `append`, which snapshots the stream again every SNAPSHOT_EVERY events."""
        self._write_if_unwritten(stream_type, stream_id)
        loaded = self.store.load_state(stream_type, stream_id, evolve, initial, lock=lock, heads=heads)
        self.heads.update(loaded.heads)
        key = (stream_type, stream_id)
        if lock:
            self._locked.add(key)
        self._versions[key] = loaded.version
        self._loaded[key] = loaded
        self._evolvers[key] = evolve
        self._states[key] = loaded.state
        return loaded.state

    def read(self, stream_type: str, stream_id: str, evolve: Evolve, initial: Any = None) -> Any:
        """The folded state of a stream this command only reads (not locked, not appended to)."""
        self._write_if_unwritten(stream_type, stream_id)
        return fold(evolve, initial, self.store.load(stream_type, stream_id))

    def version(self, stream_type: str, stream_id: str) -> int:
        return self._versions[(stream_type, stream_id)]

    def state(self, stream_type: str, stream_id: str) -> Any:
        return self._states[(stream_type, stream_id)]

    def append(self, stream_type: str, stream_id: str, new_events: list[NewEvent],
               project_with_state: bool = False) -> list[StoredEvent]:
        """Append after the loaded version (a stream never loaded is new: version 0), project
        each event (`project(session, event, state)` when `project_with_state`); returns the
        StoredEvents. The stream's state afterwards is `state(stream_type, stream_id)`."""
        key = (stream_type, stream_id)
        version = self._versions.get(key, 0)
        evolve = self._evolvers.get(key)
        state = self._states.get(key)
        stored: list[StoredEvent] = []
        if new_events:
            prepared = self.store.prepare(stream_type, stream_id, version, new_events, self.metadata)
            self._unwritten.append(prepared)
            stored = prepared.events
            if (key not in self._locked or stream_type in WRITTEN_AT_ONCE
                    or (self.project_reads_store and not project_with_state)):
                stored = self.flush()[-1]
        for event in stored:
            if evolve is not None:
                state = evolve(state, event)
            if project_with_state:
                self.project(self.session, event, state)
            else:
                self.project(self.session, event)
        self._versions[key] = version + len(stored)
        self._states[key] = state
        loaded = self._loaded.get(key)
        if loaded is not None and evolve is not None:  # a long stream: snapshot its state now and then
            self.store.snapshot_if_due(stream_type, stream_id, loaded, state, version + len(stored), evolve)
        return stored

    def flush(self) -> list[list[StoredEvent]]:
        """Write every appended event not written yet, in the order they were appended; returns
        them as written (with positions), one list per append."""
        unwritten, self._unwritten = self._unwritten, []
        return [self.store.write(prepared) for prepared in unwritten]

    def _write_if_unwritten(self, stream_type: str, stream_id: str) -> None:
        if any((p.stream_type, p.stream_id) == (stream_type, stream_id) for p in self._unwritten):
            self.flush()


def run_streams(session_factory: Callable[[], Session], service: str, command_type: str,
                work: Callable[["Streams"], Any], *, project: Callable[..., Any], context: Any = None,
                nudge: Callable[[], Any] | None = None, project_reads_store: bool = False) -> Any:
    """Run `work(streams: Streams) -> result dict` in one transaction with idempotency (checked
    under the key's lock), retries on version conflicts, deadlocks and serialization failures;
    the appended events are written last (Streams.flush)."""
    current: list[Streams] = []

    def run(store: EventStore, metadata: Any) -> Any:
        current[:] = [Streams(store, metadata, project, project_reads_store)]
        return work(current[0])

    return run_in_transaction(session_factory, service, command_type, run, context, nudge,
                              before_commit=lambda: current[0].flush())

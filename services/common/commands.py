"""Handling one command: idempotency, load, decide, append, project, remember, commit.

The whole of it is one transaction, so a refused or failed command writes nothing and a
read model never disagrees with the events it was built from.
"""
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import Conflict, FupinError
from .events import NewEvent, StoredEvent
from .metrics import APPEND_SECONDS, COMMANDS
from .store import ConcurrencyConflict, EventStore

RETRIES_ON_CONFLICT = 5

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
                       nudge: Any = None) -> Any:
    """Run `work(store, metadata) -> result dict` in one transaction with idempotency and retries.

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
                    remembered = store.remembered_result(key, command_type)
                    if remembered is not None:
                        session.rollback()
                        outcome = "replayed"
                        return remembered
                result = work(store, metadata)
                if key:
                    store.remember_result(key, command_type, result)
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
    nudge: Any = None,
) -> Any:
    """The common case: one stream. `decide(state) -> [NewEvent]`; `project(session, event)`
    updates read models; `result(state, stored_events) -> dict` is what the caller gets.

    With `expected_version`, a stream that moved on is a 409 instead of a silent retry.
    """

    def work(store: Any, metadata: Any) -> Any:
        store.lock_stream(stream_type, stream_id)
        history = store.load(stream_type, stream_id)
        version = len(history)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyConflict(
                "the record changed since you read it",
                {"expected_version": expected_version, "current_version": version},
            )
        state = fold(evolve, initial, history)
        new_events = decide(state)
        stored = store.append(stream_type, stream_id, version, new_events, metadata)
        for event in stored:
            state = evolve(state, event)
            project(store.session, event)
        if result is None:
            return {"stream_id": stream_id, "version": version + len(stored),
                    "events": [event.type for event in stored]}
        return result(state, stored)

    return run_in_transaction(session_factory, service, command_type, work, context, nudge)

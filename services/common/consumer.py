"""The consumer side: apply each source event exactly once, whichever way it arrives.

The bus is the doorbell; the source's event store is the truth. Events arrive over RabbitMQ
as they are published, and a catch-up loop asks each source for `events_since(checkpoint)`
at start and on a timer. Both paths go through the inbox (keyed by event id, written in the
same transaction as the read-model change), so an event applied by one is skipped by the other.
"""
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from .events import StoredEvent
from .metrics import CONSUMER_LAG
from .rpc import rpc
from .store import EventStore, consumer_checkpoints, quarantine

log = logging.getLogger(__name__)


def apply_new(session: Session, source: Any, envelopes: Any, apply_events: Any, quarantine_poison: bool = False) -> Any:
    """Apply, as one list, those of `envelopes` (StoredEvent dicts) whose ids are not yet in the
    inbox: one delivery, or a whole catch-up batch. Call inside the caller's transaction.

    One multi-row inbox insert per batch instead of one per event: a replay of a million events
    spends its time in statements, not in business logic. Returns how many were new.

    With `quarantine_poison` (catch-up), a batch that fails is applied again event by event, each
    in a savepoint: an event that cannot be applied (bad data, a bug meeting an odd payload) is
    set aside in `quarantine` with its error, and the rest of its source goes on instead of the
    whole source being retried, and failing, every tick. A failure of the database itself
    (connection, lock timeout) is no event's fault: it is raised, and the batch retried later.
    """
    if not envelopes:
        return 0
    new_ids = {row[0] for row in EventStore(session).execute_values(
        "INSERT INTO inbox (event_id, source, global_position) VALUES %s ON CONFLICT DO NOTHING "
        "RETURNING event_id::text", [(e["event_id"], source, e["global_position"]) for e in envelopes],
        fetch=True)}
    fresh = [StoredEvent.from_dict(e) for e in envelopes if e["event_id"] in new_ids]
    if not fresh:
        return 0
    if not quarantine_poison:
        apply_events(session, source, fresh)
        return len(fresh)
    try:
        with session.begin_nested():
            apply_events(session, source, fresh)
        return len(fresh)
    except Exception as exc:  # noqa: BLE001 - sorted out below, one event at a time
        if not is_poison(exc):
            raise
    applied = 0
    by_id = {e["event_id"]: e for e in envelopes}
    for event in fresh:
        try:
            with session.begin_nested():
                apply_events(session, source, [event])
            applied += 1
        except Exception as exc:  # noqa: BLE001
            if not is_poison(exc):
                raise
            quarantine_event(session, source, by_id[event.event_id], exc)
    return applied


def is_poison(exc: BaseException) -> bool:
    """An error the event itself causes (its data, or code meeting it), not the database's state."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return not isinstance(exc, DBAPIError)


def quarantine_event(session: Session, source: str, envelope: dict[str, Any], exc: BaseException) -> None:
    from .metrics import EVENTS_QUARANTINED

    error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:2000]
    log.error("quarantined %s event %s (%s at position %s): %s", source, envelope["event_id"],
              envelope.get("type"), envelope.get("global_position"), error)
    row = {"event_id": envelope["event_id"], "source": source, "global_position": envelope["global_position"],
           "event_type": str(envelope.get("type") or ""), "error": error.replace("\x00", "")}
    try:
        with session.begin_nested():  # the envelope may itself be what PostgreSQL refuses (a NUL)
            session.execute(pg_insert(quarantine).values(**row, envelope=json.loads(json.dumps(envelope, default=str)))
                            .on_conflict_do_nothing())
    except DataError:
        unreadable = {"unreadable": json.dumps(envelope, default=str)[:100_000]}
        session.execute(pg_insert(quarantine).values(**row, envelope=unreadable).on_conflict_do_nothing())
    EVENTS_QUARANTINED.labels(session.info.get("service", "unknown"), source).inc()


def checkpoint(session: Session, source: Any) -> Any:
    session.execute(
        pg_insert(consumer_checkpoints).values(source=source, position=0).on_conflict_do_nothing()
    )
    return session.execute(
        select(consumer_checkpoints.c.position).where(consumer_checkpoints.c.source == source)
    ).scalar_one()


def catch_up(session_factory: Callable[[], Session], service: str, source: str,
             fetch: Callable[[int, int], list[dict[str, Any]]], apply_events: Callable[..., None],
             batch_size: int = 500, wait: bool = False) -> int:
    """Pull everything `source` has past our checkpoint and apply it; returns events applied.

    `fetch(position, limit)` is the source's `events_since` over RPC; `apply_events(session,
    source, events)` takes the new events of a batch in position order. One batch is one
    transaction: the checkpoint moves with the changes it covers. Without `wait`, a batch that
    another replica (or the timer) is already catching up is left to it; with `wait` (a rebuild,
    which must not return before everything is replayed) each batch waits for that lock.
    """
    applied = 0
    while True:
        session = session_factory()
        try:
            if wait:  # a rebuild waits as long as the batch in hand takes, not lock_timeout
                session.execute(text("SET LOCAL lock_timeout = 0"))
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"fupin.catchup.{source}"})
                got_lock: bool | None = True
            else:
                got_lock = session.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
                    {"k": f"fupin.catchup.{source}"},
                ).scalar()
            if not got_lock:
                session.rollback()
                return applied
            session.info["service"] = service
            position = checkpoint(session, source)
            batch = fetch(position, batch_size)
            applied += apply_new(session, source, batch, apply_events, quarantine_poison=True)
            if batch:
                session.execute(
                    update(consumer_checkpoints).where(consumer_checkpoints.c.source == source)
                    .values(position=batch[-1]["global_position"])
                )
            session.commit()
            if len(batch) < batch_size:
                CONSUMER_LAG.labels(service, source).set(0)
                return applied
            CONSUMER_LAG.labels(service, source).set(batch_size)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


class EventConsumer:
    """Mixin for a service that builds read models from other services' events.

    The service sets `sources` (service names), implements `apply_event(session, source,
    event)` (a StoredEvent; must be a pure function of the event set: order-independent), and
    wires one `@event_handler(source, "#")` per source that calls `self.receive(source, env)`,
    plus a `@timer(interval=..., eager=True)` that calls `self.catch_up_all()`.
    """

    name: str  # these three come from the service class the mixin is part of
    db: Any
    config: Any
    sources: tuple[str, ...] = ()
    catch_up_timeout = 30

    def apply_event(self, session: Session, source: Any, event: Any) -> None:
        raise NotImplementedError

    def apply_events(self, session: Session, source: Any, events: Any) -> None:
        """New events (one delivery or a catch-up batch), in order; override to write them in
        fewer statements."""
        for event in events:
            self.apply_event(session, source, event)

    def receive(self, source: Any, envelope: Any) -> None:
        from .metrics import HANDLER_ERRORS

        session = self.db.new_session()
        try:
            apply_new(session, source, [envelope], self.apply_events)
            session.commit()
        except Exception:
            session.rollback()
            HANDLER_ERRORS.labels(self.name, source).inc()
            # Not re-raised on purpose: catch-up will bring this event again from the source.
            import logging

            logging.getLogger(__name__).exception(
                "%s could not apply %s event %s; catch-up will retry",
                self.name, source, envelope.get("event_id"),
            )
        finally:
            session.close()

    @rpc
    def consumer_checkpoints(self) -> Any:
        """{source: last position applied}: how far a catch-up or a rebuild has got."""
        with self.db.new_session() as session:
            return dict(session.execute(select(consumer_checkpoints.c.source, consumer_checkpoints.c.position)).all())

    def catch_up_all(self, wait: bool = False) -> Any:
        """Ask every source for what we have not applied yet. Returns {source: applied}.
        `wait`: see catch_up (a rebuild waits for batches another worker holds)."""
        import logging

        from nameko.standalone.rpc import ClusterRpcProxy

        from .metrics import HANDLER_ERRORS

        applied: dict[str, int | None] = {}
        with ClusterRpcProxy(self.config, timeout=self.catch_up_timeout) as cluster:
            for source in self.sources:
                try:
                    applied[source] = catch_up(
                        self.db.new_session, self.name, source,
                        getattr(cluster, source).events_since, self.apply_events, wait=wait,
                    )
                except Exception:  # a source that is down is retried at the next tick
                    HANDLER_ERRORS.labels(self.name, source).inc()
                    logging.getLogger(__name__).warning(
                        "%s could not catch up with %s yet", self.name, source, exc_info=True
                    )
                    applied[source] = None
        return applied

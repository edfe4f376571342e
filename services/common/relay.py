"""The relay: publishes stored events, in position order, to `<service>.events`.

It runs on a timer and is rung like a doorbell right after each commit, so an event usually
leaves within milliseconds and at worst within one interval. The checkpoint moves only after
the broker confirmed every message of the batch: a crash in between re-publishes (at least
once), never skips. An advisory lock keeps replicas of a service from relaying side by side.
"""
import logging
from typing import Any

import eventlet
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider, Entrypoint, SharedExtension
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .metrics import RELAY_LAG, RELAY_PUBLISHED
from .store import EventStore, relay_checkpoint

log = logging.getLogger(__name__)

RELAY_LOCK = "fupin.relay"
CHECKPOINT_NAME = "bus"


def _report_lag(service: str, store: Any, position: int) -> None:
    RELAY_LAG.labels(service).set(max(store.head_position() - position, 0))


def relay_pending(session_factory: Any, service: str, publish: Any, batch_size: int = 500) -> Any:
    """Publish every unpublished event; returns how many went out.

    `publish(event_type, envelope_dict)` must raise if the broker did not confirm.
    """
    published = 0
    while True:
        session = session_factory()
        try:
            got_lock = session.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": RELAY_LOCK}
            ).scalar()
            if not got_lock:
                # Another replica relays; still report the lag it leaves, so this replica's
                # gauge never goes stale (alerts use max over replicas).
                position = session.execute(
                    select(relay_checkpoint.c.position).where(relay_checkpoint.c.name == CHECKPOINT_NAME)
                ).scalar()
                if position is not None:
                    _report_lag(service, EventStore(session), position)
                session.rollback()
                return published
            session.execute(
                pg_insert(relay_checkpoint).values(name=CHECKPOINT_NAME, position=0)
                .on_conflict_do_nothing()
            )
            position = session.execute(
                select(relay_checkpoint.c.position).where(relay_checkpoint.c.name == CHECKPOINT_NAME)
            ).scalar_one()
            store = EventStore(session)
            batch = store.events_since(position, batch_size)
            for event in batch:
                publish(event.type, event.as_dict())
            if batch:
                position = batch[-1].global_position
                session.execute(
                    update(relay_checkpoint).where(relay_checkpoint.c.name == CHECKPOINT_NAME)
                    .values(position=position)
                )
            _report_lag(service, store, position)
            session.commit()
            published += len(batch)
            RELAY_PUBLISHED.labels(service).inc(len(batch))
            if len(batch) < batch_size:
                return published
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


class Doorbell(SharedExtension):
    """One per container: rung after a commit, waited on by the relay loop."""

    def setup(self) -> None:
        self.queue = LightQueue(maxsize=1)

    def ring(self) -> None:
        if self.queue.qsize() == 0:
            try:
                self.queue.put_nowait(True)
            except eventlet.queue.Full:
                pass

    def wait(self, timeout: float) -> None:
        try:
            self.queue.get(timeout=timeout)
        except Empty:
            pass


class RelayDoorbell(DependencyProvider):
    """`self.nudge()` in a worker wakes the relay loop now instead of at its next tick."""

    doorbell = Doorbell()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.doorbell.ring


class RelayLoop(Entrypoint):
    """Runs the decorated method whenever the doorbell rings, or every `interval` seconds."""

    doorbell = Doorbell()

    def __init__(self, interval: float = 1.0, **kwargs: Any) -> None:
        self.interval = interval
        self.should_stop = False
        self.gt = None
        super().__init__(**kwargs)

    def start(self) -> None:
        self.gt = self.container.spawn_managed_thread(self._run)

    def stop(self) -> None:
        self.should_stop = True
        self.doorbell.ring()
        if self.gt is not None:
            self.gt.wait()

    def kill(self) -> None:
        self.should_stop = True
        if self.gt is not None:
            self.gt.kill()

    def _run(self) -> Any:
        while not self.should_stop:
            self.doorbell.wait(self.interval)
            if self.should_stop:
                break
            done = eventlet.event.Event()

            def handle_result(worker_ctx: Any, result: Any, exc_info: Any, done: Any = done) -> Any:
                done.send(None)
                return result, exc_info

            self.container.spawn_worker(self, (), {}, handle_result=handle_result)
            done.wait()


relay_loop = RelayLoop.decorator

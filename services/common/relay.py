"""The relay: publishes stored events, in position order, to `<service>.events`.

It runs on a timer and is rung like a doorbell right after each commit, so an event usually
leaves within milliseconds and at worst within one interval. The checkpoint moves only after
the broker confirmed every message of the batch: a crash in between re-publishes (at least
once), never skips. An advisory lock keeps replicas of a service from relaying side by side.
"""
import logging
from typing import Any

import amqp
import eventlet
from amqp import spec
from eventlet.queue import Empty, LightQueue
from kombu import Connection
from kombu.serialization import dumps
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
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

    `publish(events)` (a batch of StoredEvents) must raise unless the broker confirmed them all.
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
            if batch:
                publish(batch)
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


class EventBatchPublisher(SharedExtension):
    """Publishes a batch of events to `<service>.events` as nameko's EventDispatcher would
    (persistent, the durable topic exchange, the event type as routing key, JSON), then waits
    once for the broker's confirms of the whole batch (issue 17: a confirm wait per event was a
    quarter of the registry's CPU under load). One connection per process, opened on first use
    and dropped on any error, so the relay's next tick starts on a fresh one."""

    confirm_timeout = 30.0

    def setup(self) -> None:
        self.connection: Any = None
        self.channel: Any = None
        self.published = 0  # the channel's messages so far: the broker confirms by this number

    def _open(self) -> Any:
        if self.channel is None:
            config = self.container.config
            connection = Connection(config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                    login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
            try:
                connection.connect()
                channel = connection.connection.channel()
                channel.confirm_select()
                channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
            except BaseException:
                connection.release()
                raise
            self.connection, self.channel, self.published = connection, channel, 0
        return self.channel

    @property
    def exchange(self) -> str:
        return f"{self.container.service_name}.events"

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - a broken connection is dropped either way
                log.debug("closing the relay's broken connection", exc_info=True)

    def stop(self) -> None:
        self.close()

    def kill(self) -> None:
        self.close()

    def publish(self, batch: list[Any]) -> None:
        """Publish `batch` (StoredEvents) and return once the broker confirmed every one; raise
        otherwise (a nack, a timeout, a lost connection)."""
        try:
            channel = self._open()
            for event in batch:
                content_type, encoding, body = dumps(event.as_dict(), "json")
                channel.basic_publish(amqp.Message(body, content_type=content_type, content_encoding=encoding,
                                                   delivery_mode=2),
                                      exchange=self.exchange, routing_key=event.type)
            self.published += len(batch)
            confirmed = [0]

            def on_confirm(method: Any, delivery_tag: int = 0, multiple: bool = False, *rest: Any) -> None:
                if method == spec.Basic.Nack:
                    raise amqp.exceptions.MessageNacked(f"the broker refused event tag {delivery_tag}")
                confirmed[0] = max(confirmed[0], delivery_tag)

            while confirmed[0] < self.published:
                channel.wait([spec.Basic.Ack, spec.Basic.Nack], callback=on_confirm, timeout=self.confirm_timeout)
        except BaseException:
            self.close()
            raise


class EventBatchPublishing(DependencyProvider):
    """`self.publish_events(batch)` in the relay: EventBatchPublisher.publish."""

    publisher = EventBatchPublisher()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.publisher.publish


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

"""The chassis under contention and faults, on real PostgreSQL and RabbitMQ (issue 15):
idempotency checked under the key's lock, one lock order, deadlocks retried, lock_timeout as a
503, a reply that cannot be sent does not kill the service."""
import time

import eventlet
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.common import commands, store as store_module
from services.common.db import create_db_engine, session_options
from services.common.errors import RuleRefused, ServiceUnavailable
from services.common.events import NewEvent
from services.common.metrics import TRANSACTION_RETRIES
from services.common.store import APPEND_LOCK, EventStore, LockOrderViolation
from tests import support
from tests.service.sample_services import Ledger, read_models


@pytest.fixture(scope="module")
def chassis_db(infra):
    return support.fresh_database_from_metadata("chassis", store_module.metadata, read_models)


@pytest.fixture
def engine(chassis_db):
    support.truncate_all(chassis_db)
    engine = create_db_engine(chassis_db, options=session_options({}))
    yield engine
    engine.dispose()


def sessions(engine):
    return lambda: Session(engine, future=True)


def once_only(stream_id, pause=0.0):
    """A command that may run once: it refuses when its stream already has an event."""

    def work(store, metadata):
        store.lock_stream("thing", stream_id)
        if store.load("thing", stream_id):
            raise RuleRefused("already done", {"rule": "once"})
        eventlet.sleep(pause)  # the first is still running when its retry arrives
        stored = store.append("thing", stream_id, 0, [NewEvent("done", {})], metadata)
        return {"position": stored[0].global_position}

    return work


def test_a_concurrent_retry_with_the_same_key_gets_the_first_result(engine):
    context = {"idempotency_key": "client-1:retry"}
    first = eventlet.spawn(commands.run_in_transaction, sessions(engine), "t", "once", once_only("a", 0.5), context)
    eventlet.sleep(0.1)
    second = eventlet.spawn(commands.run_in_transaction, sessions(engine), "t", "once", once_only("a"), context)
    assert second.wait() == first.wait()  # not a 422 "already done" for the client's retry
    with Session(engine) as session:
        assert len(EventStore(session).load("thing", "a")) == 1


def test_a_stream_lock_after_an_append_is_refused(engine):
    def work(store, metadata):
        store.append("thing", "x", 0, [NewEvent("done", {})], metadata)
        store.lock_stream("thing", "y")  # the reverse order of every other writer: a deadlock waiting

    with pytest.raises(LockOrderViolation):
        commands.run_in_transaction(sessions(engine), "t", "bad_order", work)
    with Session(engine) as session:
        assert EventStore(session).load("thing", "x") == []


def test_streams_lock_in_one_order_whatever_order_they_are_named_in(engine):
    order = []

    def work(streams):
        original = streams.store.lock_stream
        streams.store.lock_stream = lambda t, i: (order.append((t, i)), original(t, i))
        streams.lock(("thing", "b"), ("thing", "a"), ("other", "z"), ("thing", "a"))
        return {}

    commands.run_streams(sessions(engine), "t", "ordered", work, project=lambda session, event: None)
    assert order == [("other", "z"), ("thing", "a"), ("thing", "b")]


def test_a_deadlock_is_retried_not_answered_with_an_error(engine):
    before = TRANSACTION_RETRIES.labels("t", "deadlock")._value.get()
    both_hold_one = eventlet.event.Event()
    holders = []

    def crossing(first, second):
        def work(store, metadata):
            store.lock_stream("thing", first)
            holders.append(first)
            if len(holders) == 2:
                both_hold_one.send()
            both_hold_one.wait()  # on the retry the event is already sent: no wait
            store.lock_stream("thing", second)
            return {"first": first}
        return work

    one = eventlet.spawn(commands.run_in_transaction, sessions(engine), "t", "cross", crossing("p", "q"))
    two = eventlet.spawn(commands.run_in_transaction, sessions(engine), "t", "cross", crossing("q", "p"))
    assert (one.wait(), two.wait()) == ({"first": "p"}, {"first": "q"})
    assert TRANSACTION_RETRIES.labels("t", "deadlock")._value.get() == before + 1


def test_a_lock_held_too_long_is_a_503_with_retry_after_not_a_hang(chassis_db):
    engine = create_db_engine(chassis_db, options=session_options({"LOCK_TIMEOUT_MS": 300}))
    holder = create_engine(chassis_db)
    with holder.connect() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": APPEND_LOCK})

        def release_later():
            eventlet.sleep(3)
            connection.rollback()

        eventlet.spawn(release_later)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as refused:
            commands.run_in_transaction(sessions(engine), "t", "blocked", once_only("blocked"))
        assert time.monotonic() - started < 2
        assert refused.value.details["reason"] == "lock_timeout" and refused.value.details["retry_after"] >= 1
        eventlet.sleep(3.5)
    holder.dispose()
    engine.dispose()


def test_every_service_session_has_lock_and_idle_timeouts(chassis_db):
    engine = create_db_engine(chassis_db, options=session_options({"IDLE_IN_TRANSACTION_TIMEOUT_MS": 1500}))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW lock_timeout")).scalar() == "10s"
            assert connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "1500ms"
        # a client that stays idle inside a transaction loses it (and its locks) to the server
        connection = engine.connect()
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": APPEND_LOCK})
        eventlet.sleep(2.5)
        with engine.connect() as other:
            assert other.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": APPEND_LOCK}).scalar()
        connection.invalidate()
    finally:
        engine.dispose()


def test_a_reply_that_cannot_be_published_does_not_kill_the_service(amqp_uri, chassis_db):
    from services.common.rpc import TransientPublisher, TransientResponder as Responder

    failures = []

    class FailingOnce(TransientPublisher):
        def publish(self, *args, **kwargs):
            if not failures:
                failures.append(1)
                raise OSError(111, "ECONNREFUSED (the broker is restarting)")
            return super().publish(*args, **kwargs)

    support.truncate_all(chassis_db)
    config = support.service_config(None, amqp_uri, chassis_db)
    original = Responder.publisher_cls
    Responder.publisher_cls = FailingOnce
    try:
        with support.running(Ledger, config) as container:
            with support.rpc_client(amqp_uri, timeout=3) as cluster:
                from nameko.exceptions import RpcTimeout

                with pytest.raises(RpcTimeout):  # that reply is lost; the command is committed
                    cluster.ledger.increment("c", 2, {"idempotency_key": "k-lost-reply"})
                assert failures and container._died.ready() is False
                # the caller retries with its key: the first result, nothing appended twice
                assert cluster.ledger.increment("c", 2, {"idempotency_key": "k-lost-reply"}) == {
                    "counter_id": "c", "total": 2}
                assert cluster.ledger.total("c") == {"total": 2, "increments": 1}
    finally:
        Responder.publisher_cls = original


def test_a_poison_event_is_quarantined_and_the_rest_of_its_source_goes_on(chassis_db):
    from prometheus_client import REGISTRY

    from services.common.consumer import catch_up
    from services.common.store import quarantine
    from tests.service.sample_services import Tally

    support.truncate_all(chassis_db)
    engine = create_db_engine(chassis_db, options=session_options({}))

    def envelope(position, counter_id, by):
        return {"global_position": position, "event_id": f"00000000-0000-0000-0000-{position:012d}",
                "stream_type": "counter", "stream_id": counter_id, "version": 1, "type": "incremented",
                "schema_version": 1, "payload": {"by": by}, "metadata": {}, "occurred_on": None, "recorded_at": None}

    source = [envelope(1, "a", 1), envelope(2, "b", "not a number"), envelope(3, "c", 2)]
    tally = Tally()

    def quarantined():
        return REGISTRY.get_sample_value("fupin_events_quarantined_total", {"service": "tally", "source": "ledger"}) or 0

    before = quarantined()
    try:
        applied = catch_up(sessions(engine), "tally", "ledger",
                           lambda position, limit: [e for e in source if e["global_position"] > position][:limit],
                           tally.apply_events)
        assert applied == 2
        with engine.connect() as connection:
            totals = dict(connection.execute(text("SELECT counter_id, total FROM tallies")).all())
            assert totals == {"a": 1, "c": 2}
            rows = connection.execute(quarantine.select()).all()
            assert [(r.global_position, r.event_type) for r in rows] == [(2, "incremented")]
            assert "InvalidTextRepresentation" in rows[0].error or "DataError" in rows[0].error
            assert connection.execute(text("SELECT position FROM consumer_checkpoints")).scalar() == 3
        assert quarantined() == before + 1
        # the next tick does not try it again: nothing is retried forever
        assert catch_up(sessions(engine), "tally", "ledger",
                        lambda position, limit: [e for e in source if e["global_position"] > position][:limit],
                        tally.apply_events) == 0
    finally:
        engine.dispose()


def test_pruning_deletes_old_keys_and_inbox_rows_behind_the_checkpoint_only(chassis_db):
    from datetime import datetime, timedelta, timezone

    from services.common import retention

    support.truncate_all(chassis_db)
    engine = create_db_engine(chassis_db, options=session_options({}))
    old = datetime.now(timezone.utc) - timedelta(days=40)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO idempotency_keys (key, command_type, result, recorded_at) VALUES "
                "('old', 'c', '{}', :old), ('new', 'c', '{}', now())"), {"old": old})
            connection.execute(text(
                "INSERT INTO inbox (event_id, source, global_position, applied_at) VALUES "
                "('00000000-0000-0000-0000-000000000001', 'ledger', 1, :old),"
                "('00000000-0000-0000-0000-000000000002', 'ledger', 9, :old),"  # past the checkpoint: kept
                "('00000000-0000-0000-0000-000000000003', 'ledger', 2, now())"), {"old": old})
            connection.execute(text("INSERT INTO consumer_checkpoints (source, position) VALUES ('ledger', 5)"))
        assert retention.prune(engine) == {"idempotency_keys": 1, "inbox": 1}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT key FROM idempotency_keys")).scalars().all() == ["new"]
            assert sorted(connection.execute(text("SELECT global_position FROM inbox")).scalars()) == [2, 9]
        assert retention.prune(engine) == {"idempotency_keys": 0, "inbox": 0}
    finally:
        engine.dispose()

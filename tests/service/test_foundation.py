"""The chassis on real PostgreSQL and RabbitMQ: store, relay, inbox, catch-up, rebuild."""
import threading
import uuid

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from services.common import store as store_module
from services.common.errors import Conflict, RuleRefused
from services.common.events import NewEvent
from services.common.store import EventStore
from tests import support
from tests.service.sample_services import Ledger, Tally, counters, read_models


@pytest.fixture(scope="module")
def ledger_db(infra):
    return support.fresh_database_from_metadata("ledger", store_module.metadata, read_models)


@pytest.fixture(scope="module")
def tally_db(infra):
    return support.fresh_database_from_metadata("tally", store_module.metadata, read_models)


@pytest.fixture
def engine(ledger_db):
    support.truncate_all(ledger_db)
    engine = create_engine(ledger_db, pool_size=10)
    yield engine
    engine.dispose()


def append(engine, stream_id, expected, count=1):
    with Session(engine) as session:
        stored = EventStore(session).append(
            "counter", stream_id, expected, [NewEvent("incremented", {"by": 1})] * count
        )
        session.commit()
        return stored


def test_two_appends_at_one_expected_version_one_wins_one_conflicts(engine):
    append(engine, "c1", 0)
    barrier = threading.Barrier(2)
    outcomes = []

    def writer():
        with Session(engine) as session:
            store = EventStore(session)
            store.load("counter", "c1")
            barrier.wait()
            try:
                store.append("counter", "c1", 1, [NewEvent("incremented", {"by": 1})])
                session.commit()
                outcomes.append("ok")
            except Exception as exc:  # the unique constraint refuses the loser
                session.rollback()
                outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["IntegrityError", "ok"]
    with Session(engine) as session:
        assert [e.version for e in EventStore(session).load("counter", "c1")] == [1, 2]


def test_eight_writers_and_a_follower_see_every_event_once_in_order(engine):
    writers, per_writer = 8, 40
    seen, done = [], threading.Event()

    def writer(n):
        for i in range(per_writer):
            append(engine, f"w{n}", i)
            if i % 10 == 0:
                # a rolled-back insert leaves a gap in positions that readers must tolerate
                with Session(engine) as session:
                    EventStore(session).append("counter", f"gap{n}-{i}", 0, [NewEvent("incremented", {"by": 1})])
                    session.rollback()

    def follower():
        position = 0
        while True:
            finished = done.is_set()
            with Session(engine) as session:
                batch = EventStore(session).events_since(position, 50)
            seen.extend(batch)
            if batch:
                position = batch[-1].global_position
            elif finished:
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    reader = threading.Thread(target=follower)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    positions = [event.global_position for event in seen]
    assert len(seen) == writers * per_writer
    assert positions == sorted(positions)
    assert len(set(event.event_id for event in seen)) == writers * per_writer


@pytest.fixture
def ledger(amqp_uri, ledger_db):
    support.truncate_all(ledger_db)
    config = support.service_config(None, amqp_uri, ledger_db)
    with support.running(Ledger, config) as container:
        yield container


def test_command_appends_projects_and_answers_over_rpc(amqp_uri, ledger):
    with support.rpc_client(amqp_uri) as cluster:
        assert cluster.ledger.increment("a", 5) == {"counter_id": "a", "total": 5}
        assert cluster.ledger.increment("a", 2) == {"counter_id": "a", "total": 7}
        assert cluster.ledger.total("a") == {"total": 7, "increments": 2}
        with pytest.raises(RuleRefused) as refused:
            cluster.ledger.increment("a", -1)
        assert refused.value.details == {"rule": "positive_increment"}
        assert cluster.ledger.total("a") == {"total": 7, "increments": 2}
        with pytest.raises(Conflict):
            cluster.ledger.increment("a", 1, expected_version=0)
        assert [e["version"] for e in cluster.ledger.stream_events("counter", "a")] == [1, 2]


def test_idempotency_key_returns_first_result_and_appends_nothing(amqp_uri, ledger):
    context = {"idempotency_key": "upload-1", "actor": {"id": "u1", "role": "department"}}
    with support.rpc_client(amqp_uri) as cluster:
        first = cluster.ledger.increment("b", 3, context=context)
        again = cluster.ledger.increment("b", 3, context=context)
        assert first == again == {"counter_id": "b", "total": 3}
        events = cluster.ledger.stream_events("counter", "b")
        assert len(events) == 1
        assert events[0]["metadata"]["actor"] == {"id": "u1", "role": "department"}
        assert events[0]["metadata"]["idempotency_key"] == "upload-1"


def test_concurrent_commands_on_one_stream_lose_nothing(amqp_uri, ledger):
    with support.rpc_client(amqp_uri) as cluster:
        calls = [cluster.ledger.increment.call_async("c", 1) for _ in range(20)]
        [call.result() for call in calls]
        assert cluster.ledger.total("c") == {"total": 20, "increments": 20}


def bind_queue(amqp_uri, name):
    exchange = Exchange("ledger.events", type="topic", durable=True)
    queue = Queue(name, exchange=exchange, routing_key="#", durable=True)
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    return queue


def drain(amqp_uri, queue, expected, timeout=30):
    received = []
    with Connection(amqp_uri) as conn:
        with conn.SimpleQueue(queue) as simple:
            deadline = eventlet.hubs.get_hub().clock() + timeout
            while len({m["event_id"] for m in received}) < expected:
                if eventlet.hubs.get_hub().clock() > deadline:
                    break
                try:
                    message = simple.get(timeout=1)
                except simple.Empty:
                    continue
                received.append(message.payload)
                message.ack()
    return received


def test_relay_publishes_every_event_in_order(amqp_uri, ledger):
    queue = bind_queue(amqp_uri, f"relay-test-{uuid.uuid4().hex[:8]}")
    with support.rpc_client(amqp_uri) as cluster:
        for i in range(30):
            cluster.ledger.increment(f"r{i % 3}", 1)
    received = drain(amqp_uri, queue, 30)
    assert len({m["event_id"] for m in received}) == 30
    positions = [m["global_position"] for m in received]
    assert positions == sorted(positions)


def test_relay_loses_nothing_when_the_broker_restarts(amqp_uri, ledger_db, engine):
    """The service reaches RabbitMQ through a proxy that goes away for a while (every connection
    cut, new ones refused): a broker restart as the service sees it, without stopping the
    RabbitMQ every other suite on this machine is using (tests/faults/platform.py)."""
    from tests.faults.platform import BrokerProxy

    queue = bind_queue(amqp_uri, f"restart-test-{uuid.uuid4().hex[:8]}")
    proxy = BrokerProxy()
    proxy.start()
    through_proxy = f"amqp://guest:guest@127.0.0.1:{proxy.port}/{amqp_uri.rsplit('/', 1)[1]}"
    config = support.service_config(None, through_proxy, ledger_db)
    try:
        with support.running(Ledger, config):
            for i in range(20):
                append(engine, f"s{i}", 0)
            proxy.stop()
            for i in range(20, 40):
                append(engine, f"s{i}", 0)  # stored while the broker is away
            eventlet.sleep(3)
            proxy.start()
            received = drain(amqp_uri, queue, 40, timeout=60)
    finally:
        proxy.stop()
    # The pooled connections opened through the proxy are dead, but they are pooled under the
    # proxy's own port, which no later test uses. kombu.pools.reset() here closed every pooled
    # socket in the process, also ones other green threads were waiting on: their stale read
    # listeners then met a reused fd number ("Second simultaneous read on fileno") in later tests.
    assert {m["stream_id"] for m in received} == {f"s{i}" for i in range(40)}


def test_consumer_applies_duplicates_once_and_catches_up_after_downtime(amqp_uri, ledger_db, tally_db):
    support.truncate_all(ledger_db)
    support.truncate_all(tally_db)
    ledger_config = support.service_config(None, amqp_uri, ledger_db)
    tally_config = support.service_config(None, amqp_uri, tally_db)
    with support.running(Ledger, ledger_config):
        with support.rpc_client(amqp_uri) as cluster:
            # appended before the consumer ever ran: its queue did not even exist yet
            for _ in range(5):
                cluster.ledger.increment("t", 1)
            with support.running(Tally, tally_config):
                support.wait_until(lambda: cluster.tally.tally("t") == 5, message="catch-up to 5")
                for _ in range(3):
                    cluster.ledger.increment("t", 10)
                support.wait_until(lambda: cluster.tally.tally("t") == 35, message="bus delivery")
                # the same event delivered again (as the bus may) is applied once
                event = cluster.ledger.events_since(0, 1)[0]
                tally_service = Tally()
                from services.common.consumer import apply_new
                engine = create_engine(tally_db)
                with Session(engine) as session:
                    assert apply_new(session, "ledger", [event], tally_service.apply_events) == 0
                    session.commit()
                assert cluster.tally.tally("t") == 35
                # a catch-up batch applies only the events its inbox does not hold yet
                known = cluster.ledger.events_since(0, 100)
                unseen = {**known[0], "event_id": str(uuid.uuid4()), "payload": {"by": 1000}}
                with Session(engine) as session:
                    assert apply_new(session, "ledger", known + [unseen], tally_service.apply_events) == 1
                    session.commit()
                engine.dispose()
                assert cluster.tally.tally("t") == 1035
            # consumer stopped: these are published while nobody consumes
            for _ in range(4):
                cluster.ledger.increment("t", 100)
            with support.running(Tally, tally_config):
                support.wait_until(lambda: cluster.tally.tally("t") == 1435, message="applied after restart")


def test_rebuild_gives_the_live_read_models(amqp_uri, ledger, ledger_db):
    with support.rpc_client(amqp_uri) as cluster:
        for i in range(12):
            cluster.ledger.increment(f"k{i % 4}", i + 1)
        engine = create_engine(ledger_db)
        with Session(engine) as session:
            live = session.execute(select(counters).order_by(counters.c.counter_id)).all()
        result = cluster.ledger.rebuild_read_models()
        assert result["events_replayed"] == 12
        with Session(engine) as session:
            rebuilt = session.execute(select(counters).order_by(counters.c.counter_id)).all()
        engine.dispose()
        assert rebuilt == live and len(live) == 4


def test_error_details_keep_their_types_across_rpc(amqp_uri, ledger):
    with support.rpc_client(amqp_uri) as cluster:
        with pytest.raises(Conflict) as conflict:
            cluster.ledger.increment("typed", 1, expected_version=3)
    assert conflict.value.details == {"expected_version": 3, "current_version": 0}

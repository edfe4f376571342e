"""The relay's batch publisher on real RabbitMQ: a batch goes out as nameko's EventDispatcher
would send it (the service's durable topic exchange, the event type as routing key, JSON,
persistent), confirmed as a whole; a broken connection raises and the next batch reconnects."""
import types
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from services.common.events import StoredEvent
from services.common.relay import EventBatchPublisher


def stored(position, kind="income_assessed"):
    return StoredEvent(global_position=position, event_id=str(uuid.uuid4()), stream_type="household",
                       stream_id="H1", version=position, type=kind, schema_version=1,
                       payload={"household_id": "H1", "n": position}, metadata={"actor": {"id": "a"}},
                       occurred_on="2023-06-30", recorded_at="2023-06-30T00:00:00+00:00")


@pytest.fixture
def publisher(amqp_uri):
    service = f"relaytest{uuid.uuid4().hex[:8]}"
    publisher = EventBatchPublisher()
    publisher.container = types.SimpleNamespace(service_name=service, config={"AMQP_URI": amqp_uri})
    publisher.setup()
    yield publisher
    publisher.close()


def bound_queue(amqp_uri, service):
    connection = Connection(amqp_uri)
    queue = Queue(f"{service}-listener", Exchange(f"{service}.events", type="topic", durable=True),
                  routing_key="#", channel=connection.default_channel)
    queue.declare()
    return connection, queue


def drain(queue, count):
    got = []
    for _ in range(count * 10):
        message = queue.get(no_ack=True)
        if message is not None:
            got.append(message)
        if len(got) == count:
            break
    return got


def test_a_batch_is_published_in_order_as_nameko_events_and_confirmed(amqp_uri, publisher):
    publisher.publish([stored(0, "setup")])  # declares the exchange
    connection, queue = bound_queue(amqp_uri, publisher.container.service_name)
    try:
        batch = [stored(n, "income_assessed" if n % 2 else "member_added") for n in range(1, 8)]
        publisher.publish(batch)
        assert publisher.published == 8  # every message of the channel confirmed
        got = drain(queue, 7)
        assert [m.delivery_info["routing_key"] for m in got] == [e.type for e in batch]
        assert [m.decode() for m in got] == [e.as_dict() for e in batch]
        assert {m.properties["delivery_mode"] for m in got} == {2} and {m.content_type for m in got} == \
            {"application/json"}
    finally:
        queue.delete()
        connection.release()


def test_a_broken_connection_raises_and_the_next_batch_reconnects(amqp_uri, publisher):
    publisher.publish([stored(1)])
    publisher.connection.connection.sock.close()  # as a broker restart leaves it
    with pytest.raises(OSError):  # the closed socket's error
        publisher.publish([stored(2)])
    assert publisher.channel is None  # dropped: the relay's next tick starts on a fresh connection
    connection, queue = bound_queue(amqp_uri, publisher.container.service_name)
    try:
        publisher.publish([stored(2), stored(3)])
        assert [m.decode()["global_position"] for m in drain(queue, 2)] == [2, 3]
    finally:
        queue.delete()
        connection.release()

"""tests/support itself: starting a container again after a broker restart must not close
connections other green threads hold (their stale read listeners broke later tests)."""
import kombu.pools
from kombu import Connection

from tests import support


def test_forgetting_the_pools_leaves_held_connections_open_and_usable(amqp_uri):
    pool = kombu.pools.connections[Connection(amqp_uri)]
    held = pool.acquire(block=True)
    try:
        held.ensure_connection(max_retries=3)
        channel = held.channel()

        support.forget_pooled_connections()

        # kombu.pools.reset() closed this one under its holder; forgetting leaves it working
        assert held.connected
        channel.queue_declare(queue="", exclusive=True)  # a round trip on the held connection
        fresh = kombu.pools.connections[Connection(amqp_uri)]
        assert fresh is not pool  # the next acquire comes from a new pool, with a new connection
        channel.close()
    finally:
        held.release()

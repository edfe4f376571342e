"""RPC that rides out a broker restart, and a fast "not running" for a service nobody consumes.

nameko's RPC entrypoint publishes the reply on a connection of its own; when RabbitMQ restarts
while a command runs, that publish fails (`OperationalError: ECONNREFUSED` in
`Responder.send_response`), the error escapes the worker and nameko kills the whole container:
the process exits and serves nothing until someone restarts it. Here a reply that cannot be
sent is logged and counted, the request message is acknowledged if its channel still lives
(otherwise the broker has already taken it back and will deliver it again), and the service
goes on. The command itself is committed or not, as always; the caller, who got no reply,
retries with its idempotency key (the gateway gives every command one) and receives the first
result.

`require_consumer(amqp_uri, service)` asks RabbitMQ whether anyone consumes the service's RPC
queue (cached for a second): with nobody there the gateway answers 503 with Retry-After at once
instead of waiting for its RPC timeout.
"""
import logging
import time
from typing import Any

from kombu import Connection
from nameko.amqp.publish import Publisher
from nameko.constants import (AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_SERIALIZER, DEFAULT_TRANSPORT_OPTIONS,
                              LOGIN_METHOD_CONFIG_KEY, SERIALIZER_CONFIG_KEY)
from nameko.rpc import (RPC_QUEUE_TEMPLATE, MethodProxy, Responder, Rpc, RpcConsumer, RpcProxy, ServiceProxy,
                        get_rpc_exchange)

from .errors import ServiceUnavailable
from .metrics import RPC_REPLIES_LOST

log = logging.getLogger(__name__)
TRANSIENT_DELIVERY_MODE = 1


class TransientPublisher(Publisher):
    """RPC requests and replies, published transient and without a publisher confirm.

    nameko publishes both persistent and waits for the broker's confirm of each. A reply goes to
    the caller's own auto-delete queue and a request is worth nothing once its caller has given up,
    so neither is worth a disk write, and a confirm adds nothing the caller's timeout does not
    already cover: a request or reply lost in a broker restart is a 503 (or a timeout) for the
    caller, whose retry with the same idempotency key gets the first result. Measured
    (bench/rpc_bench.py): a round trip's CPU, caller + service + RabbitMQ, 2.22 -> 1.30 ms.
    The unknown-service check that nameko builds on confirms is `require_consumer` here."""

    use_confirms = False
    delivery_mode = TRANSIENT_DELIVERY_MODE
    transport_options = dict(DEFAULT_TRANSPORT_OPTIONS)  # its own: nameko's publishers mutate theirs

    def publish(self, payload: Any, **kwargs: Any) -> Any:
        kwargs["mandatory"] = False  # a return is only noticed with confirms; require_consumer asks first
        return super().publish(payload, **kwargs)


class TransientResponder(Responder):
    publisher_cls = TransientPublisher


class TransientMethodProxy(MethodProxy):
    publisher_cls = TransientPublisher


class TransientServiceProxy(ServiceProxy):
    def __getattr__(self, name: str) -> Any:
        return TransientMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener, **self.options)


class TransientRpcProxy(RpcProxy):
    """nameko's RpcProxy, its requests published by TransientPublisher."""

    def get_dependency(self, worker_ctx: Any) -> Any:
        return TransientServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, **self.options)


class ResilientRpcConsumer(RpcConsumer):
    def _send_reply(self, message: Any, result: Any, exc_info: Any) -> Any:
        """nameko's RpcConsumer.handle_result, the reply sent by TransientPublisher."""
        config = self.container.config
        responder = TransientResponder(config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
                                       config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
                                       ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                       login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> Any:
        try:
            return self._send_reply(message, result, exc_info)
        except Exception:  # noqa: BLE001 - the broker went away mid-reply; the container must live
            RPC_REPLIES_LOST.labels(self.container.service_name).inc()
            log.warning("could not send the reply of %s (broker unreachable); the caller will retry",
                        message.delivery_info.get("routing_key"), exc_info=True)
            try:
                self.queue_consumer.ack_message(message)
            except Exception:  # noqa: BLE001 - its channel is gone: the broker redelivers it
                pass
            return result, exc_info


class ResilientRpc(Rpc):
    rpc_consumer = ResilientRpcConsumer()


rpc = ResilientRpc.decorator

CONSUMER_CHECK_SECONDS = 1.0
RETRY_AFTER_NO_CONSUMER = 5
_consumers: dict[tuple[str, str], tuple[float, int]] = {}


def _count_consumers(amqp_uri: str, service: str) -> int:
    try:
        with Connection(amqp_uri, connect_timeout=2) as connection:
            channel = connection.channel()
            try:
                _, _, count = channel.queue_declare(queue=RPC_QUEUE_TEMPLATE.format(service), passive=True)
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001 - a 404 already closed it
                    pass
            return count
    except Exception as exc:  # noqa: BLE001 - no queue (404) or no broker: nobody is consuming
        log.info("no consumer for rpc-%s: %s", service, exc)
        return 0


def consumer_count(amqp_uri: str, service: str) -> int:
    """How many processes consume `rpc-<service>` (0 when the queue or the broker is not there);
    a positive answer is kept for a second, a zero is asked again each time."""
    key = (amqp_uri, service)
    checked = _consumers.get(key)
    now = time.monotonic()
    if checked is not None and now - checked[0] < CONSUMER_CHECK_SECONDS:
        return checked[1]
    count = _count_consumers(amqp_uri, service)
    if count:
        _consumers[key] = (now, count)
    else:
        _consumers.pop(key, None)
    return count


def require_consumer(amqp_uri: str, service: str, recheck_after: float = 0.5) -> None:
    """503 with Retry-After when nobody consumes the service's RPC queue. A zero is checked once
    more after `recheck_after` seconds: a consumer re-subscribing after a reconnect is not gone."""
    if consumer_count(amqp_uri, service) == 0:
        time.sleep(recheck_after)  # eventlet-patched in the services: yields, blocks nobody
        if consumer_count(amqp_uri, service) == 0:
            raise ServiceUnavailable(
                f"the {service} service is not running (nobody consumes its requests); try again shortly",
                {"service": service, "retry_after": RETRY_AFTER_NO_CONSUMER},
            )

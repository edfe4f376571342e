"""Prometheus metrics shared by every process (one process = one service, so the default
registry is per service)."""
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

COMMANDS = Counter(
    "fupin_commands_total", "Commands handled, by type and outcome", ["service", "command", "outcome"]
)
APPEND_SECONDS = Histogram(
    "fupin_append_seconds", "Time to decide, append and project one command", ["service"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
RELAY_LAG = Gauge("fupin_relay_lag_events", "Events stored but not yet published", ["service"])
RELAY_PUBLISHED = Counter("fupin_relay_published_total", "Events published by the relay", ["service"])
CONSUMER_LAG = Gauge(
    "fupin_consumer_lag_events", "Source events not yet applied by catch-up", ["service", "source"]
)
HANDLER_ERRORS = Counter(
    "fupin_handler_errors_total", "Event handler or catch-up failures", ["service", "source"]
)
TRANSACTION_RETRIES = Counter(
    "fupin_transaction_retries_total",
    "Command transactions PostgreSQL asked to re-run (deadlock, serialization) or that hit lock_timeout",
    ["service", "reason"],
)
EVENTS_QUARANTINED = Counter(
    "fupin_events_quarantined_total", "Source events a consumer could not apply, set aside in its quarantine table",
    ["service", "source"],
)
UNUSABLE_FACTS = Gauge(
    "fupin_unusable_facts", "Stored source events the scores had to leave out (a handler failed on them)", ["service"]
)
RPC_REPLIES_LOST = Counter(
    "fupin_rpc_replies_lost_total", "RPC replies that could not be published (broker unreachable)", ["service"]
)
HTTP_REQUESTS = Counter(
    "fupin_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "fupin_http_request_seconds", "HTTP request latency by route", ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def exposition() -> Any:
    return generate_latest(), CONTENT_TYPE_LATEST

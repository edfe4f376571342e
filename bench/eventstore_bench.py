"""Event store throughput and append→applied latency, beside raw psycopg2 on the same machine.

Measures, on a scratch database (`fupin_bench_store`) and RabbitMQ vhost `/`:
  1. raw psycopg2 INSERTs of the same rows, one per transaction and batched (the floor);
  2. EventStore.append, one event per transaction (lock_stream + load + append + commit);
  3. EventStore.append, batched (100 events per transaction);
  4. latency from append commit to "applied by a consumer" through relay → RabbitMQ → inbox.
Run: .venv/bin/python bench/eventstore_bench.py [--events N]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid

import eventlet

eventlet.monkey_patch()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg2  # noqa: E402
from psycopg2.extras import Json  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from services.common import store as store_module  # noqa: E402
from services.common.db import drop_database, ensure_database, make_cooperative  # noqa: E402
from services.common.events import NewEvent  # noqa: E402
from services.common.store import EventStore  # noqa: E402

PG = os.environ.get("FUPIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("FUPIN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
PAYLOAD = {"household_id": "h-000001", "year": 2023, "per_capita_income": "5230.00", "assessed_on": "2023-06-30"}


def fresh(name):
    url = f"{PG}/{name}"
    drop_database(url)
    ensure_database(url)
    engine = create_engine(url)
    store_module.metadata.create_all(engine)
    return url, engine


def rate(count, seconds):
    return round(count / seconds, 1)


def raw_inserts(url, count, batch):
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    sql = ("INSERT INTO events (event_id, stream_type, stream_id, version, event_type, payload, metadata) "
           "VALUES (%s, 'household', %s, %s, 'income_assessed', %s, '{}')")
    started = time.perf_counter()
    for start in range(0, count, batch):
        for i in range(start, min(start + batch, count)):
            cur.execute(sql, (str(uuid.uuid4()), f"raw-{batch}-{i}", 1, Json(PAYLOAD)))
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return rate(count, elapsed)


def store_appends(engine, count, batch):
    started = time.perf_counter()
    for start in range(0, count, batch):
        with Session(engine) as session:
            store = EventStore(session)
            stream = f"store-{batch}-{start}"
            store.lock_stream("household", stream)
            version = len(store.load("household", stream))
            n = min(batch, count - start)
            store.append("household", stream, version, [NewEvent("income_assessed", PAYLOAD)] * n,
                         {"actor": {"id": "bench"}})
            session.commit()
    return rate(count, time.perf_counter() - started)


def end_to_end_latency(amqp_uri, samples):
    """Append through the sample Ledger service and wait for the Tally consumer to apply it."""
    from nameko.containers import ServiceContainer
    from nameko.standalone.rpc import ClusterRpcProxy

    from tests.service.sample_services import Ledger, Tally, read_models

    latencies = []
    containers = []
    for cls, name in ((Ledger, "fupin_bench_ledger"), (Tally, "fupin_bench_tally")):
        url, engine = fresh(name)
        read_models.create_all(engine)
        engine.dispose()
        container = ServiceContainer(cls, {"AMQP_URI": amqp_uri, "DATABASE_URL": url,
                                           "WEB_SERVER_ADDRESS": f"127.0.0.1:{18100 + len(containers)}"})
        container.start()
        containers.append(container)
    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster:
            cluster.ledger.increment("warm", 1)
            deadline = time.time() + 30
            while cluster.tally.tally("warm") != 1 and time.time() < deadline:
                eventlet.sleep(0.01)
            for i in range(samples):
                counter = f"lat-{i}"
                started = time.perf_counter()
                cluster.ledger.increment(counter, 1)
                while cluster.tally.tally(counter) != 1:
                    eventlet.sleep(0.001)
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        for container in reversed(containers):  # the consumer first, so its catch-up finds its source
            container.stop()
    latencies.sort()
    return {"samples": samples, "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[int(0.95 * len(latencies)) - 1], 1), "max_ms": round(latencies[-1], 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    make_cooperative()
    url, engine = fresh("fupin_bench_store")
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "events": args.events,
        "raw_psycopg2_one_per_tx_per_s": raw_inserts(url, args.events, 1),
        "raw_psycopg2_batch100_per_s": raw_inserts(url, args.events, 100),
        "event_store_one_per_tx_per_s": store_appends(engine, args.events, 1),
        "event_store_batch100_per_s": store_appends(engine, args.events, 100),
    }
    engine.dispose()
    results["append_to_applied"] = end_to_end_latency(AMQP, args.latency_samples)
    print(json.dumps(results, indent=2))
    for name in ("fupin_bench_store", "fupin_bench_ledger", "fupin_bench_tally"):
        drop_database(f"{PG}/{name}")


if __name__ == "__main__":
    main()

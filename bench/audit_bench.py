"""What writing the audit row before the answer costs a gateway write (issue 15).

`AuditTrail.record` hands a request's row to the writer green thread and waits for the group
commit that holds it. Measured on a scratch gateway database (`<prefix>_audit_bench`, migrated;
prefix from FUPIN_BENCH_PREFIX, default fupin_bench), with 1 and with --clients concurrent
callers, each recording one row per "request" in a loop: the wait per request (p50/p99/max),
rows per second, and rows per commit. For scale, the same rows written one transaction per row
inline. The trail runs outside nameko here (a stand-in container gives it the engine and
spawns its writer); the work it does is the gateway's.
Run: .venv/bin/python bench/audit_bench.py [--rows 2000] [--clients 8]
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

from gateway.audit import AuditTrail, append_audit  # noqa: E402
from services.common.db import Database, create_db_engine, drop_database, make_cooperative  # noqa: E402
from services.common.migrate import migrate  # noqa: E402

PG = os.environ.get("FUPIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PREFIX = os.environ.get("FUPIN_BENCH_PREFIX", "fupin_bench")


class StandInContainer:
    def __init__(self, engine):
        database = Database.__new__(Database)
        database.engine = engine
        self.dependencies = [database]

    @staticmethod
    def spawn_managed_thread(run):
        return eventlet.spawn(run)


def row():
    return {"actor_id": "bench", "actor_username": "bench", "actor_role": "admin", "method": "POST",
            "path": "/api/v1/users", "status": 201, "idempotency_key": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()), "resource": None}


def summary(latencies, seconds):
    ordered = sorted(latencies)
    return {"rows": len(ordered), "rows_per_second": round(len(ordered) / seconds, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def run_clients(write, clients, rows):
    latencies = []

    def client(count):
        for _ in range(count):
            started = time.perf_counter()
            write([row()])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    pool = [eventlet.spawn(client, rows // clients) for _ in range(clients)]
    for green in pool:
        green.wait()
    return summary(latencies, time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    make_cooperative()
    url = f"{PG}/{PREFIX}_audit_bench"
    drop_database(url)
    migrate("gateway", url)
    engine = create_db_engine(url, pool_size=args.clients + 2)

    transactions = [0]

    def inline(rows):
        transactions[0] += 1
        with engine.begin() as conn:
            append_audit(conn, rows)

    trail = AuditTrail()
    trail.container = StandInContainer(engine)
    trail.setup()
    write_batch = trail._write

    def counted(batch):
        transactions[0] += 1
        return write_batch(batch)

    trail._write = counted  # type: ignore[method-assign]
    trail.start()
    results = {}
    for clients in (1, args.clients):
        for name, write in (("inline, one transaction per row", inline), ("AuditTrail.record (group commit)", trail.record)):
            transactions[0] = 0
            measured = run_clients(write, clients, args.rows)
            measured["transactions_per_row"] = round(transactions[0] / measured["rows"], 2)
            results[f"{clients} client(s): {name}"] = measured
    trail.stop()
    engine.dispose()
    drop_database(url)
    print(json.dumps({"machine": platform.node(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()

"""Commands and reads while a read-model rebuild runs: the shadow-table rebuild against the
in-place one main had before it (TRUNCATE, then replay, under ACCESS EXCLUSIVE throughout).

On a scratch database (`<prefix>_rebuild_bench`, prefix from FUPIN_BENCH_PREFIX, default
fupin_bench): N events over S streams with a `counters` read model (one upsert per event, a
secondary index). While `rebuild` replays them in one green thread, a writer runs commands the
chassis way (lock the stream, append, project, commit) and a reader reads one counter, each
one at a time, in the same process, as a service's workers run beside its rebuild. Reported:
the rebuild's duration, how many commands and reads completed during it, their p50/p99/max.
Run: .venv/bin/python bench/rebuild_bench.py [--events 50000] [--streams 2000] [--mode both]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import eventlet

eventlet.monkey_patch()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, Table, Text, create_engine, select, text  # noqa: E402
from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from services.common import store as store_module  # noqa: E402
from services.common.db import drop_database, ensure_database, make_cooperative  # noqa: E402
from services.common.events import NewEvent  # noqa: E402
from services.common.rebuild import _replay, rebuild  # noqa: E402
from services.common.store import EventStore  # noqa: E402

PG = os.environ.get("FUPIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PREFIX = os.environ.get("FUPIN_BENCH_PREFIX", "fupin_bench")

read_models = MetaData()
counters = Table(
    "counters", read_models,
    Column("counter_id", Text, primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("increments", Integer, nullable=False),
    Index("ix_counters_total", "total"),
)


class Projections:
    READ_MODEL_TABLES = ("counters",)

    @staticmethod
    def project(session, event):
        by = event.payload["by"]
        session.execute(pg_insert(counters).values(counter_id=event.stream_id, total=by, increments=1)
                        .on_conflict_do_update(index_elements=["counter_id"],
                                               set_={"total": counters.c.total + by,
                                                     "increments": counters.c.increments + 1}))


def in_place_rebuild(session, projections, batch_size=2000):
    """The rebuild main had before services/common/rebuild.py."""
    session.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in projections.READ_MODEL_TABLES)))
    return _replay(session, projections, 0, batch_size)[0]


def seed(engine, events, streams):
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE events, counters"))
        conn.execute(text(
            "INSERT INTO events (event_id, stream_type, stream_id, version, event_type, payload) "
            "SELECT gen_random_uuid(), 'counter', 's' || (n % :streams), n / :streams + 1, 'incremented', "
            "'{\"by\": 1}'::jsonb FROM generate_series(0, :events - 1) AS n"), {"streams": streams, "events": events})
        conn.execute(text(
            "INSERT INTO counters SELECT stream_id, count(*), count(*) FROM events GROUP BY stream_id"))


def command(engine, stream_id):
    with Session(engine) as session:
        store = EventStore(session)
        store.lock_stream("counter", stream_id)
        version = store.stream_version("counter", stream_id)
        for event in store.append("counter", stream_id, version, [NewEvent("incremented", {"by": 1})]):
            Projections.project(session, event)
        session.commit()


def read(engine, stream_id):
    with engine.connect() as conn:
        return conn.execute(select(counters.c.total).where(counters.c.counter_id == stream_id)).scalar()


def summary(latencies):
    if not latencies:
        return {"count": 0}
    ordered = sorted(latencies)
    return {"count": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def measure(engine, mode, streams):
    done = []
    writes, reads = [], []

    def loop(action, latencies, offset):
        i = offset
        while not done:
            started = time.perf_counter()
            action(engine, f"s{i % streams}")
            finished = time.perf_counter()
            latencies.append((finished, finished - started))
            i += 7

    def baseline(action, count=200):
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            action(engine, f"s{i % streams}")
            latencies.append(time.perf_counter() - started)
        return summary(latencies)

    idle = {"commands": baseline(command), "reads": baseline(read)}
    writer = eventlet.spawn(loop, command, writes, 0)
    reader = eventlet.spawn(loop, read, reads, 3)
    eventlet.sleep(0.5)  # both running before the rebuild starts
    started = time.perf_counter()
    with Session(engine) as session:
        replayed = (rebuild if mode == "shadow" else in_place_rebuild)(session, Projections)
        session.commit()
    seconds = time.perf_counter() - started
    done.append(True)
    writer.wait()
    reader.wait()
    def during(latencies):  # what finished after the rebuild began, not in the half second before
        return summary([latency for finished, latency in latencies if finished >= started])

    return {"mode": mode, "rebuild_seconds": round(seconds, 1), "events_replayed": replayed,
            "idle": idle, "during_rebuild": {"commands": during(writes), "reads": during(reads)}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--streams", type=int, default=2_000)
    parser.add_argument("--mode", choices=("shadow", "in-place", "both"), default="both")
    args = parser.parse_args()
    make_cooperative()
    url = f"{PG}/{PREFIX}_rebuild_bench"
    drop_database(url)
    ensure_database(url)
    engine = create_engine(url, pool_size=5)
    store_module.metadata.create_all(engine)
    read_models.create_all(engine)
    results = []
    for mode in (("in-place", "shadow") if args.mode == "both" else (args.mode,)):
        seed(engine, args.events, args.streams)
        results.append(measure(engine, mode, args.streams))
    engine.dispose()
    drop_database(url)
    print(json.dumps({"events": args.events, "streams": args.streams, "machine": platform.node(),
                      "cpus": os.cpu_count(), "load_average": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()

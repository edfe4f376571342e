"""The command path: ours beside pyeventsourcing 9.5.6 and raw psycopg2, and its cost by history length.

In one run, on the same PostgreSQL, one command at a time (no concurrency, so the figures are
the cost of one command, not of the machine's parallelism), the measures taking turns in rounds
(`--rounds`) so that a shared machine's changing load falls on all of them alike:
  1. raw psycopg2: one INSERT of an event row per transaction (the floor);
  2. pyeventsourcing 9.5.6 (PostgreSQL persistence): repository.get + trigger + save of an
     aggregate with a 10-event history;
  3. ours: the registry's real `assess_income` command (validate, lock, load/snapshot, fold,
     decide, append, project the household's read-model rows, commit) on households with a
     10-event history;
  4. ours again on households with a 500-event history: the cost must not grow with history.
Databases: fupin_bench_cmd_registry, fupin_bench_cmd_es, fupin_bench_cmd_raw (dropped after).
Run: .venv/bin/python bench/command_bench.py [--commands N] [--rounds R] [--long-history 500]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg2  # noqa: E402
from psycopg2.extras import Json  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from services.common import store as store_module  # noqa: E402
from services.common.db import _WorkerDb, create_db_engine, drop_database, ensure_database  # noqa: E402
from services.common.events import NewEvent  # noqa: E402
from services.common.migrate import migrate  # noqa: E402
from services.common.store import EventStore  # noqa: E402
from services.registry import projections  # noqa: E402
from services.registry.service import RegistryService  # noqa: E402

PG = os.environ.get("FUPIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PAYLOAD = {"household_id": "h-000001", "year": 2023, "per_capita_income": "5230.00", "assessed_on": "2023-06-30"}
CONTEXT = {"actor": {"id": "bench", "role": "county_admin"}}


def per_second(latencies):
    return round(len(latencies) / sum(latencies), 1)


def summary(latencies):
    ordered = sorted(latencies)
    return {"per_s": per_second(latencies), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2)}


def timed_each(calls):
    latencies = []
    for call in calls:
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


# --- raw psycopg2 ------------------------------------------------------------------------------------

def raw_one_row_commits():
    """Returns run(count) -> latencies, and close()."""
    url = f"{PG}/fupin_bench_cmd_raw"
    drop_database(url)
    ensure_database(url)
    engine = create_db_engine(url)
    store_module.metadata.create_all(engine)
    engine.dispose()
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    sql = ("INSERT INTO events (event_id, stream_type, stream_id, version, event_type, payload, metadata) "
           "VALUES (%s, 'household', %s, 1, 'income_assessed', %s, '{}')")

    def one():
        cur.execute(sql, (str(uuid.uuid4()), f"raw-{uuid.uuid4().hex}", Json(PAYLOAD)))
        conn.commit()

    return (lambda count: timed_each(one for _ in range(count))), conn.close


# --- pyeventsourcing ---------------------------------------------------------------------------------

def pyeventsourcing_commands(history, streams):
    """Returns run(count) -> latencies, and close()."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Household(Aggregate):
        @event("Registered")
        def __init__(self, household_no):
            self.household_no = household_no
            self.incomes = []

        @event("IncomeAssessed")
        def assess_income(self, year, per_capita_income, assessed_on):
            self.incomes.append((year, per_capita_income, assessed_on))

    class Registry(Application):
        def register(self, household_no):
            household = Household(household_no)
            self.save(household)
            return household.id

        def assess_income(self, household_id, year, amount, assessed_on):
            household = self.repository.get(household_id)
            household.assess_income(year, amount, assessed_on)
            self.save(household)

    url = f"{PG}/fupin_bench_cmd_es"
    drop_database(url)
    ensure_database(url)
    app = Registry(env={
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "fupin_bench_cmd_es",
        "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "postgres", "CREATE_TABLE": "y",
    })
    ids = [app.register(f"es-{n}") for n in range(streams)]
    for household_id in ids:
        for _ in range(history - 1):
            app.assess_income(household_id, 2023, "5230.00", "2023-06-30")

    def run(count):
        return timed_each(
            lambda n=n: app.assess_income(ids[n % streams], 2023, "5230.00", "2023-06-30") for n in range(count))

    return run, app.close


# --- ours: the registry service's own command ------------------------------------------------------------

class BenchRegistry(RegistryService):
    """The real RegistryService methods, with its nameko dependencies given by hand."""

    def __init__(self, engine):
        self.db = _WorkerDb(engine)
        self.config = {}
        self.nudge = lambda: None


def seed_household(registry, engine, history):
    """A household with `history` events: registered, then income assessments appended straight
    into the store (as if recorded long ago), its read model refreshed from the last one."""
    household = registry.register_household({
        "household_no": f"bench-{uuid.uuid4().hex[:12]}", "village_id": "v-bench", "head_name": "Bench",
        "poverty_causes": ["illness"], "registered_on": "2020-01-01"}, CONTEXT)
    household_id = household["household_id"]
    with Session(engine) as session:
        store = EventStore(session)
        payload = {**PAYLOAD, "household_id": household_id}
        stored = store.append("household", household_id, 1,
                              [NewEvent("income_assessed", payload, "2023-06-30")] * (history - 1), {})
        projections.project(session, stored[-1])
        session.commit()
    return household_id


def our_commands(registry, household_ids, count):
    def one(n):
        registry.assess_income({"household_id": household_ids[n % len(household_ids)], "year": 2023,
                                "per_capita_income": "5230.00", "assessed_on": "2023-06-30"}, CONTEXT)

    return timed_each(lambda n=n: one(n) for n in range(count))


def ours(long_history, streams):
    """Returns {name: run(count) -> latencies} for 10-event and long histories, and close()."""
    url = f"{PG}/fupin_bench_cmd_registry"
    drop_database(url)
    migrate("registry", url)
    engine = create_db_engine(url)
    registry = BenchRegistry(engine)
    registry.register_township({"township_id": "t-bench", "name": "Bench"}, CONTEXT)
    registry.register_village({"village_id": "v-bench", "township_id": "t-bench", "name": "Bench"}, CONTEXT)
    short = [seed_household(registry, engine, 10) for _ in range(streams)]
    long = [seed_household(registry, engine, long_history) for _ in range(streams)]
    our_commands(registry, short + long, 2 * streams)  # warm up: first snapshots, caches, connections
    runs = {"history_10": lambda count: our_commands(registry, short, count),
            f"history_{long_history}": lambda count: our_commands(registry, long, count)}
    return runs, engine.dispose


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000, help="per measure, over all rounds")
    parser.add_argument("--rounds", type=int, default=10,
                        help="the measures take turns in this many rounds, so a change in the machine's "
                             "load touches all of them alike")
    parser.add_argument("--long-history", type=int, default=500)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--only", choices=("ours", "all"), default="all")
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "load_average_at_start": os.getloadavg(), "commands": args.commands, "rounds": args.rounds,
               "date": date.today().isoformat()}
    runs, closers = {}, []
    mine, close = ours(args.long_history, args.streams)
    runs.update(mine)
    closers.append(close)
    if args.only == "all":
        runs["pyeventsourcing_9_5_6_history_10"], close = pyeventsourcing_commands(10, args.streams)
        closers.append(close)
        runs["raw_psycopg2_one_row_commits"], close = raw_one_row_commits()
        closers.append(close)
    latencies: dict = {name: [] for name in runs}
    per_round = max(1, args.commands // args.rounds)
    for _ in range(args.rounds):
        for name, run in runs.items():
            latencies[name] += run(per_round)
    for close in closers:
        close()
    long_name = f"history_{args.long_history}"
    results["ours"] = {name: summary(latencies[name]) for name in ("history_10", long_name)}
    results["ours"]["long_over_short_p50"] = round(
        statistics.median(latencies[long_name]) / statistics.median(latencies["history_10"]), 3)
    if args.only == "all":
        for name in ("pyeventsourcing_9_5_6_history_10", "raw_psycopg2_one_row_commits"):
            results[name] = summary(latencies[name])
        ours_rate = results["ours"]["history_10"]["per_s"]
        results["ours_over_pyeventsourcing"] = round(ours_rate / results["pyeventsourcing_9_5_6_history_10"]["per_s"], 2)
        results["ours_over_raw"] = round(ours_rate / results["raw_psycopg2_one_row_commits"]["per_s"], 2)
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    for name in ("registry", "es", "raw"):
        drop_database(f"{PG}/fupin_bench_cmd_{name}")


if __name__ == "__main__":
    main()

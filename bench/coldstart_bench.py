"""The assessment's first ranking after a restart: from every source row, beside from the persisted facts.

Writes `--events` source events (the synthetic county of assessment_bench.py, 2,000 cadres, year
after year) straight into a fresh assessment database's `source_events`, then in one run, each
`--repeat` times, as after a restart (the in-process cache emptied):
  1. from rows: load_facts reads every row (server-side cursor) and applies it, then the first
     full cadre ranking;
  2. the facts persisted (projections.save_facts_snapshot, as the catch-up timer does), with the
     cadre ranking kept for them (service._kept_ranking, as a read keeps it);
  3. from the persisted facts: load_facts restores them (and applies nothing newer), then the
     first full cadre ranking, computed (scoring.rank_all);
  4. the same restore, then the first ranking as a read gets it (service._kept_ranking): the
     ranking persisted with the facts.
Database: fupin_bench_coldstart_assessment (dropped after).
Run: .venv/bin/python bench/coldstart_bench.py [--events 300000] [--repeat 3]
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

from psycopg2.extras import Json, execute_values  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.assessment_bench import county_events  # noqa: E402
from services.assessment import projections, scoring, service  # noqa: E402
from services.common.db import drop_database  # noqa: E402
from services.common.migrate import migrate  # noqa: E402

PG = os.environ.get("FUPIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def write_rows(engine, target, cadres, pairings):
    """Source rows of consecutive county years until `target`; returns (rows, last year)."""
    written, year = 0, 2017
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        while written < target:
            year += 1
            events = county_events(cadres, pairings, year, id_prefix=f"{year}-")
            events = [(kind, payload) for kind, payload in events if kind in projections.RELEVANT][:target - written]
            rows = [(str(uuid.uuid4()), "bench", written + n, kind, Json(payload))
                    for n, (kind, payload) in enumerate(events, start=1)]
            execute_values(cursor, "INSERT INTO source_events (event_id, source, global_position, event_type, payload)"
                           " VALUES %s", rows, page_size=2000)
            raw.commit()
            written += len(rows)
    finally:
        raw.close()
    return written, year


def first_ranking(engine, period, as_of):
    """(seconds to load the facts, seconds for the first cadre ranking, cadres ranked)."""
    with Session(engine) as session:
        started = time.perf_counter()
        facts = projections.load_facts(session)
        loaded = time.perf_counter()
        ranked = scoring.rank_all("cadre", facts, period, as_of)
        return loaded - started, time.perf_counter() - loaded, len(ranked)


def first_kept_ranking(engine, period, as_of):
    """As first_ranking, the ranking through what a read calls (the kept rankings emptied first)."""
    service._RANKINGS.clear()
    service._LATEST.clear()
    with Session(engine) as session:
        started = time.perf_counter()
        facts = projections.load_facts(session)
        loaded = time.perf_counter()
        ranked = service._kept_ranking("cadre", facts, period, as_of, None)
        return loaded - started, time.perf_counter() - loaded, len(ranked)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--cadres", type=int, default=2000)
    parser.add_argument("--pairings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = f"{PG}/fupin_bench_coldstart_assessment"
    drop_database(url)
    migrate("assessment", url)
    engine = create_engine(url)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "load_average_at_start": os.getloadavg(), "date": date.today().isoformat()}
    started = time.perf_counter()
    rows, year = write_rows(engine, args.events, args.cadres, args.pairings)
    results.update(source_rows=rows, write_seconds=round(time.perf_counter() - started, 1))
    period, as_of = scoring.parse_period(str(year)), date(year + 1, 1, 15)
    from_rows, from_saved, from_saved_ranking = [], [], []
    for _ in range(args.repeat):
        projections._caches.clear()
        with Session(engine) as session:
            session.execute(text("DELETE FROM snapshots"))
            session.commit()
        from_rows.append(first_ranking(engine, period, as_of))
        with Session(engine) as session:
            facts = projections.load_facts(session)
            service._kept_ranking("cadre", facts, period, as_of, None)
            saving = time.perf_counter()
            projections.save_facts_snapshot(session, service._current_rankings(facts))
            session.commit()
            results["save_seconds"] = round(time.perf_counter() - saving, 2)
            results["persisted_mib"] = round(session.execute(
                text("SELECT octet_length(state) FROM snapshots")).scalar() / 2**20, 1)
        projections._caches.clear()
        from_saved.append(first_ranking(engine, period, as_of))
        assert projections._caches[str(engine.url)]["restored"], "the persisted facts were not used"
        projections._caches.clear()
        from_saved_ranking.append(first_kept_ranking(engine, period, as_of))

    def summary(samples):
        load = statistics.median(s[0] for s in samples)
        rank = statistics.median(s[1] for s in samples)
        return {"facts_load_s": round(load, 2), "first_cadre_ranking_s": round(rank, 2),
                "first_ranking_after_restart_s": round(load + rank, 2), "cadres": samples[0][2]}

    results["from_every_row"] = summary(from_rows)
    results["from_persisted_facts"] = summary(from_saved)
    results["from_persisted_facts_and_ranking"] = summary(from_saved_ranking)
    per_million = 1_000_000 / rows
    results["extrapolated_to_1m_events_linear"] = {
        "from_every_row_s": round(results["from_every_row"]["facts_load_s"] * per_million
                                  + results["from_every_row"]["first_cadre_ranking_s"], 1),
        "from_persisted_facts_s": round(results["from_persisted_facts"]["facts_load_s"] * per_million
                                        + results["from_persisted_facts"]["first_cadre_ranking_s"], 1),
    }
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    engine.dispose()
    drop_database(url)


if __name__ == "__main__":
    main()

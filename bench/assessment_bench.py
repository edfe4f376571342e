"""Assessment: score and rank a large county, and rebuild from a million events.

Part 1 (in memory, pure domain): a synthetic county of 2,000 cadres in 100 units, 10,000
pairings and a year of monthly visits (about 2 % missed), with exams, spot checks, projects and
loans. Times building the facts, one cadre's score (cold: first call builds the per-subject
index; warm: later calls) and the full ranking of every cadre, unit and township; peak memory.

Part 2 (real services): the same county repeated over several years until the source holds
`--rebuild-events` events (default 1,000,000), written straight into a source service's event
store; then the real AssessmentService replays them over RPC (`rebuild_read_models`, batches of
500 through the inbox) and the first ranking afterwards loads the facts from PostgreSQL.

Run: .venv/bin/python bench/assessment_bench.py [--cadres 2000 --pairings 10000] [--rebuild-events N]
"""
import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import date

import eventlet

eventlet.monkey_patch()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from psycopg2.extras import Json, execute_values  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from services.assessment import scoring  # noqa: E402
from services.assessment.facts import Facts  # noqa: E402
from services.common.db import make_cooperative  # noqa: E402
from services.common.events import StoredEvent  # noqa: E402
from tests.rulebook_defaults import declared_defaults  # noqa: E402

PG = os.environ.get("FUPIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
AMQP = os.environ.get("FUPIN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


def county_events(cadres, pairings, year, seed=7, id_prefix=""):
    """(type, payload) tuples of one county year; ids are stable across years except visits."""
    rng = random.Random(seed + year)
    out = declared_defaults()  # every service's rulebook defaults, as each puts them on record at start
    units = max(1, cadres // 20)
    townships = 10
    for t in range(townships):
        out.append(("township_registered", {"township_id": f"T{t}", "name": f"乡镇{t}"}))
    for u in range(units):
        out.append(("unit_registered", {"unit_id": f"U{u}", "name": f"单位{u}", "department": "transport",
                                        "parent_unit_id": None}))
        out.append(("village_assigned", {"unit_id": f"U{u}", "village_id": f"V{u % 60}",
                                         "from": f"{year}-01-01", "until": None}))
    for c in range(cadres):
        rank = "head" if c % 20 == 0 else ("leader" if c % 20 < 4 else "staff")
        out.append(("cadre_registered", {"cadre_id": f"C{c}", "unit_id": f"U{c % units}", "name": f"干部{c}",
                                         "rank": rank, "deputy_section_or_above": rank != "staff"}))
        out.append(("exam_scored", {"cadre_id": f"C{c}", "unit_id": f"U{c % units}", "exam_id": f"E{year}-{c}",
                                    "score": rng.randint(60, 100), "taken_on": f"{year}-06-15"}))
    for p in range(pairings):
        cadre = p % cadres
        unit = cadre % units
        household = f"H{p}"
        pairing = f"P{p}"
        out.append(("household_registered", {"household_id": household, "household_no": f"N{p}",
                                             "village_id": f"V{p % 60}", "township_id": f"T{p % townships}",
                                             "head_name": "户主", "poverty_causes": ["illness"],
                                             "registered_on": f"{year}-01-01"}))
        out.append(("household_paired", {"pairing_id": pairing, "cadre_id": f"C{cadre}", "unit_id": f"U{unit}",
                                          "household_id": household, "from": f"{year}-01-01"}))
        for month in range(1, 13):
            if rng.random() < 0.02:
                continue
            out.append(("visit_recorded", {
                "visit_id": f"{id_prefix}{uuid.UUID(int=rng.getrandbits(128))}", "pairing_id": pairing,
                "cadre_id": f"C{cadre}", "unit_id": f"U{unit}", "household_id": household,
                "visited_on": f"{year}-{month:02d}-{rng.randint(1, 28):02d}", "measures": ["产业"],
                "outcome": "", "changes": "", "policy_explained": True}))
        if p % 10 == 0:
            out.append(("awareness_checked", {"check_id": f"K{year}-{p}", "household_id": household,
                                              "checked_on": f"{year}-09-10", "passed": rng.random() < 0.9,
                                              "cadre_id": f"C{cadre}", "unit_id": f"U{unit}"}))
    for j in range(200):
        project = f"PR{year}-{j}"
        deadline = f"{year}-11-30"
        out.append(("project_planned", {"project_id": project, "department": "transport", "category": "village_road",
                                        "level": "township", "township_id": f"T{j % townships}", "village_ids": [],
                                        "budget": "500000.00", "plan_year": year, "deadline": deadline}))
        out.append(("funds_allocated", {"project_id": project, "department": "transport", "plan_year": year,
                                        "amount": "500000.00", "source": "central", "on": f"{year}-03-01"}))
        out.append(("funds_disbursed", {"project_id": project, "department": "transport", "plan_year": year,
                                        "amount": "450000.00", "on": f"{year}-08-01", "payee": "施工方"}))
        out.append(("project_started", {"project_id": project, "department": "transport", "on": f"{year}-04-01"}))
        done = f"{year}-{rng.choice(['10', '11', '12'])}-15"
        out.append(("project_completed", {"project_id": project, "department": "transport", "on": done,
                                          "quantity_done": "1", "deadline": deadline, "late": done > deadline}))
    for k in range(400):
        loan = f"L{year}-{k}"
        township = f"T{k % townships}"
        out.append(("loan_applied", {"loan_id": loan, "household_id": f"H{k}", "enterprise_name": None,
                                     "township_id": township, "amount": "30000.00", "industry": "livestock",
                                     "term_months": 12, "applied_on": f"{year - 1}-12-01"}))
        out.append(("township_recommended", {"loan_id": loan, "township_id": township, "on": f"{year - 1}-12-06",
                                             "recommended": True, "note": "", "due_by": f"{year - 1}-12-08",
                                             "working_days": 4, "within_limit": True}))
        out.append(("loan_decided", {"loan_id": loan, "township_id": township, "on": f"{year - 1}-12-20",
                                     "approved": True, "reason": "", "due_by": f"{year - 1}-12-20",
                                     "working_days": 10, "within_limit": True}))
        out.append(("loan_disbursed", {"loan_id": loan, "township_id": township, "on": f"{year - 1}-12-21",
                                       "principal": "30000.00", "annual_rate": "0.0435",
                                       "maturity_date": f"{year}-12-21"}))
        if rng.random() < 0.93:
            out.append(("loan_repaid", {"loan_id": loan, "township_id": township, "on": f"{year}-12-01",
                                        "principal": "30000.00", "interest": "1305.00", "outstanding_after": "0.00"}))
    return out


def stored(events):
    return [StoredEvent(position, str(uuid.UUID(int=position)), "", "", 0, kind, 1, payload)
            for position, (kind, payload) in enumerate(events, start=1)]


def timed(fn, repeat=1):
    samples = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return result, samples


def in_memory(cadres, pairings, year):
    events = stored(county_events(cadres, pairings, year))
    facts = Facts()
    _, build = timed(lambda: [facts.apply(e) for e in events])
    period, as_of = scoring.parse_period(str(year)), date(year + 1, 1, 15)
    cadre_ids = facts.subject_ids("cadre")
    _, cold = timed(lambda: scoring.score("cadre", cadre_ids[0], facts, period, as_of))
    rng = random.Random(1)
    _, warm = timed(lambda: scoring.score("cadre", rng.choice(cadre_ids), facts, period, as_of), repeat=50)
    ranked, full = timed(lambda: scoring.rank_all("cadre", facts, period, as_of))
    _, units = timed(lambda: scoring.rank_all("unit", facts, period, as_of))
    _, townships = timed(lambda: scoring.rank_all("township", facts, period, as_of))
    # Memory apart from the timings (tracemalloc slows Python code about twofold).
    tracemalloc.start()
    measured = Facts()
    for event in events:
        measured.apply(event)
    scoring.rank_all("cadre", measured, period, as_of)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ms = lambda seconds: round(seconds * 1000, 1)  # noqa: E731
    return {
        "events": len(events), "cadres": len(cadre_ids), "pairings": pairings,
        "visits": sum(1 for e in events if e.type == "visit_recorded"),
        "build_facts_ms": ms(build[0]),
        "one_cadre_score_cold_ms": ms(cold[0]),
        "one_cadre_score_warm_ms_p50": ms(statistics.median(warm)),
        "one_cadre_score_warm_ms_max": ms(max(warm)),
        "rank_all_cadres_ms": ms(full[0]), "rank_all_units_ms": ms(units[0]),
        "rank_all_townships_ms": ms(townships[0]),
        "python_peak_mib_facts_and_ranking": round(peak / 2**20, 1),
        "best_cadre": {k: ranked[0][k] for k in ("subject_id", "score", "grade")},
    }


def rebuild(cadres, pairings, target_events):
    from nameko.standalone.rpc import ClusterRpcProxy

    from fupin.cli import show_replay_progress
    from services.assessment.service import AssessmentService
    from services.common.chassis import EventSourcedService
    from services.common.db import drop_database
    from services.common.migrate import migrate
    from tests.support import running

    make_cooperative()
    source_url, assessment_url = f"{PG}/fupin_bench_source", f"{PG}/fupin_bench_assessment"
    for url in (source_url, assessment_url):
        drop_database(url)
    migrate("projects", source_url)  # any service's migrations carry the event store tables
    migrate("assessment", assessment_url)

    engine = create_engine(source_url)
    written, year, started = 0, 2016, time.perf_counter()
    raw = engine.raw_connection()
    cursor = raw.cursor()
    while written < target_events:
        rows = []
        for kind, payload in county_events(cadres, pairings, year, id_prefix=f"{year}-"):
            if written + len(rows) >= target_events:
                break
            event_id = str(uuid.uuid4())
            rows.append((event_id, "bench", event_id, 1, kind, Json(payload)))
        execute_values(cursor, "INSERT INTO events (event_id, stream_type, stream_id, version, event_type, payload)"
                               " VALUES %s", rows, page_size=5000)
        raw.commit()
        written += len(rows)
        year += 1
    # These events stand for history that was published on the bus long ago: a rebuild replays
    # the store, it does not re-publish it. Without this the source's relay would push every
    # event onto the bus during the replay, and the assessment would take each one again as a
    # live delivery (one transaction per event) racing the replay for the same inbox rows.
    cursor.execute("INSERT INTO relay_checkpoint (name, position) SELECT 'bus', max(global_position) FROM events")
    raw.commit()
    write_seconds = time.perf_counter() - started
    raw.close()

    class BenchSource(EventSourcedService):
        """A source service whose store holds the generated events; only its events_since is used."""
        name = "projects"
        projections = None

    class BenchAssessment(AssessmentService):
        """The real assessment service, reading only the one bench source (the other sources
        are not running here, and asking them would only add RPC timeouts)."""
        sources = ("projects",)

    config = {"AMQP_URI": AMQP, "max_workers": 10}
    with running(BenchSource, {**config, "DATABASE_URL": source_url, "WEB_SERVER_ADDRESS": "127.0.0.1:0"}), \
            running(BenchAssessment, {**config, "DATABASE_URL": assessment_url,
                                        "WEB_SERVER_ADDRESS": "127.0.0.1:0"}), \
            ClusterRpcProxy(config, timeout=3600) as cluster:
        time.sleep(2)  # let the eager catch-up tick start; the rebuild then redoes everything
        started = time.monotonic()
        reply = cluster.assessment.rebuild_read_models.call_async()
        show_replay_progress(config, "assessment", reply, started)
        result, replay = reply.result(), [time.monotonic() - started]
        rank = lambda: cluster.assessment.rankings("cadre", str(year - 1), f"{year}-01-15", 20)  # noqa: E731
        _, first = timed(rank)  # the rebuild left the facts loaded
        # As after a restart: nothing cached, the ranking waits for the full load from PostgreSQL.
        # (The service runs in this process, so its cache is this module's.)
        from services.assessment import projections
        projections._caches.clear()
        _, restarted = timed(rank)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"events_in_source": written, "years": year - 2016, "write_source_seconds": round(write_seconds, 1),
            "rebuild_seconds": round(replay[0], 1), "rebuild_events_per_second": round(written / replay[0]),
            "rebuild_result": {k: v for k, v in result.items() if k != "sources"},
            "first_ranking_after_rebuild_seconds": round(first[0], 2),
            "first_ranking_after_restart_seconds": round(restarted[0], 2),
            "process_max_rss_mib": round(rss)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cadres", type=int, default=2000)
    parser.add_argument("--pairings", type=int, default=10000)
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--rebuild-events", type=int, default=1_000_000, help="0 skips part 2")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "assessment.json"))
    args = parser.parse_args()
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "arch": platform.machine()},
              "in_memory": in_memory(args.cadres, args.pairings, args.year)}
    print(json.dumps(report, ensure_ascii=False, indent=2), flush=True)
    if args.rebuild_events:
        report["rebuild"] = rebuild(args.cadres, args.pairings, args.rebuild_events)
        print(json.dumps(report["rebuild"], ensure_ascii=False, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()

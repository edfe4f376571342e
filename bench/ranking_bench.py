"""A kept cadre ranking after one new visit: computed whole beside brought up to date (issue 17).

In memory, the synthetic county of assessment_bench.py (2,000 cadres, 10,000 pairings, a year):
the first full cadre ranking, then `--visits` times one visit applied the way load_facts applies
it (recorded in the change log, a new facts version) and the ranking asked for again, once with
the incremental update (service._kept_ranking) and once computed whole (scoring.rank_all).
Run: .venv/bin/python bench/ranking_bench.py [--visits 20]
"""
import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.assessment_bench import county_events, stored  # noqa: E402
from services.assessment import incremental, scoring, service  # noqa: E402
from services.assessment.facts import Facts  # noqa: E402
from services.common.events import StoredEvent  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cadres", type=int, default=2000)
    parser.add_argument("--pairings", type=int, default=10_000)
    parser.add_argument("--visits", type=int, default=20)
    args = parser.parse_args()
    year = 2023
    facts = Facts()
    facts.changes = incremental.ChangeLog()
    for event in stored(county_events(args.cadres, args.pairings, year)):
        facts.apply(event)
    facts.loaded_version = (id(facts), "first", 0, 0)
    period, as_of = scoring.parse_period(str(year)), date(year + 1, 1, 15)
    started = time.perf_counter()
    service._kept_ranking("cadre", facts, period, as_of, None)
    first = time.perf_counter() - started
    rng, kept, whole = random.Random(3), [], []
    pairings = [p for p in facts.pairings.values() if p.cadre_id]
    for n in range(1, args.visits + 1):
        pairing = rng.choice(pairings)
        visit = StoredEvent(10**9 + n, str(uuid.uuid4()), "", "", 0, "visit_recorded", 1, {
            "visit_id": str(uuid.uuid4()), "pairing_id": pairing.pairing_id, "cadre_id": pairing.cadre_id,
            "unit_id": pairing.unit_id, "household_id": pairing.household_id, "visited_on": f"{year}-12-{n:02d}"})
        facts.apply(visit)
        facts.changes.record(incremental.affected_subjects(facts, visit.type, visit.payload))
        facts.loaded_version = (id(facts), "first", n, 0)
        started = time.perf_counter()
        updated = service._kept_ranking("cadre", facts, period, as_of, None)
        kept.append(time.perf_counter() - started)
        started = time.perf_counter()
        full = scoring.rank_all("cadre", facts, period, as_of)
        whole.append(time.perf_counter() - started)
        assert [(c["subject_id"], c["score"], c["rank"]) for c in updated] == \
            [(c["subject_id"], c["score"], c["rank"]) for c in full]
    ms = lambda seconds: round(seconds * 1000, 1)  # noqa: E731
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(), "date": date.today().isoformat(), "cadres": args.cadres,
        "first_full_ranking_ms": ms(first),
        "after_one_visit_incremental_ms_p50": ms(statistics.median(kept)), "incremental_ms_max": ms(max(kept)),
        "after_one_visit_whole_ms_p50": ms(statistics.median(whole)), "whole_ms_max": ms(max(whole)),
    }, indent=2))


if __name__ == "__main__":
    main()

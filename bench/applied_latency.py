"""Append → assessment applied, for every event the sources recorded in a window (issue 17).

For each event a source service appended since `--since` (its `events.recorded_at`, set by the
source's PostgreSQL in the command's transaction), the time until the assessment applied it
(`inbox.applied_at`, set by the same server in the assessment's transaction). Both clocks are
the one PostgreSQL's, so nothing here depends on the load tool's timing. Run it right after a
load (bench/locustfile.py) against the platform's own databases:

    .venv/bin/python bench/applied_latency.py --since '2026-12-02 18:00:00+00' --json bench/results/x.json

An event not applied yet is counted as `not_applied` (and shows the assessment falling behind).
"""
import argparse
import json
import os
import statistics

import psycopg2

SOURCES = ("registry", "assistance", "projects", "credit", "supervision")


def url(component):
    return os.environ.get(f"{component.upper()}_DATABASE_URL", f"postgresql://postgres@localhost:5432/fupin_{component}")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since", required=True, help="a timestamp PostgreSQL reads, e.g. '2026-12-02 18:00:00+00'")
    parser.add_argument("--until", default="infinity")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    recorded = {}  # event_id -> (source, type, recorded_at)
    for source in SOURCES:
        with psycopg2.connect(url(source)) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT event_id::text, event_type, recorded_at FROM events"
                           " WHERE recorded_at >= %s AND recorded_at < %s", (args.since, args.until))
            for event_id, event_type, at in cursor:
                recorded[event_id] = (source, event_type, at)
    applied = {}
    with psycopg2.connect(url("assessment")) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT event_id::text, applied_at FROM inbox WHERE event_id = ANY(%s::uuid[])",
                       (list(recorded),))
        applied = dict(cursor.fetchall())
    by_type = {}
    for event_id, (source, event_type, at) in recorded.items():
        if event_id in applied:
            by_type.setdefault(f"{source}.{event_type}", []).append((applied[event_id] - at).total_seconds() * 1000)
    every = [ms for values in by_type.values() for ms in values]

    def summary(values):
        return {"events": len(values), "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(percentile(values, 0.95), 1), "p99_ms": round(percentile(values, 0.99), 1),
                "max_ms": round(max(values), 1)} if values else {"events": 0}

    result = {"since": args.since, "until": args.until, "recorded": len(recorded),
              "not_applied": len(recorded) - len(every), "all": summary(every),
              "by_type": {name: summary(values) for name, values in sorted(by_type.items())}}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()

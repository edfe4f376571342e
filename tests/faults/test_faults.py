"""Nothing lost, nothing doubled, under faults, on the real platform (issue 15).

Every component runs as its own `nameko run` process (as `fupin up` runs them) under fupin's
watchdog. Clients send commands through the gateway, each with its own Idempotency-Key, and
retry with the same key on anything but a definite answer, while the suite

1. SIGKILLs each process in turn, mid-load (the watchdog starts it again);
2. takes RabbitMQ away for a few seconds (every connection cut, new ones refused: see
   platform.BrokerProxy) and measures how long until every process serves again, by itself;
3. delivers events twice (re-published to the sources' exchanges) and an RPC command twice
   (as nameko redelivers a message after a crash between commit and ack).

Then it checks, in the databases: every acknowledged command is stored exactly once and is in
the gateway's audit trail, no key ran twice, and the assessment holds every source event exactly
once. It prints the counts.
"""
import itertools
import time
import uuid

import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Producer
from sqlalchemy import create_engine, text

from services.assessment.projections import RELEVANT
from tests import support
from tests.faults.platform import ADMIN_PASSWORD, Platform

CLIENTS = 6
LOAD_SECONDS_AFTER_FAULTS = 8
BROKER_OUTAGE_SECONDS = 5
SERVING_AGAIN_WITHIN = 30
DEFINITE = {200, 201}
RETRIED = {502, 503, 504}


@pytest.fixture(scope="module")
def platform(infra, tmp_path_factory):
    vhost = support.fresh_vhost("faults")
    platform = Platform(vhost, tmp_path_factory.mktemp("fault-logs"))
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


class Ledger:
    """What the clients saw: acknowledged commands, retries, answers by status."""

    def __init__(self):
        self.acknowledged = []  # (kind, key, body)
        self.statuses = {}
        self.retries = 0
        self.refused = []  # a definite 4xx: must not happen for these valid commands
        self.server_errors = []  # 500s: what they said

    def count(self, status):
        self.statuses[status] = self.statuses.get(status, 0) + 1


def token(base, patience=30):
    """The admin's token; the gateway serves a moment before its first admin is committed."""
    deadline = time.monotonic() + patience
    while True:
        response = requests.post(f"{base}/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD},
                                 timeout=30)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        eventlet.sleep(0.5)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def send(base, auth, path, body, key, ledger, deadline):
    """POST until a definite answer, always with the same key; returns the response or None."""
    headers = {"Authorization": f"Bearer {auth}", "Idempotency-Key": key}
    while time.monotonic() < deadline:
        try:
            response = requests.post(base + path, json=body, headers=headers, timeout=15)
        except requests.RequestException:
            ledger.count("no answer")
            ledger.retries += 1
            eventlet.sleep(0.3)
            continue
        ledger.count(response.status_code)
        if response.status_code in DEFINITE:
            return response
        if response.status_code == 500:
            ledger.server_errors.append((path, response.text[:300]))
        if response.status_code in RETRIED or response.status_code == 500:
            ledger.retries += 1
            eventlet.sleep(0.3)
            continue
        ledger.refused.append((path, response.status_code, response.text[:300]))
        return None
    return None


def seed(base, auth, tag):
    ids = {"township": f"FT-{tag}", "village": f"FV-{tag}", "unit": f"FU-{tag}"}
    for path, body in (("/api/v1/townships", {"township_id": ids["township"], "name": "故障乡"}),
                       ("/api/v1/villages", {"village_id": ids["village"], "township_id": ids["township"],
                                             "name": "故障村", "poor_village": True}),
                       ("/api/v1/units", {"unit_id": ids["unit"], "name": "故障局", "department": "transport",
                                          "parent_unit_id": None})):
        ledger = Ledger()
        response = send(base, auth, path, body, f"seed-{path}-{tag}", ledger, time.monotonic() + 90)
        assert response is not None and response.status_code == 201, (ledger.refused, ledger.statuses)
    return ids


def commands(client, ids):
    """An endless mix of commands for every service; each with its own key."""
    for n in itertools.count():
        key = f"faults-{client}-{n}"
        kind = ("household", "cadre", "project", "loan")[n % 4]
        if kind == "household":
            body = {"household_no": f"F{client}-{n}", "village_id": ids["village"], "head_name": "王伟",
                    "poverty_causes": ["illness"], "registered_on": "2023-01-05"}
            yield kind, key, "/api/v1/households", body
        elif kind == "cadre":
            body = {"cadre_id": f"FC-{client}-{n}", "unit_id": ids["unit"], "name": "李强", "rank": "staff",
                    "deputy_section_or_above": False}
            yield kind, key, "/api/v1/cadres", body
        elif kind == "project":
            body = {"project_id": f"transport-F{client}x{n}", "title": "村道硬化", "department": "transport",
                    "category": "village_road", "level": "township", "township_id": ids["township"],
                    "village_ids": [ids["village"]], "planned_quantity": "2.5", "quantity_unit": "km",
                    "budget": "800000.00", "funding_sources": [{"source": "central", "amount": "800000.00"}],
                    "plan_year": 2023}
            yield kind, key, "/api/v1/projects", body
        else:
            body = {"household_id": None, "enterprise_name": f"合作社{client}-{n}", "township_id": ids["township"],
                    "amount": "10000.00", "industry": "livestock", "term_months": 12, "applied_on": "2023-03-01"}
            yield kind, key, "/api/v1/loans", body


def client_loop(platform, client, ids, ledger, stop):
    auth = None
    for kind, key, path, body in commands(client, ids):
        if stop["now"]:
            return
        if auth is None:
            try:
                auth = token(platform.gateway)
            except (requests.RequestException, AssertionError):
                eventlet.sleep(0.5)
                continue
        response = send(platform.gateway, auth, path, body, key, ledger, time.monotonic() + 120)
        if response is not None:
            ledger.acknowledged.append((kind, key, response.json()))


def duplicate_deliveries(platform):
    """Every source's first events published once more, straight to its exchange: the
    assessment must apply each once. Returns how many were sent twice."""
    sent = 0
    with support.rpc_client(platform.direct_uri, timeout=30) as cluster, \
            Connection(platform.direct_uri) as connection:
        producer = Producer(connection.channel())
        for source in ("registry", "assistance", "projects", "credit"):
            for envelope in getattr(cluster, source).events_since(0, 40):
                producer.publish(envelope, exchange=Exchange(f"{source}.events", type="topic"),
                                 routing_key=envelope["type"], serializer="json")
                sent += 1
    return sent


def redeliver_rpc(platform, engine_of):
    """An acknowledged household registration, sent again as the same RPC message (same body,
    same context, as nameko redelivers it): the first result, no second household."""
    with engine_of("registry").connect() as connection:
        row = connection.execute(text(
            "SELECT stream_id, payload, metadata FROM events WHERE event_type = 'household_registered' "
            "ORDER BY global_position LIMIT 1")).first()
    body = {key: row.payload[key] for key in ("household_no", "village_id", "head_name", "poverty_causes",
                                              "registered_on")}
    context = {"actor": row.metadata["actor"], "idempotency_key": row.metadata["idempotency_key"]}
    with support.rpc_client(platform.direct_uri, timeout=30) as cluster:
        again = cluster.registry.register_household(body, context)
    return row.stream_id, again["household_id"]


def test_nothing_acknowledged_is_lost_or_doubled_and_the_assessment_holds_every_event_once(platform):
    started = time.monotonic()
    auth = token(platform.gateway)
    ids = seed(platform.gateway, auth, uuid.uuid4().hex[:6])
    ledger, stop = Ledger(), {"now": False}
    clients = [eventlet.spawn(client_loop, platform, n, ids, ledger, stop) for n in range(CLIENTS)]

    eventlet.sleep(3)
    killed = []
    for name in ("registry", "assistance", "projects", "credit", "assessment", "gateway"):
        platform.kill(name)  # SIGKILL mid-load: no shutdown, no ack of what it was doing
        killed.append(name)
        eventlet.sleep(4)
    platform.wait_serving(90)

    platform.proxy.outage(BROKER_OUTAGE_SECONDS)  # RabbitMQ gone: connections cut, new ones refused
    back_after = platform.wait_serving(SERVING_AGAIN_WITHIN + 30)
    restarts_after_outage = dict(platform.watchdog.restarts)

    duplicated = duplicate_deliveries(platform)
    eventlet.sleep(LOAD_SECONDS_AFTER_FAULTS)
    stop["now"] = True
    for client in clients:
        client.wait()

    engines = {}

    def engine_of(name):
        if name not in engines:
            engines[name] = create_engine(platform.databases[name])
        return engines[name]

    first_id, replayed_id = redeliver_rpc(platform, engine_of)

    try:
        # --- every acknowledged command stored exactly once -----------------------------------
        stored = {}
        with engine_of("registry").connect() as c:
            stored["household"] = dict(c.execute(text(
                "SELECT payload->>'household_no', count(*) FROM events WHERE event_type = 'household_registered' "
                "GROUP BY 1")).all())
        with engine_of("assistance").connect() as c:
            stored["cadre"] = dict(c.execute(text(
                "SELECT stream_id, count(*) FROM events WHERE event_type = 'cadre_registered' GROUP BY 1")).all())
        with engine_of("projects").connect() as c:
            stored["project"] = dict(c.execute(text(
                "SELECT stream_id, count(*) FROM events WHERE event_type = 'project_planned' GROUP BY 1")).all())
        with engine_of("credit").connect() as c:
            stored["loan"] = dict(c.execute(text(
                "SELECT payload->>'enterprise_name', count(*) FROM events WHERE event_type = 'loan_applied' "
                "GROUP BY 1")).all())
        natural = {"household": lambda r: r["household_no"], "cadre": lambda r: r["cadre_id"],
                   "project": lambda r: r["project_id"], "loan": lambda r: r["enterprise_name"]}
        acknowledged = {kind: [natural[kind](result) for k, _, result in ledger.acknowledged if k == kind]
                        for kind in natural}
        lost = {kind: [x for x in names if stored[kind].get(x, 0) == 0] for kind, names in acknowledged.items()}
        doubled = {kind: {x: n for x, n in rows.items() if n > 1} for kind, rows in stored.items()}

        # no key ran twice, in any service (every command carries one: the client's or the gateway's)
        twice = {}
        for name in ("registry", "assistance", "projects", "credit"):
            with engine_of(name).connect() as c:
                twice[name] = c.execute(text(
                    "SELECT metadata->>'idempotency_key' FROM events WHERE metadata ? 'idempotency_key' "
                    "GROUP BY 1 HAVING count(DISTINCT stream_id) > 1")).scalars().all()

        # every acknowledged command is in the gateway's audit trail, the gateway's SIGKILL included
        with engine_of("gateway").connect() as c:
            audited = set(c.execute(text(
                "SELECT idempotency_key FROM audit_log WHERE status = 201 AND idempotency_key IS NOT NULL")).scalars())
        unaudited = [key for _, key, _ in ledger.acknowledged if key not in audited]

        # --- the assessment holds every source event exactly once -------------------------------
        def source_ids():
            ids_by_source = {}
            for name in ("registry", "assistance", "projects", "credit"):
                with engine_of(name).connect() as c:
                    ids_by_source[name] = set(c.execute(
                        text("SELECT event_id::text FROM events WHERE event_type = ANY(:types)"),
                        {"types": sorted(RELEVANT)}).scalars())
            return ids_by_source

        def assessed():
            with engine_of("assessment").connect() as c:
                rows = c.execute(text("SELECT source, event_id::text FROM source_events")).all()
            by_source = {}
            for source, event_id in rows:
                by_source.setdefault(source, []).append(event_id)
            return by_source

        expected = source_ids()
        support.wait_until(lambda: all(set(assessed().get(s, [])) >= ids for s, ids in expected.items()),
                           90, interval=1, message="the assessment to catch up with every source")
        held = assessed()
        missing = {s: len(ids - set(held.get(s, []))) for s, ids in expected.items()}
        held_twice = {s: len(rows) - len(set(rows)) for s, rows in held.items()}
        unknown = {s: len(set(held.get(s, [])) - ids) for s, ids in expected.items()}
        with engine_of("assessment").connect() as c:
            quarantined = c.execute(text("SELECT count(*) FROM quarantine")).scalar()
    finally:
        for engine in engines.values():
            engine.dispose()

    counts = {kind: len(names) for kind, names in acknowledged.items()}
    print(f"\nfault suite: {sum(counts.values())} commands acknowledged {counts}; {ledger.retries} retries; "
          f"answers {dict(sorted(ledger.statuses.items(), key=str))}; killed {killed}; "
          f"watchdog restarts {restarts_after_outage}; serving again {back_after:.1f}s after the broker returned; "
          f"{duplicated} events delivered twice; assessment holds "
          f"{ {s: len(set(rows)) for s, rows in held.items()} } source events, "
          f"missing {missing}, twice {held_twice}; quarantined {quarantined}; "
          f"acknowledged but not audited {len(unaudited)}; "
          f"{time.monotonic() - started:.0f}s")

    assert ledger.refused == []
    assert all(counts.values()), counts  # every kind of command got through
    assert lost == {kind: [] for kind in natural}
    assert doubled == {kind: {} for kind in natural}
    assert twice == {name: [] for name in twice}
    assert unaudited == []  # the audit row is committed before the answer leaves the gateway
    assert replayed_id == first_id
    assert missing == {s: 0 for s in expected} and unknown == {s: 0 for s in expected}
    assert all(n == 0 for n in held_twice.values())
    assert quarantined == 0
    assert back_after <= SERVING_AGAIN_WITHIN
    assert ledger.statuses.get(500, 0) == 0, ledger.server_errors

"""The assistance service on real PostgreSQL and RabbitMQ, with the real registry beside it:
commands, refusals that write nothing, queries, idempotency, relay, rebuild."""
import uuid

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text

from services.assistance.service import AssistanceService
from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.registry.service import RegistryService
from tests import support

ADMIN = {"actor": {"id": "admin", "role": "admin"}}
TODAY = "2023-12-31"  # the frozen business date of these tests


@pytest.fixture(scope="module")
def registry_db(infra):
    return support.fresh_database("registry")


@pytest.fixture(scope="module")
def assistance_db(infra):
    return support.fresh_database("assistance")


@pytest.fixture(scope="module")
def registry(amqp_uri, registry_db):
    """The real registry, one for the module (each test registers its own village and households)."""
    with support.running(RegistryService, support.service_config("registry", amqp_uri, registry_db)):
        yield


@pytest.fixture
def services(amqp_uri, registry, assistance_db):
    support.truncate_all(assistance_db)
    config = support.service_config("assistance", amqp_uri, assistance_db, NOW=TODAY)
    with support.running(AssistanceService, config):
        yield


@pytest.fixture
def cluster(amqp_uri, services):
    with support.rpc_client(amqp_uri) as cluster:
        yield cluster


@pytest.fixture
def rpc(cluster):
    return cluster.assistance


@pytest.fixture
def county(cluster):
    """A township, a village and two households in the registry; a unit with a head and a staff
    cadre in assistance; the village assigned to the unit."""
    registry, assistance = cluster.registry, cluster.assistance
    suffix = uuid.uuid4().hex[:8]
    township_id, village_id = f"T-{suffix}", f"V-{suffix}"
    registry.register_township({"township_id": township_id, "name": "长岭乡"}, ADMIN)
    registry.register_village({"village_id": village_id, "township_id": township_id, "name": "谢河村",
                               "poor_village": True}, ADMIN)
    households = [registry.register_household({
        "household_no": f"430100-{suffix}-{n}", "village_id": village_id, "head_name": "王伟",
        "poverty_causes": ["illness"], "registered_on": "2023-01-05"}, ADMIN)["household_id"] for n in (1, 2)]
    assistance.register_unit({"unit_id": "JT", "name": "县交通运输局", "department": "transport",
                              "parent_unit_id": None}, ADMIN)
    assistance.register_unit({"unit_id": "GL", "name": "公路局", "department": "transport",
                              "parent_unit_id": "JT"}, ADMIN)
    assistance.register_cadre({"cadre_id": "C1", "unit_id": "GL", "name": "李强", "rank": "staff",
                               "deputy_section_or_above": False}, ADMIN)
    assistance.register_cadre({"cadre_id": "C2", "unit_id": "GL", "name": "陈都", "rank": "head",
                               "deputy_section_or_above": True}, ADMIN)
    assistance.assign_village({"unit_id": "GL", "village_id": village_id, "from": "2023-01-01"}, ADMIN)
    return {"h1": households[0], "h2": households[1], "v": village_id}


def visit(cadre_id, household_id, day, **changes):
    body = {"cadre_id": cadre_id, "household_id": household_id, "visited_on": day, "measures": ["产业指导"],
            "outcome": "收入稳定", "changes": "无", "policy_explained": True}
    body.update(changes)
    return body


def count_rows(database, table):
    engine = create_engine(database)
    with engine.connect() as conn:
        count = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
    engine.dispose()
    return count


def test_units_cadres_and_villages_over_rpc(rpc, county):
    unit = rpc.get_unit("GL")
    assert (unit["department"], unit["parent_unit_id"]) == ("transport", "JT")
    assert unit["villages"] == [{"village_id": county["v"], "from": "2023-01-01", "until": None}]
    assert [c["cadre_id"] for c in unit["cadres"]] == ["C1", "C2"]
    cadre = rpc.get_cadre("C2")
    assert (cadre["unit_id"], cadre["rank"], cadre["deputy_section_or_above"]) == ("GL", "head", True)
    with pytest.raises(NotFound):
        rpc.get_cadre("NOPE")
    with pytest.raises(NotFound) as missing:
        rpc.register_cadre({"cadre_id": "C9", "unit_id": "NOPE", "name": "x", "rank": "staff"}, ADMIN)
    assert missing.value.details == {"unit_id": "NOPE"}


def test_unknown_village_or_household_in_the_registry_is_refused_by_id(rpc, county):
    with pytest.raises(NotFound) as missing:
        rpc.assign_village({"unit_id": "GL", "village_id": "V-NOPE", "from": "2023-01-01"}, ADMIN)
    assert missing.value.details == {"village_id": "V-NOPE"} and "V-NOPE" in missing.value.message
    with pytest.raises(NotFound) as missing:
        rpc.pair_household({"cadre_id": "C1", "household_id": "H-NOPE", "from": "2023-01-01"}, ADMIN)
    assert missing.value.details == {"household_id": "H-NOPE"} and "H-NOPE" in missing.value.message
    assert rpc.household_help_history("H-NOPE")["pairings"] == []


def test_pairing_visits_and_the_one_active_pairing_rule(rpc, county):
    pairing = rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    assert (pairing["cadre_id"], pairing["unit_id"], pairing["household_id"]) == ("C1", "GL", county["h1"])
    assert rpc.get_pairing(pairing["pairing_id"])["household_id"] == county["h1"]
    with pytest.raises(RuleRefused) as refused:
        rpc.pair_household({"cadre_id": "C2", "household_id": county["h1"], "from": "2023-03-01"}, ADMIN)
    assert refused.value.details["rule"] == "one_active_pairing_per_household"
    recorded = rpc.record_visit(visit("C1", county["h1"], "2023-02-10"), ADMIN)
    assert (recorded["pairing_id"], recorded["events"]) == (pairing["pairing_id"], ["visit_recorded"])
    ended = rpc.end_pairing({"pairing_id": pairing["pairing_id"], "until": "2023-06-30", "reason": "岗位调整"}, ADMIN)
    assert (ended["until"], ended["active"]) == ("2023-06-30", False)
    second = rpc.pair_household({"cadre_id": "C2", "household_id": county["h1"], "from": "2023-07-01"}, ADMIN)
    assert [p["cadre_id"] for p in rpc.household_help_history(county["h1"])["pairings"]] == ["C1", "C2"]
    assert rpc.cadre_pairings("C1")[0]["active"] is False
    assert rpc.cadre_pairings("C2")[0]["pairing_id"] == second["pairing_id"]


def test_a_refused_visit_writes_nothing(rpc, county, assistance_db):
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    events_before = len(rpc.events_since(0, 5000))
    with pytest.raises(RuleRefused) as refused:
        rpc.record_visit(visit("C2", county["h1"], "2023-02-10"), ADMIN)  # C2 is not paired with h1
    assert refused.value.details["rule"] == "visit_by_paired_cadre"
    with pytest.raises(RuleRefused) as refused:
        rpc.record_visit(visit("C1", county["h1"], "2024-01-01"), ADMIN)  # after the frozen today
    assert refused.value.details["rule"] == "not_in_future"
    with pytest.raises(ValidationFailed) as failed:
        rpc.record_visit(visit("C1", county["h1"], "2023-02-30"), ADMIN)
    assert "visited_on" in failed.value.details
    assert len(rpc.events_since(0, 5000)) == events_before
    assert count_rows(assistance_db, "visits") == 0
    assert rpc.cadre_visits("C2")["items"] == [] and rpc.household_help_history(county["h1"])["visits"] == []


def test_overdue_visits_across_a_month_boundary(rpc, county):
    pairing = rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-05-20"}, ADMIN)
    rpc.record_visit(visit("C1", county["h1"], "2023-05-25"), ADMIN)
    assert rpc.overdue_visits("C1", "2023-05-31")["items"] == []
    overdue = rpc.overdue_visits("C1", "2023-06-01")
    assert overdue == {"cadre_id": "C1", "as_of": "2023-06-01",
                       "items": [{"pairing_id": pairing["pairing_id"], "household_id": county["h1"], "month": "2023-06"}]}
    rpc.record_visit(visit("C1", county["h1"], "2023-06-02"), ADMIN)
    assert rpc.overdue_visits("C1", "2023-06-30")["items"] == []
    assert [i["month"] for i in rpc.overdue_visits("C1", "2023-08-15")["items"]] == ["2023-07", "2023-08"]
    with pytest.raises(ValidationFailed):
        rpc.overdue_visits("C1", "not-a-date")


def test_visits_are_listed_newest_first_page_by_page(rpc, county):
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    for month in (1, 2, 3):
        rpc.record_visit(visit("C1", county["h1"], f"2023-0{month}-10"), ADMIN)
    first = rpc.cadre_visits("C1", 2)
    assert [v["visited_on"] for v in first["items"]] == ["2023-03-10", "2023-02-10"]
    second = rpc.cadre_visits("C1", 2, first["next_cursor"])
    assert [v["visited_on"] for v in second["items"]] == ["2023-01-10"] and second["next_cursor"] is None


def test_leaders_work_exams_spot_checks_stationing_and_residency(rpc, county):
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    rpc.record_village_visit({"cadre_id": "C2", "village_id": county["v"], "visited_on": "2023-03-02", "purpose": "调研"}, ADMIN)
    rpc.record_inspection({"cadre_id": "C2", "village_id": county["v"], "inspected_on": "2023-11-02", "findings": "好"}, ADMIN)
    with pytest.raises(RuleRefused) as refused:
        rpc.record_inspection({"cadre_id": "C1", "village_id": county["v"], "inspected_on": "2023-11-02"}, ADMIN)
    assert refused.value.details["rule"] == "inspector_deputy_section_or_above"
    assert rpc.record_exam_score({"cadre_id": "C1", "exam_id": "2023-policy", "score": 88,
                                  "taken_on": "2023-06-16"}, ADMIN)["score"] == 88
    with pytest.raises(RuleRefused) as refused:  # the range is the county rulebook's
        rpc.record_exam_score({"cadre_id": "C1", "exam_id": "2023-policy", "score": 101,
                               "taken_on": "2023-06-16"}, ADMIN)
    assert refused.value.details["rule"] == "score_in_rulebook_range"
    charged = rpc.record_awareness_check({"household_id": county["h1"], "checked_on": "2023-05-05", "passed": False})
    nobody = rpc.record_awareness_check({"household_id": county["h2"], "checked_on": "2023-05-05", "passed": True})
    assert (charged["cadre_id"], charged["unit_id"], nobody["cadre_id"]) == ("C1", "GL", None)
    with pytest.raises(NotFound):
        rpc.record_awareness_check({"household_id": "H-NOPE", "checked_on": "2023-05-05", "passed": True})
    rpc.station_cadre({"cadre_id": "C1", "village_id": county["v"], "role": "first_secretary", "from": "2023-01-01",
                       "until": "2023-12-31"}, ADMIN)
    assert rpc.report_residency({"cadre_id": "C1", "month": "2023-02", "days": 14}, ADMIN)["meets_minimum"] is False
    with pytest.raises(RuleRefused) as refused:  # 29 is a day count; February 2023 has 28
        rpc.report_residency({"cadre_id": "C1", "month": "2023-02", "days": 29}, ADMIN)
    assert refused.value.details["rule"] == "days_within_month"
    with pytest.raises(RuleRefused):
        rpc.report_residency({"cadre_id": "C1", "month": "2024-01", "days": 3}, ADMIN)
    cadre = rpc.get_cadre("C1")
    assert cadre["residency"] == [{"month": "2023-02", "days": 14, "meets_minimum": False}]
    assert cadre["stationings"][0]["role"] == "first_secretary"
    history = rpc.household_help_history(county["h1"])
    assert [c["passed"] for c in history["awareness_checks"]] == [False]


def test_unit_summary_with_monthly_visit_compliance(rpc, county):
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h2"], "from": "2023-02-15"}, ADMIN)
    for household, day in (("h1", "2023-01-05"), ("h1", "2023-02-05"), ("h2", "2023-02-20"), ("h1", "2023-03-01")):
        rpc.record_visit(visit("C1", county[household], day), ADMIN)
    rpc.record_village_visit({"cadre_id": "C2", "village_id": county["v"], "visited_on": "2023-03-02", "purpose": "调研"}, ADMIN)
    summary = rpc.unit_summary("GL", "2023-03-31")
    months = summary["visit_compliance"]["months"]
    assert [(m["month"], m["pairs_due"], m["pairs_visited"]) for m in months] == [
        ("2023-01", 1, 1), ("2023-02", 1, 1), ("2023-03", 2, 1)]
    assert summary["visit_compliance"]["year_to_date"] == {"pairs_due": 4, "pairs_visited": 3, "rate": 0.75}
    head = next(c for c in summary["cadres"] if c["cadre_id"] == "C2")
    assert head["village_visits"] == [{"village_id": county["v"], "visits": 1, "required_per_year": 2, "required_to_date": 0}]
    assert head["inspection"]["overdue"] is True
    assert next(c for c in summary["cadres"] if c["cadre_id"] == "C1")["active_pairings"] == 2


def test_an_idempotency_key_returns_the_first_result_and_appends_nothing(rpc, county):
    context = {**ADMIN, "idempotency_key": f"pair-{uuid.uuid4()}"}
    first = rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, context)
    again = rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, context)
    assert again == first
    assert len(rpc.cadre_pairings("C1")) == 1


def bind_queue(amqp_uri):
    exchange = Exchange("assistance.events", type="topic", durable=True)
    queue = Queue(f"assistance-test-{uuid.uuid4().hex[:8]}", exchange=exchange, routing_key="#", durable=True,
                  auto_delete=True)
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    return queue


def test_events_reach_the_bus_with_the_catalogue_payloads(amqp_uri, rpc, county):
    queue = bind_queue(amqp_uri)
    pairing = rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    rpc.record_visit(visit("C1", county["h1"], "2023-02-10"), ADMIN)
    received = []
    with Connection(amqp_uri) as conn, conn.SimpleQueue(queue) as simple:
        while len(received) < 2:
            message = simple.get(timeout=20)
            message.ack()
            if message.payload["payload"].get("household_id") == county["h1"]:  # not an earlier test's
                received.append((message.delivery_info["routing_key"], message.payload))
    assert [key for key, _ in received] == ["household_paired", "visit_recorded"]
    assert received[0][1]["payload"] == {"pairing_id": pairing["pairing_id"], "cadre_id": "C1", "unit_id": "GL",
                                         "household_id": county["h1"], "from": "2023-01-01"}
    payload = received[1][1]["payload"]
    assert set(payload) == {"visit_id", "pairing_id", "cadre_id", "unit_id", "household_id", "visited_on", "measures",
                            "outcome", "changes", "policy_explained"}


def test_read_models_rebuild_to_the_same_answers(rpc, county):
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    rpc.record_visit(visit("C1", county["h1"], "2023-02-10"), ADMIN)
    rpc.record_awareness_check({"household_id": county["h1"], "checked_on": "2023-05-05", "passed": True})
    rpc.station_cadre({"cadre_id": "C1", "village_id": county["v"], "role": "member", "from": "2023-01-01"}, ADMIN)
    rpc.report_residency({"cadre_id": "C1", "month": "2023-02", "days": 10}, ADMIN)
    rpc.report_residency({"cadre_id": "C1", "month": "2023-02", "days": 16}, ADMIN)  # the later one counts

    def answers():
        return (rpc.get_unit("GL"), rpc.get_cadre("C1"), rpc.cadre_pairings("C1"), rpc.cadre_visits("C1"),
                rpc.overdue_visits("C1", "2023-12-31"), rpc.unit_summary("GL", "2023-12-31"),
                rpc.household_help_history(county["h1"]))

    before = answers()
    assert before[1]["residency"][0]["days"] == 16
    assert rpc.rebuild_read_models()["events_replayed"] == len(rpc.events_since(0, 5000))
    assert answers() == before


def test_parallel_pairings_of_one_household_leave_exactly_one(rpc, county):
    calls = [rpc.pair_household.call_async({"cadre_id": cadre_id, "household_id": county["h1"], "from": "2023-01-01"},
                                           ADMIN) for cadre_id in ("C1", "C2", "C1", "C2")]
    outcomes = []
    for call in calls:
        try:
            outcomes.append(call.result()["cadre_id"])
        except RuleRefused as refused:
            outcomes.append(refused.details["rule"])
    assert sorted(outcomes).count("one_active_pairing_per_household") == 3
    assert len(rpc.household_help_history(county["h1"])["pairings"]) == 1


def test_a_batch_of_visits_is_recorded_whole_or_not_at_all(rpc, county, assistance_db):
    rpc.pair_household({"cadre_id": "C1", "household_id": county["h1"], "from": "2023-01-01"}, ADMIN)
    events_before = len(rpc.events_since(0, 5000))
    batch = [{k: v for k, v in visit("C1", county["h1"], day).items() if k != "cadre_id"}
             for day in ("2023-01-10", "2023-02-10", "2023-03-10")]
    bad = {**batch[1], "household_id": county["h2"]}  # C1 is not paired with h2
    with pytest.raises(RuleRefused) as refused:
        rpc.record_visits({"cadre_id": "C1", "visits": [batch[0], bad, batch[2]]}, ADMIN)
    assert [(r["index"], r["household_id"]) for r in refused.value.details["refused"]] == [(1, county["h2"])]
    assert len(rpc.events_since(0, 5000)) == events_before and count_rows(assistance_db, "visits") == 0

    recorded = rpc.record_visits({"cadre_id": "C1", "visits": batch}, ADMIN)
    assert recorded["recorded"] == 3
    assert [v["visited_on"] for v in recorded["visits"]] == ["2023-01-10", "2023-02-10", "2023-03-10"]
    assert rpc.overdue_visits("C1", "2023-03-31")["items"] == []
    assert count_rows(assistance_db, "visits") == 3

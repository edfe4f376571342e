"""The registry service on real PostgreSQL and RabbitMQ: commands, refusals, queries, relay, rebuild."""
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.registry.service import RegistryService
from tests import support

STATION = {"actor": {"id": "station-t1", "role": "township"}}


def id_number(body17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights)) % 11]


HEAD_ID = id_number("34240119800203123")
CHILD_ID = id_number("34240120100506235")  # born 2010-05-06, male


@pytest.fixture(scope="module")
def registry_db(infra):
    return support.fresh_database("registry")


@pytest.fixture
def registry(amqp_uri, registry_db):
    support.truncate_all(registry_db)
    config = support.service_config("registry", amqp_uri, registry_db)
    with support.running(RegistryService, config) as container:
        yield container


@pytest.fixture
def rpc(amqp_uri, registry):
    with support.rpc_client(amqp_uri) as cluster:
        yield cluster.registry


def county(rpc):
    rpc.register_township({"township_id": "T1", "name": "龙泉乡"})
    rpc.register_township({"township_id": "T2", "name": "石门乡"})
    rpc.register_village({"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True})
    rpc.register_village({"village_id": "V2", "township_id": "T1", "name": "河口村", "poor_village": False})
    rpc.register_village({"village_id": "V3", "township_id": "T2", "name": "石门村", "poor_village": True})


def household(rpc, number="342401001", village_id="V1", **changes):
    body = {"household_no": number, "village_id": village_id, "head_name": "王伟", "poverty_causes": ["illness"],
            "registered_on": "2023-01-05"}
    body.update(changes)
    return rpc.register_household(body, STATION)["household_id"]


def member(rpc, household_id, number=HEAD_ID, **changes):
    body = {"household_id": household_id, "name": "王伟", "id_number": number, "relation": "head",
            "birth_date": "1980-02-03", "sex": "male", "labor_capacity": "full", "health": "healthy",
            "phone": "13812345678"}
    body.update(changes)
    return rpc.add_member(body, STATION)


def assess(rpc, household_id, amount, year=2023, on="2023-11-20", **assurance_changes):
    rpc.assess_income({"household_id": household_id, "year": year, "per_capita_income": amount, "assessed_on": on})
    body = {"household_id": household_id, "assessed_on": on, "food": True, "clothing": True, "education": True,
            "medical": True, "housing_grade": "A", "drinking_water": True}
    body.update(assurance_changes)
    rpc.assess_assurances(body)


def event_types(rpc, household_id):
    return [item["type"] for item in rpc.household_history(household_id)]


def test_registration_members_and_the_household_detail(rpc):
    county(rpc)
    household_id = household(rpc, five_guarantees=True)
    added = member(rpc, household_id)
    member(rpc, household_id, CHILD_ID, name="王小", relation="child", birth_date="2010-05-06",
           labor_capacity="none", phone=None)
    assert (added["household_id"], added["id_number"], added["phone"]) == \
        (household_id, HEAD_ID[:4] + "*" * 10 + HEAD_ID[-4:], "138****5678")
    detail = rpc.get_household(household_id)
    assert (detail["township_id"], detail["status"], detail["monitored"], detail["five_guarantees"]) == \
        ("T1", "poor", False, True)
    assert [(m["name"], m["labor_capacity"], m["health"]) for m in detail["members"]] == \
        [("王伟", "full", "healthy"), ("王小", "none", "healthy")]
    assert "*" in detail["members"][0]["id_number"]
    assert rpc.get_household(household_id, True)["members"][0]["id_number"] == HEAD_ID
    rpc.update_member({"household_id": household_id, "person_id": added["person_id"], "health": "chronic"})
    rpc.remove_member({"household_id": household_id, "person_id": detail["members"][1]["person_id"],
                       "reason": "moved_out", "removed_on": "2023-06-01"})
    detail = rpc.get_household(household_id)
    assert [(m["name"], m["health"]) for m in detail["members"]] == [("王伟", "chronic")]
    history = rpc.household_history(household_id)
    assert [item["type"] for item in history] == ["household_registered", "member_added", "member_added",
                                                  "member_updated", "member_removed"]
    assert history[1]["payload"]["id_number"] != HEAD_ID and history[0]["actor"] == STATION["actor"]
    assert rpc.get_village("V1") == {"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True}
    assert [v["village_id"] for v in rpc.get_township("T1")["villages"]] == ["V1", "V2"]


def test_unknown_places_and_duplicates(rpc):
    county(rpc)
    with pytest.raises(NotFound):
        rpc.register_village({"village_id": "V9", "township_id": "T9", "name": "村", "poor_village": False})
    with pytest.raises(NotFound):
        household(rpc, village_id="V9")
    with pytest.raises(Conflict):
        rpc.register_township({"township_id": "T1", "name": "again"})
    first = household(rpc)
    with pytest.raises(Conflict) as duplicate:
        household(rpc)
    assert duplicate.value.details["household_id"] == first
    for missing in (rpc.get_household, rpc.get_village, rpc.get_township, rpc.household_history):
        with pytest.raises(NotFound):
            missing("nothing")


def test_a_duplicate_id_number_names_the_household_that_holds_it_until_the_member_is_removed(rpc):
    county(rpc)
    holder, other = household(rpc, "1"), household(rpc, "2", "V3")
    person_id = member(rpc, holder)["person_id"]
    with pytest.raises(Conflict) as duplicate:
        member(rpc, other)
    assert duplicate.value.details["household_id"] == holder
    assert rpc.get_household(other)["members"] == []
    with pytest.raises(ValidationFailed) as invalid:
        member(rpc, other, HEAD_ID[:17] + ("0" if HEAD_ID[17] != "0" else "1"))
    assert "id_number" in invalid.value.details
    rpc.remove_member({"household_id": holder, "person_id": person_id, "reason": "moved_out",
                       "removed_on": "2023-06-01"})
    assert member(rpc, other)["household_id"] == other


def test_concurrent_registrations_of_one_id_number_let_only_one_through(rpc):
    county(rpc)
    households = [household(rpc, str(n)) for n in range(6)]
    calls = [rpc.add_member.call_async({"household_id": h, "name": "王伟", "id_number": HEAD_ID, "relation": "head",
                                        "birth_date": "1980-02-03", "sex": "male", "labor_capacity": "full",
                                        "health": "healthy"}) for h in households]
    outcomes = []
    for call in calls:
        try:
            call.result()
            outcomes.append("added")
        except Conflict:
            outcomes.append("refused")
    assert sorted(outcomes) == ["added"] + ["refused"] * 5


def test_an_id_number_contradicting_birth_date_or_sex_is_refused_naming_the_fields(rpc):
    county(rpc)
    household_id = household(rpc)
    before = rpc.events_since(0)
    with pytest.raises(ValidationFailed) as refused:
        member(rpc, household_id, birth_date="1980-03-02", sex="female")
    assert set(refused.value.details) == {"birth_date", "sex", "id_number"}
    assert rpc.events_since(0) == before
    person_id = member(rpc, household_id)["person_id"]
    with pytest.raises(ValidationFailed) as refused:
        rpc.update_member({"household_id": household_id, "person_id": person_id, "birth_date": "1981-02-03"})
    assert "birth_date" in refused.value.details


def test_exit_refuses_an_assurances_assessment_from_an_earlier_year(rpc):
    county(rpc)
    household_id = household(rpc)
    assess(rpc, household_id, "4500.00", year=2023, on="2023-11-20")
    rpc.assess_income({"household_id": household_id, "year": 2024, "per_capita_income": "5000.00",
                       "assessed_on": "2024-11-01"})
    with pytest.raises(RuleRefused) as refused:
        rpc.exit_household({"household_id": household_id, "year": 2024, "exited_on": "2024-12-15"})
    assert refused.value.details["failing"] == ["food", "clothing", "education", "medical", "housing",
                                                "drinking_water"]
    assess(rpc, household_id, "5000.00", year=2024, on="2024-11-20")
    assert rpc.exit_household({"household_id": household_id, "year": 2024, "exited_on": "2024-12-15"})["status"] == \
        "exited"


def test_a_monitoring_only_household_registers_as_monitored_and_counts_neither_poor_nor_exited(rpc):
    county(rpc)
    poor = household(rpc, "1")
    marginal = household(rpc, "2", status="monitored", risk_type="marginal", reason="大病支出")
    detail = rpc.get_household(marginal)
    assert (detail["status"], detail["monitored"], detail["monitoring"]["risk_type"]) == ("monitored", True, "marginal")
    assert event_types(rpc, marginal) == ["household_registered", "monitoring_flagged"]
    with pytest.raises(ValidationFailed) as refused:
        household(rpc, "3", status="monitored")
    assert "risk_type" in refused.value.details
    stats = rpc.township_statistics("T1", 2023)
    assert stats["households"] == {"total": 2, "poor": 1, "exited": 0, "monitored": 1}
    assert [h["household_id"] for h in rpc.list_households({"status": "monitored"})["items"]] == [marginal]
    assert [h["household_id"] for h in rpc.list_households({"status": "poor"})["items"]] == [poor]


def test_a_refused_exit_writes_nothing_and_lists_the_failing_items(rpc):
    county(rpc)
    household_id = household(rpc)
    member(rpc, household_id)
    assess(rpc, household_id, "3800.00", housing_grade="C", drinking_water=False)
    before = rpc.events_since(0)
    with pytest.raises(RuleRefused) as refused:
        rpc.exit_household({"household_id": household_id, "year": 2023, "exited_on": "2023-12-15"})
    assert refused.value.details["failing"] == ["income", "housing", "drinking_water"]
    assert rpc.events_since(0) == before
    assert rpc.get_household(household_id)["status"] == "poor"
    assert rpc.township_statistics("T1", 2023)["exits_this_year"] == 0


def test_exit_then_an_automatic_monitoring_flag_then_clearing(rpc):
    county(rpc)
    household_id = household(rpc)
    assess(rpc, household_id, "4500.00")
    exited = rpc.exit_household({"household_id": household_id, "year": 2023, "exited_on": "2023-12-15"})
    assert (exited["status"], exited["exit_year"]) == ("exited", 2023)
    result = rpc.assess_income({"household_id": household_id, "year": 2024, "per_capita_income": "5000.00",
                                "assessed_on": "2024-03-01"})
    assert (result["monitoring_flagged"], result["monitored"], result["monitoring_line"]) == (True, True, "6000.00")
    assert result["monitoring"]["automatic"] is True
    assert event_types(rpc, household_id)[-2:] == ["income_assessed", "monitoring_flagged"]
    assert [h["household_id"] for h in rpc.list_households({"monitored": True})["items"]] == [household_id]
    with pytest.raises(RuleRefused) as refused:
        rpc.clear_monitoring({"household_id": household_id, "cleared_on": "2024-06-01"})
    assert refused.value.details["failing"] == ["months_monitored", "income"]
    again = rpc.assess_income({"household_id": household_id, "year": 2024, "per_capita_income": "6500.00",
                               "assessed_on": "2024-08-01"})
    assert again["monitoring_flagged"] is False
    cleared = rpc.clear_monitoring({"household_id": household_id, "cleared_on": "2024-09-01"})
    assert (cleared["monitored"], cleared["monitoring_history"][0]["cleared_on"]) == (False, "2024-09-01")


def test_manual_flag_return_to_poverty_and_policy_informant(rpc):
    county(rpc)
    household_id = household(rpc)
    person_id = member(rpc, household_id)["person_id"]
    flagged = rpc.flag_monitoring({"household_id": household_id, "risk_type": "sudden_hardship", "reason": "因病",
                                   "flagged_on": "2023-04-01"})
    assert flagged["monitoring"]["automatic"] is False
    named = rpc.name_policy_informant({"household_id": household_id, "person_id": person_id, "named_on": "2023-04-02"})
    assert named["policy_informant"]["name"] == "王伟"
    with pytest.raises(RuleRefused):
        rpc.return_to_poverty({"household_id": household_id, "returned_on": "2023-05-01", "reason": "因病"})


def test_lists_and_statistics(rpc):
    county(rpc)
    ids = {}
    for key, number, village in (("a", "1", "V1"), ("b", "2", "V1"), ("c", "3", "V2"), ("d", "4", "V3")):
        ids[key] = household(rpc, number, village)
    member(rpc, ids["a"])
    member(rpc, ids["a"], CHILD_ID, name="王小", relation="child", birth_date="2010-05-06")
    assess(rpc, ids["a"], "4500.00")
    rpc.exit_household({"household_id": ids["a"], "year": 2023, "exited_on": "2023-12-15"})
    assess(rpc, ids["b"], "3000.00", medical=False)
    rpc.flag_monitoring({"household_id": ids["c"], "risk_type": "marginal", "reason": "因灾", "flagged_on": "2023-07-01"})
    stats = rpc.township_statistics("T1", 2023)
    assert stats["households"] == {"total": 3, "poor": 2, "exited": 1, "monitored": 0}
    assert stats["people"] == {"total": 2, "poor": 0, "exited": 2, "monitored": 0}
    assert (stats["exits_this_year"], stats["monitored"]) == (1, 1)
    assert stats["assurances"] == {"assessed": 2, "compliant": 1, "compliance_rate": "0.5000"}
    village = rpc.village_statistics("V1", 2023)
    assert (village["households"]["total"], village["monitored"], village["township_id"]) == (2, 0, "T1")
    assert rpc.township_statistics("T1", 2022)["exits_this_year"] == 0
    with pytest.raises(NotFound):
        rpc.village_statistics("V9", 2023)
    expected = sorted(ids[k] for k in ("a", "b", "c"))
    first = rpc.list_households({"township_id": "T1"}, 2)
    second = rpc.list_households({"township_id": "T1"}, 2, first["next_cursor"])
    assert [h["household_id"] for h in first["items"] + second["items"]] == expected
    assert second["next_cursor"] is None
    assert [h["household_id"] for h in rpc.list_households({"status": "exited"})["items"]] == [ids["a"]]
    assert [h["household_id"] for h in rpc.list_households({"village_id": "V3"})["items"]] == [ids["d"]]
    masked = rpc.list_households({"village_id": "V1", "status": "exited"})["items"][0]["members"][0]["id_number"]
    shown = rpc.list_households({"village_id": "V1", "status": "exited"}, None, None, True)["items"][0]
    assert "*" in masked and shown["members"][0]["id_number"] == HEAD_ID
    with pytest.raises(ValidationFailed):
        rpc.list_households({"status": "rich"})


def test_an_idempotency_key_returns_the_first_result_and_appends_nothing(rpc):
    county(rpc)
    household_id = household(rpc)
    context = {**STATION, "idempotency_key": "income-1"}
    body = {"household_id": household_id, "year": 2023, "per_capita_income": "4100.00", "assessed_on": "2023-11-20"}
    first = rpc.assess_income(body, context)
    again = rpc.assess_income(body, context)
    assert first == again
    assert event_types(rpc, household_id).count("income_assessed") == 1


def bind_queue(amqp_uri):
    exchange = Exchange("registry.events", type="topic", durable=True)
    queue = Queue(f"registry-test-{uuid.uuid4().hex[:8]}", exchange=exchange, routing_key="#", durable=True,
                  auto_delete=True)
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    return queue


def test_events_reach_the_bus_with_the_catalogue_payloads(amqp_uri, rpc):
    queue = bind_queue(amqp_uri)
    rpc.register_township({"township_id": "T1", "name": "龙泉乡"})
    rpc.register_village({"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True})
    received = []
    with Connection(amqp_uri) as conn, conn.SimpleQueue(queue) as simple:
        while len(received) < 2:
            message = simple.get(timeout=20)
            message.ack()
            if message.payload["stream_type"] != "rulebook":  # the section's defaults, put on record at start
                received.append((message.delivery_info["routing_key"], message.payload))
    assert [key for key, _ in received] == ["township_registered", "village_registered"]
    assert received[1][1]["payload"] == {"village_id": "V1", "township_id": "T1", "name": "长岭村",
                                         "poor_village": True}


def test_read_models_rebuild_to_the_same_answers(rpc):
    county(rpc)
    household_id = household(rpc)
    member(rpc, household_id)
    assess(rpc, household_id, "4500.00")
    rpc.exit_household({"household_id": household_id, "year": 2023, "exited_on": "2023-12-15"})
    rpc.assess_income({"household_id": household_id, "year": 2024, "per_capita_income": "5000.00",
                       "assessed_on": "2024-03-01"})
    before = (rpc.get_household(household_id, True), rpc.list_households({}), rpc.township_statistics("T1", 2023),
              rpc.get_township("T1"))
    assert rpc.rebuild_read_models()["events_replayed"] == len(rpc.events_since(0))
    after = (rpc.get_household(household_id, True), rpc.list_households({}), rpc.township_statistics("T1", 2023),
             rpc.get_township("T1"))
    assert after == before
    with pytest.raises(Conflict):  # the living ID number table was rebuilt too
        member(rpc, household(rpc, "2"))


def test_the_poverty_line_in_force_on_the_business_date_decides_and_the_county_section_lives_here(rpc):
    county(rpc)
    leading = {"actor": {"id": "lg", "role": "leading_group"}}
    changed = rpc.change_rules({"effective_from": "2024-01-01", "changes": {"poverty_line": "4500"},
                                "reason": "省定2024年扶贫标准"}, leading)
    assert changed["values"]["poverty_line"] == "4500" and changed["versions"][-1]["actor"] == leading["actor"]
    household_id = household(rpc)
    assess(rpc, household_id, "4400.00", year=2023, on="2023-11-20")
    assess(rpc, household_id, "4400.00", year=2024, on="2024-11-20")
    with pytest.raises(RuleRefused) as refused:  # 4,400 < the 2024 line of 4,500
        rpc.exit_household({"household_id": household_id, "year": 2024, "exited_on": "2024-12-15"})
    assert refused.value.details["poverty_line"] == "4500.00"
    exited = rpc.exit_household({"household_id": household_id, "year": 2023, "exited_on": "2023-12-15"})
    assert exited["status"] == "exited"  # 2023 still had the 4,000 line
    assert rpc.rulebook_section("2023-12-31")["values"]["poverty_line"] == "4000"
    with pytest.raises(ValidationFailed) as invalid:
        rpc.change_rules({"effective_from": "2024-01-01", "changes": {"monitoring_factor": "much"}}, leading)
    assert "monitoring_factor" in invalid.value.details
    assert rpc.county_rules()["timezone"] == "Asia/Shanghai"
    rpc.change_county_rules({"effective_from": "2020-01-01", "changes": {"timezone": "Asia/Urumqi"}}, leading)
    assert rpc.county_rules()["timezone"] == "Asia/Urumqi"
    assert "departments" in rpc.county_rulebook_section()["values"]
    with pytest.raises(ValidationFailed):
        rpc.change_county_rules({"effective_from": "2020-01-01", "changes": {"timezone": "Nowhere/Land"}}, leading)


def test_scope_checks_read_the_township_of_a_household_or_village_from_one_row(rpc):
    county(rpc)
    household_id = household(rpc, village_id="V3")
    assert rpc.owner("household", household_id) == {"household_id": household_id, "township_id": "T2"}
    assert rpc.owner("village", "V1") == {"village_id": "V1", "township_id": "T1"}
    with pytest.raises(NotFound):
        rpc.owner("household", "no-such-household")

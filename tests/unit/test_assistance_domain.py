"""Assistance domain rules (DOMAIN.md "Assistance service", issue 4): pure, no infrastructure."""
from datetime import date

import pytest

from services.common.errors import Conflict, NotFound, RuleRefused
from services.assistance import domain, schemas
from services.assistance.domain import Rules

RULES = Rules()
TODAY = date(2023, 6, 15)


def fold(evolve, state, events):
    for event in events:
        state = evolve(state, event)
    return state


def refused_rule(call):
    with pytest.raises(RuleRefused) as refused:
        call()
    return refused.value.details["rule"]


def a_unit(unit_id="U1"):
    return fold(domain.evolve_unit, None, domain.decide_register_unit(
        None, {"unit_id": unit_id, "name": "县交通运输局", "department": "transport", "parent_unit_id": None}, RULES))


def a_cadre(cadre_id="C1", rank="staff", deputy=False, unit=None):
    unit = unit or a_unit()
    return fold(domain.evolve_cadre, None, domain.decide_register_cadre(
        None, {"cadre_id": cadre_id, "unit_id": unit.unit_id, "name": "李强", "rank": rank,
               "deputy_section_or_above": deputy}, unit))


def paired(state=None, cadre=None, start=date(2023, 1, 1), pairing_id="P1", household_id="H1"):
    cadre = cadre or a_cadre()
    events = domain.decide_pair(state, {"cadre_id": cadre.cadre_id, "household_id": household_id, "from": start},
                                cadre, pairing_id)
    return fold(domain.evolve_household, state, events)


def ended(state, until, pairing_id="P1"):
    return fold(domain.evolve_household, state, domain.decide_end_pairing(
        state, {"pairing_id": pairing_id, "until": until, "reason": "调整帮扶"}))


def visit(state, day, cadre_id="C1", today=TODAY, household_id="H1"):
    return domain.decide_visit(state, {"cadre_id": cadre_id, "household_id": household_id, "visited_on": day,
                                       "measures": ["产业指导"], "outcome": "收入稳定", "changes": "无",
                                       "policy_explained": True}, today, "VISIT")


def stationed(cadre, start=date(2023, 1, 1), until=date(2023, 12, 31), village_id="V1"):
    return fold(domain.evolve_cadre, cadre, domain.decide_station(
        cadre, {"cadre_id": cadre.cadre_id, "village_id": village_id, "role": "first_secretary", "from": start,
                "until": until}, "S1"))


# --- units and cadres --------------------------------------------------------------------------------

def test_unit_registered_with_department_and_parent_unit():
    parent = a_unit("JT")
    events = domain.decide_register_unit(None, {"unit_id": "GL", "name": "公路局", "department": "transport",
                                                "parent_unit_id": "JT"}, RULES, parent)
    assert events[0].type == "unit_registered"
    assert events[0].payload == {"unit_id": "GL", "name": "公路局", "department": "transport", "parent_unit_id": "JT"}


def test_unit_with_unknown_parent_or_department_is_refused():
    with pytest.raises(NotFound):
        domain.decide_register_unit(None, {"unit_id": "GL", "name": "公路局", "department": "transport",
                                           "parent_unit_id": "NOPE"}, RULES, None)
    # the county's departments are a rulebook list: a well-formed name not on it is a rule's refusal
    assert refused_rule(lambda: domain.decide_register_unit(
        None, {"unit_id": "GL", "name": "公路局", "department": "space", "parent_unit_id": None}, RULES)) == "known_department"


def test_departments_come_from_the_rulebook():
    rules = Rules(departments=("transport", "tourism"))
    events = domain.decide_register_unit(None, {"unit_id": "LY", "name": "旅游局", "department": "tourism",
                                                "parent_unit_id": None}, rules)
    assert events[0].payload["department"] == "tourism"


def test_registering_the_same_unit_again_changes_nothing_and_differently_conflicts():
    unit = a_unit()
    same = {"unit_id": "U1", "name": "县交通运输局", "department": "transport", "parent_unit_id": None}
    assert domain.decide_register_unit(unit, same, RULES) == []
    with pytest.raises(Conflict):
        domain.decide_register_unit(unit, {**same, "name": "别的局"}, RULES)


def test_cadre_belongs_to_a_registered_unit_with_rank_and_deputy_flag():
    cadre = a_cadre(rank="leader", deputy=True)
    assert (cadre.unit_id, cadre.rank, cadre.deputy_section_or_above) == ("U1", "leader", True)
    with pytest.raises(NotFound):
        domain.decide_register_cadre(None, {"cadre_id": "C9", "unit_id": "NOPE", "name": "x", "rank": "staff",
                                            "deputy_section_or_above": False}, None)


def test_cadre_rank_is_head_leader_or_staff():
    body = {"cadre_id": "C1", "unit_id": "U1", "name": "李强", "rank": "boss", "deputy_section_or_above": False}
    assert "rank" in schemas.RegisterCadre().validate(body)
    assert schemas.RegisterCadre().validate({**body, "rank": "head"}) == {}


# --- villages assigned to units ----------------------------------------------------------------------

def test_village_assigned_to_unit_from_a_date_until_optional():
    events = domain.decide_assign_village(a_unit(), {"unit_id": "U1", "village_id": "V1", "from": date(2023, 1, 1),
                                                     "until": None})
    assert events[0].payload == {"unit_id": "U1", "village_id": "V1", "from": "2023-01-01", "until": None}


def test_overlapping_assignment_of_the_same_village_is_refused_and_a_repeat_changes_nothing():
    unit = a_unit()
    command = {"unit_id": "U1", "village_id": "V1", "from": date(2023, 1, 1), "until": None}
    unit = fold(domain.evolve_unit, unit, domain.decide_assign_village(unit, command))
    assert domain.decide_assign_village(unit, command) == []
    assert refused_rule(lambda: domain.decide_assign_village(unit, {**command, "from": date(2023, 3, 1)})) == \
        "village_assignment_overlaps"


def test_assignment_to_unknown_unit_is_not_found():
    with pytest.raises(NotFound):
        domain.decide_assign_village(None, {"unit_id": "NOPE", "village_id": "V1", "from": date(2023, 1, 1),
                                            "until": None})


# --- pairing: at most one active pairing per household -----------------------------------------------

def test_household_paired_with_a_cadre_carries_the_cadres_unit():
    cadre = a_cadre()
    events = domain.decide_pair(None, {"cadre_id": "C1", "household_id": "H1", "from": date(2023, 1, 1)},
                                cadre, "P1")
    assert events[0].payload == {"pairing_id": "P1", "cadre_id": "C1", "unit_id": "U1", "household_id": "H1",
                                 "from": "2023-01-01"}


def test_a_household_has_at_most_one_active_pairing():
    state = paired()
    other = a_cadre("C2")
    assert refused_rule(lambda: domain.decide_pair(state, {"cadre_id": "C2", "household_id": "H1",
                                                           "from": date(2023, 3, 1)}, other, "P2")) == \
        "one_active_pairing_per_household"


def test_a_new_pairing_may_start_after_the_last_one_ended_but_not_overlap_it():
    state = ended(paired(), date(2023, 3, 31))
    other = a_cadre("C2")
    assert refused_rule(lambda: domain.decide_pair(state, {"cadre_id": "C2", "household_id": "H1",
                                                           "from": date(2023, 3, 31)}, other, "P2")) == \
        "one_active_pairing_per_household"
    state = paired(state, other, date(2023, 4, 1), "P2")
    assert state.paired_on(date(2023, 3, 31)).cadre_id == "C1"
    assert state.paired_on(date(2023, 4, 1)).cadre_id == "C2"


def test_pairing_with_an_unknown_cadre_is_not_found():
    with pytest.raises(NotFound):
        domain.decide_pair(None, {"cadre_id": "NOPE", "household_id": "H1", "from": date(2023, 1, 1)}, None, "P1")


def test_pairing_ended_with_until_and_reason_and_only_once():
    state = paired()
    events = domain.decide_end_pairing(state, {"pairing_id": "P1", "until": date(2023, 5, 31), "reason": "调整帮扶"})
    assert events[0].payload == {"pairing_id": "P1", "cadre_id": "C1", "unit_id": "U1", "household_id": "H1",
                                 "until": "2023-05-31", "reason": "调整帮扶"}
    state = fold(domain.evolve_household, state, events)
    assert refused_rule(lambda: ended(state, date(2023, 6, 30))) == "pairing_already_ended"


def test_a_pairing_cannot_end_before_a_visit_already_recorded_in_it():
    state = paired()
    state = fold(domain.evolve_household, state, visit(state, date(2023, 5, 10)))
    assert refused_rule(lambda: ended(state, date(2023, 5, 9))) == "pairing_end_after_last_visit"
    assert ended(state, date(2023, 5, 10)).pairings[0].until == date(2023, 5, 10)


# --- visits ------------------------------------------------------------------------------------------

def test_visit_records_measures_outcome_changes_and_policy_explained():
    [event] = visit(paired(), date(2023, 5, 3))
    assert event.type == "visit_recorded"
    assert event.payload == {"visit_id": "VISIT", "pairing_id": "P1", "cadre_id": "C1", "unit_id": "U1",
                             "household_id": "H1", "visited_on": "2023-05-03", "measures": ["产业指导"],
                             "outcome": "收入稳定", "changes": "无", "policy_explained": True}


def test_visit_by_a_cadre_not_paired_with_the_household_is_refused():
    assert refused_rule(lambda: visit(paired(), date(2023, 5, 3), cadre_id="C2")) == "visit_by_paired_cadre"
    assert refused_rule(lambda: visit(None, date(2023, 5, 3))) == "visit_by_paired_cadre"


def test_visit_outside_the_pairing_dates_is_refused():
    state = ended(paired(start=date(2023, 2, 1)), date(2023, 4, 30))
    assert refused_rule(lambda: visit(state, date(2023, 1, 31))) == "visit_by_paired_cadre"
    assert refused_rule(lambda: visit(state, date(2023, 5, 1))) == "visit_by_paired_cadre"
    assert visit(state, date(2023, 4, 30))[0].payload["pairing_id"] == "P1"


def test_visit_dated_in_the_future_is_refused():
    state = paired()
    assert refused_rule(lambda: visit(state, date(2023, 6, 16))) == "not_in_future"
    assert visit(state, date(2023, 6, 15))  # today is fine


def test_a_batch_of_visits_is_all_or_none_and_lists_each_refused_visit():
    states = {"H1": paired(), "H2": paired(household_id="H2", pairing_id="P2")}

    def body(household_id, day):
        return {"cadre_id": "C1", "household_id": household_id, "visited_on": day, "measures": [],
                "outcome": "", "changes": "", "policy_explained": True}

    good = [body("H1", date(2023, 5, 3)), body("H2", date(2023, 5, 4))]
    events = domain.decide_visits(states, good, TODAY, lambda: "V")
    assert [len(events["H1"]), len(events["H2"])] == [1, 1]
    with pytest.raises(RuleRefused) as refused:
        domain.decide_visits(states, good + [body("H1", date(2023, 7, 1)), {**body("H2", date(2023, 5, 5)),
                                                                             "cadre_id": "C9"}], TODAY, lambda: "V")
    assert [(r["index"], r["household_id"]) for r in refused.value.details["refused"]] == [(2, "H1"), (3, "H2")]


# --- leaders' village visits, inspections, exams -----------------------------------------------------

def test_leaders_village_visit_carries_the_unit_and_is_not_in_the_future():
    cadre = a_cadre(rank="head", deputy=True)
    command = {"cadre_id": "C1", "village_id": "V1", "visited_on": date(2023, 3, 2), "purpose": "调研指导"}
    [event] = domain.decide_village_visit(cadre, command, TODAY, "VV1")
    assert event.payload == {"visit_id": "VV1", "cadre_id": "C1", "unit_id": "U1", "village_id": "V1",
                             "visited_on": "2023-03-02", "purpose": "调研指导"}
    assert refused_rule(lambda: domain.decide_village_visit(
        cadre, {**command, "visited_on": date(2023, 7, 1)}, TODAY, "VV2")) == "not_in_future"


def test_inspection_is_by_a_deputy_section_cadre_and_not_in_the_future():
    command = {"cadre_id": "C1", "village_id": "V1", "inspected_on": date(2023, 3, 2), "findings": "手册已发放"}
    [event] = domain.decide_inspection(a_cadre(rank="leader", deputy=True), command, TODAY, "I1")
    assert event.type == "inspection_recorded" and event.payload["unit_id"] == "U1"
    assert refused_rule(lambda: domain.decide_inspection(a_cadre(), command, TODAY, "I2")) == \
        "inspector_deputy_section_or_above"
    assert refused_rule(lambda: domain.decide_inspection(
        a_cadre(deputy=True), {**command, "inspected_on": date(2023, 6, 16)}, TODAY, "I3")) == "not_in_future"


def test_inspection_overdue_after_three_months_without_one():
    leader = a_cadre(rank="leader", deputy=True)
    assert domain.inspection_status(leader, date(2023, 3, 20), date(2023, 6, 15), RULES)["overdue"] is False
    assert domain.inspection_status(leader, date(2023, 3, 14), date(2023, 6, 15), RULES)["overdue"] is True
    assert domain.inspection_status(leader, None, date(2023, 6, 15), RULES)["overdue"] is True
    assert domain.inspection_status(a_cadre(), None, date(2023, 6, 15), RULES)["required"] is False
    assert domain.inspection_status(leader, date(2023, 3, 14), date(2023, 6, 15),
                                    Rules(inspection_interval_months=6))["overdue"] is False


def test_exam_score_is_between_0_and_100():
    cadre = a_cadre()
    command = {"cadre_id": "C1", "exam_id": "2023-policy", "score": 88, "taken_on": date(2023, 6, 1)}
    [event] = domain.decide_exam_score(cadre, command, TODAY, RULES)
    assert event.payload == {"cadre_id": "C1", "unit_id": "U1", "exam_id": "2023-policy", "score": 88,
                             "taken_on": "2023-06-01", "max_score": 100}  # the maximum the assessment scales by
    assert domain.decide_exam_score(cadre, {**command, "score": 0}, TODAY, RULES)
    assert domain.decide_exam_score(cadre, {**command, "score": 100}, TODAY, RULES)
    for bad in (-1, 100.5, 101):  # the range is the rulebook's: a rule, 422
        assert refused_rule(lambda bad=bad: domain.decide_exam_score(
            cadre, {**command, "score": bad}, TODAY, RULES)) == "score_in_rulebook_range"
    assert refused_rule(lambda: domain.decide_exam_score(
        cadre, {**command, "taken_on": date(2023, 6, 16)}, TODAY, RULES)) == "not_in_future"


# --- awareness spot checks ---------------------------------------------------------------------------

def test_awareness_check_is_charged_to_the_cadre_paired_that_day():
    state = ended(paired(start=date(2023, 2, 1)), date(2023, 4, 30))
    command = {"household_id": "H1", "checked_on": date(2023, 3, 5), "passed": False}
    [event] = domain.decide_awareness_check(state, command, TODAY, "K1")
    assert event.payload == {"check_id": "K1", "household_id": "H1", "checked_on": "2023-03-05", "passed": False,
                             "cadre_id": "C1", "unit_id": "U1"}


def test_awareness_check_with_no_pairing_that_day_is_charged_to_nobody():
    state = ended(paired(start=date(2023, 2, 1)), date(2023, 4, 30))
    for day in (date(2023, 1, 31), date(2023, 5, 1)):
        [event] = domain.decide_awareness_check(state, {"household_id": "H1", "checked_on": day, "passed": True},
                                                TODAY, "K1")
        assert (event.payload["cadre_id"], event.payload["unit_id"]) == (None, None)


def test_awareness_check_dated_in_the_future_is_refused():
    assert refused_rule(lambda: domain.decide_awareness_check(
        paired(), {"household_id": "H1", "checked_on": date(2023, 6, 16), "passed": True}, TODAY, "K1")) == \
        "not_in_future"


# --- work teams and residency ------------------------------------------------------------------------

def test_cadre_stationed_as_first_secretary_or_member_in_one_village_at_a_time():
    cadre = stationed(a_cadre())
    assert cadre.stationings[0].role == "first_secretary"
    assert refused_rule(lambda: domain.decide_station(cadre, {
        "cadre_id": "C1", "village_id": "V2", "role": "member", "from": date(2023, 6, 1), "until": None}, "S2")) == \
        "one_stationing_at_a_time"
    assert "role" in schemas.StationCadre().validate({"cadre_id": "C1", "village_id": "V1", "role": "boss",
                                                      "from": "2023-01-01"})


def test_residency_days_fit_the_month():
    cadre = stationed(a_cadre())
    report = {"cadre_id": "C1", "month": "2023-02", "days": 28}
    [event] = domain.decide_residency(cadre, report, TODAY)
    assert event.payload == {"cadre_id": "C1", "unit_id": "U1", "month": "2023-02", "days": 28}
    for days in (29, -1):
        assert refused_rule(lambda days=days: domain.decide_residency(
            cadre, {**report, "days": days}, TODAY)) == "days_within_month"
    assert domain.decide_residency(cadre, {**report, "month": "2023-03", "days": 31}, TODAY)
    assert domain.decide_residency(cadre, {**report, "days": 0}, TODAY)


def test_residency_report_for_a_future_month_is_refused_but_this_month_is_fine():
    cadre = stationed(a_cadre())
    assert refused_rule(lambda: domain.decide_residency(cadre, {"cadre_id": "C1", "month": "2023-07", "days": 3},
                                                        TODAY)) == "not_in_future"
    assert domain.decide_residency(cadre, {"cadre_id": "C1", "month": "2023-06", "days": 10}, TODAY)


def test_residency_is_reported_only_for_a_stationed_month():
    cadre = stationed(a_cadre(), start=date(2023, 3, 15), until=date(2023, 4, 30))
    assert refused_rule(lambda: domain.decide_residency(cadre, {"cadre_id": "C1", "month": "2023-02", "days": 3},
                                                        TODAY)) == "residency_needs_stationing"
    assert domain.decide_residency(cadre, {"cadre_id": "C1", "month": "2023-03", "days": 15}, TODAY)


def test_residency_minimum_is_15_days_from_the_rulebook():
    months = domain.residency_months([("2023-01", 15), ("2023-02", 14)], RULES)
    assert [m["meets_minimum"] for m in months] == [True, False]
    assert domain.residency_months([("2023-02", 14)], Rules(residency_min_days=10))[0]["meets_minimum"] is True


# --- monthly visits: overdue and compliance ----------------------------------------------------------

def pairing(pairing_id="P1", start=date(2023, 1, 15), until=None, household_id="H1"):
    return domain.Pairing(pairing_id, "C1", "U1", household_id, start, until)


def test_overdue_visits_lists_each_month_of_the_pairing_without_a_visit_through_the_as_of_month():
    visits = {"P1": [date(2023, 1, 20), date(2023, 3, 2)]}
    items = domain.overdue_visits([pairing()], visits, date(2023, 4, 10), RULES)
    assert [item["month"] for item in items] == ["2023-02", "2023-04"]
    assert items[0] == {"pairing_id": "P1", "household_id": "H1", "month": "2023-02"}


def test_overdue_visits_cross_a_month_and_year_boundary():
    visits = {"P1": [date(2023, 12, 31)]}
    p = pairing(start=date(2023, 12, 1))
    assert domain.overdue_visits([p], visits, date(2023, 12, 31), RULES) == []
    assert [i["month"] for i in domain.overdue_visits([p], visits, date(2024, 1, 1), RULES)] == ["2024-01"]
    # a visit after the as-of date does not count for it
    assert [i["month"] for i in domain.overdue_visits([p], visits, date(2023, 12, 30), RULES)] == ["2023-12"]


def test_overdue_visits_stop_at_the_end_of_the_pairing_and_ignore_future_pairings():
    ended_pairing = pairing(until=date(2023, 2, 3))
    items = domain.overdue_visits([ended_pairing, pairing("P2", start=date(2023, 9, 1), household_id="H2")], {},
                                  date(2023, 6, 30), RULES)
    assert [(i["pairing_id"], i["month"]) for i in items] == [("P1", "2023-01"), ("P1", "2023-02")]


def test_visits_per_month_come_from_the_rulebook():
    visits = {"P1": [date(2023, 1, 20)]}
    assert domain.overdue_visits([pairing()], visits, date(2023, 1, 31), Rules(visits_per_month=2)) != []


def test_monthly_compliance_counts_pairings_active_for_the_whole_month():
    pairings = [pairing("P1", start=date(2023, 1, 1)), pairing("P2", start=date(2023, 1, 15), household_id="H2")]
    visits = {"P1": [date(2023, 1, 3), date(2023, 2, 9)], "P2": [date(2023, 2, 1)]}
    months = domain.monthly_compliance(pairings, visits, date(2023, 3, 10), RULES)
    assert [(m["month"], m["pairs_due"], m["pairs_visited"], m["complete"]) for m in months] == [
        ("2023-01", 1, 1, True), ("2023-02", 2, 2, True), ("2023-03", 2, 0, False)]
    assert months[1]["rate"] == 1.0 and months[2]["rate"] == 0.0


def test_leaders_village_visit_requirements_come_from_the_rulebook():
    assert (RULES.village_visits_required("head"), RULES.village_visits_required("leader"),
            RULES.village_visits_required("staff")) == (2, 4, 0)
    assert Rules(head_village_visits_per_year=3).village_visits_required("head") == 3

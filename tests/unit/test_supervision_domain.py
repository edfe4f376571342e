"""Supervision rules: weekly reports due Friday 12:00 county time, lateness, the problem lifecycle."""
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from services.common.errors import RuleRefused
from services.supervision import domain

RULES = domain.Rules()


def fold(evolve, events, state=None):
    for event in events:
        state = evolve(state, event)
    return state


def campaign():
    launched = domain.decide_launch(None, {"campaign_id": "sprint", "name": "百日冲刺", "starts_on": date(2018, 6, 11),
                                           "ends_on": date(2018, 9, 30), "phases": []})
    state = fold(domain.evolve_campaign, launched)
    added = domain.decide_add_action(state, {
        "campaign_id": "sprint", "action_id": "a13", "name": "健康扶贫", "lead": "赵强",
        "responsible_units": ["health", "all_townships"], "townships": None,
        "targets": [{"target_id": "clinics", "name": "标准化卫生室", "unit_of_measure": "units",
                     "quantity": Decimal(35), "by_township": {"T1": Decimal(20), "T2": Decimal(15)}}],
        "milestones": [{"what": "35 clinics", "due_on": date(2018, 8, 31), "target_id": "clinics",
                        "quantity": Decimal(35)}]}, RULES)
    return fold(domain.evolve_campaign, added, state)


def report(state, unit, week, at, progress="5"):
    return domain.decide_weekly_report(state, None, {
        "campaign_id": "sprint", "unit_id": unit, "week": week, "signed_off_by": "head-1", "reported_at": at,
        "items": [{"action_id": "a13", "target_id": "clinics", "progress": Decimal(progress), "problems": ""}]},
        RULES, datetime(2018, 12, 1, tzinfo=RULES.zone))


def test_weekly_reports_are_due_friday_noon_county_time():
    due = domain.report_due_at("2018-W25", RULES)
    assert due == datetime(2018, 6, 22, 12, 0, tzinfo=RULES.zone)
    assert due.astimezone(timezone.utc).hour == 4  # 12:00 in Beijing is 04:00 UTC


def test_a_report_after_friday_noon_is_late_and_one_before_is_on_time():
    state = campaign()
    on_time = report(state, "T1", "2018-W25", datetime(2018, 6, 22, 11, 59, tzinfo=RULES.zone))[0]
    late = report(state, "T1", "2018-W25", datetime(2018, 6, 22, 12, 1, tzinfo=RULES.zone))[0]
    assert (on_time.payload["late"], late.payload["late"]) == (False, True)
    # 04:30 UTC on Friday is already 12:30 in the county: late, though the server says morning
    utc = report(state, "T1", "2018-W25", datetime(2018, 6, 22, 4, 30, tzinfo=timezone.utc))[0]
    assert utc.payload["late"] is True


def test_only_weeks_whose_friday_falls_in_the_campaign_are_due():
    weeks = domain.due_weeks(date(2018, 6, 11), date(2018, 9, 30), RULES)
    assert weeks[0] == "2018-W24" and weeks[-1] == "2018-W39" and len(weeks) == 16
    with pytest.raises(RuleRefused):
        report(campaign(), "T1", "2018-W40", datetime(2018, 10, 5, 9, tzinfo=RULES.zone))


def test_a_unit_not_responsible_cannot_report_and_all_townships_expand():
    state = campaign()
    assert state.reporters() == {"health": "department", "T1": "township", "T2": "township"}
    with pytest.raises(RuleRefused):
        report(state, "water", "2018-W25", datetime(2018, 6, 22, 9, tzinfo=RULES.zone))


def test_missing_and_late_reports_by_unit_and_progress_against_target():
    state = campaign()
    reports = [report(state, "T1", "2018-W24", datetime(2018, 6, 15, 9, tzinfo=RULES.zone), "20")[0].payload,
               report(state, "T2", "2018-W24", datetime(2018, 6, 16, 9, tzinfo=RULES.zone), "6")[0].payload]
    view = domain.campaign_view(state, reports, datetime(2018, 6, 18, tzinfo=RULES.zone), RULES)
    units = {u["unit_id"]: u for u in view["reports"]["units"]}
    assert units["T1"]["on_time"] == 1 and units["T2"]["late"][0]["week"] == "2018-W24"
    assert units["health"]["missing"] == ["2018-W24"]
    target = view["actions"][0]["targets"][0]
    assert target["done"] == "26" and [t["done"] for t in target["by_township"]] == ["20", "6"]
    assert view["actions"][0]["milestones"][0]["status"] == "pending"


def problem():
    return fold(domain.evolve_problem, domain.decide_record_problem(None, {
        "problem_id": "p1", "source": "inspection", "found_on": date(2018, 7, 1), "description": "帮扶措施不实",
        "unit_id": "T1", "deadline": date(2018, 7, 31)}))


def step(state, decide, **command):
    return fold(domain.evolve_problem, decide(state, {"problem_id": "p1", **command}), state)


def test_problem_lifecycle_measures_closure_send_back_and_verify():
    state = problem()
    with pytest.raises(RuleRefused):  # no closure before measures
        domain.decide_request_closure(state, {"problem_id": "p1", "on": date(2018, 7, 5)})
    state = step(state, domain.decide_record_measures, on=date(2018, 7, 5), measures="补齐台账")
    state = step(state, domain.decide_request_closure, on=date(2018, 7, 6))
    assert state.status == "awaiting_verification"
    state = step(state, domain.decide_verify, on=date(2018, 7, 7), accepted=False, note="不彻底")
    assert state.status == "open"
    state = step(state, domain.decide_record_measures, on=date(2018, 7, 10), measures="再次入户")
    state = step(state, domain.decide_request_closure, on=date(2018, 7, 11))
    events = domain.decide_verify(state, {"problem_id": "p1", "on": date(2018, 7, 12), "accepted": True, "note": ""})
    assert events[0].type == "problem_closed" and events[0].payload["on_time"] is True
    state = fold(domain.evolve_problem, events, state)
    with pytest.raises(RuleRefused):
        domain.decide_record_measures(state, {"problem_id": "p1", "on": date(2018, 7, 13), "measures": "x"})


def test_a_problem_open_past_its_deadline_is_overdue():
    view = domain.problem_view(problem())
    assert domain.problem_status(view, date(2018, 7, 31)) == "open"
    assert domain.problem_status(view, date(2018, 8, 1)) == "overdue"


def test_an_action_carries_each_weeks_due_time_for_the_assessment():
    action = campaign().actions["a13"]
    due = action["reports_due"]
    # 2018-06-11 is a Monday: W24's Friday the 15th is the first; W39's Friday 28 September the last
    assert due[0] == {"week": "2018-W24", "due_at": "2018-06-15T12:00:00+08:00"}
    assert due[-1] == {"week": "2018-W39", "due_at": "2018-09-28T12:00:00+08:00"}
    assert [slot["week"] for slot in due] == domain.due_weeks(date(2018, 6, 11), date(2018, 9, 30), RULES)
    # another county's rule (Thursday 17:00) is what the action records
    other = domain.Rules(report_weekday="thursday", report_deadline="17:00")
    state = fold(domain.evolve_campaign, domain.decide_launch(None, {
        "campaign_id": "c", "name": "x", "starts_on": date(2018, 6, 11), "ends_on": date(2018, 6, 30), "phases": []}))
    added = domain.decide_add_action(state, {"campaign_id": "c", "action_id": "a", "name": "x", "lead": "x",
                                             "responsible_units": ["U1"], "targets": [], "milestones": []}, other)
    assert added[0].payload["reports_due"][0] == {"week": "2018-W24", "due_at": "2018-06-14T17:00:00+08:00"}

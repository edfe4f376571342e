"""The supervision indicators of a unit's score (DOMAIN.md, Supervision): `report_timeliness`
(weekly campaign reports and 旬 project reports made on time / due) and `rectification`
(problems verified closed by their deadline / problems due), with their evidence; and the 旬
boundaries (1–10, 11–20, 21–end of month, incl. month ends and February)."""
import uuid
from datetime import date

import pytest

from services.assessment import scoring
from services.assessment.facts import DEFAULT_RULES, Facts, Project
from services.assessment.supervision import missing_xun_reports, xun_label, xun_of, xuns
from services.common.events import StoredEvent
from tests.rulebook_defaults import declared_defaults_events

MAY = scoring.parse_period("2023-05")


def events_of(*specs):
    return [StoredEvent(n, str(uuid.uuid4()), "", "", 1, kind, 1, payload) for n, (kind, payload) in
            enumerate(specs, start=1)]


def facts_of(events):
    facts = Facts()
    for event in [*declared_defaults_events(), *events]:
        facts.apply(event)
    return facts


def indicator(card, name):
    return next((i for i in card["indicators"] if i["name"] == name), None)


# --- 旬 boundaries ----------------------------------------------------------------------------------

@pytest.mark.parametrize("day, first, last", [
    ("2023-05-01", "2023-05-01", "2023-05-10"),
    ("2023-05-10", "2023-05-01", "2023-05-10"),
    ("2023-05-11", "2023-05-11", "2023-05-20"),
    ("2023-05-20", "2023-05-11", "2023-05-20"),
    ("2023-05-21", "2023-05-21", "2023-05-31"),
    ("2023-05-31", "2023-05-21", "2023-05-31"),  # a 31-day month: the last 旬 has 11 days
    ("2023-04-30", "2023-04-21", "2023-04-30"),  # a 30-day month: 10 days
    ("2023-02-28", "2023-02-21", "2023-02-28"),  # February: 8 days
    ("2024-02-29", "2024-02-21", "2024-02-29"),  # a leap February: 9 days
    ("2023-12-31", "2023-12-21", "2023-12-31"),
])
def test_xun_boundaries(day, first, last):
    assert xun_of(date.fromisoformat(day)) == (date.fromisoformat(first), date.fromisoformat(last))


def test_the_xuns_of_a_span_cross_month_and_year_ends():
    spans = xuns(date(2023, 12, 15), date(2024, 1, 20))
    assert [(a.isoformat(), b.isoformat()) for a, b in spans] == [
        ("2023-12-11", "2023-12-20"), ("2023-12-21", "2023-12-31"), ("2024-01-01", "2024-01-10"),
        ("2024-01-11", "2024-01-20")]
    assert xuns(date(2023, 2, 1), date(2023, 2, 27))[-1] == (date(2023, 2, 11), date(2023, 2, 20))  # not ended yet
    assert xuns(date(2023, 2, 1), date(2023, 2, 28))[-1] == (date(2023, 2, 21), date(2023, 2, 28))
    assert xun_label(date(2023, 2, 21)) == "2023-02 下旬"


def test_a_project_owes_a_report_for_each_xun_it_is_under_way_the_whole_of():
    project = Project("P", department="transport", started_on=date(2023, 2, 5), completed_on=date(2023, 3, 15))
    due, missing = missing_xun_reports(project, {date(2023, 2, 28), date(2023, 3, 1)}, date(2023, 1, 1),
                                       date(2023, 3, 31))
    # started 5 February: 上旬 of February not owed; 中旬, 下旬 (reported on the 28th), March 上旬 (the 1st);
    # completed 15 March: March 中旬 and later not owed
    assert due == [(date(2023, 2, 11), date(2023, 2, 20)), (date(2023, 2, 21), date(2023, 2, 28)),
                   (date(2023, 3, 1), date(2023, 3, 10))]
    assert missing == [(date(2023, 2, 11), date(2023, 2, 20))]
    never_started = Project("Q", department="transport")
    assert missing_xun_reports(never_started, set(), date(2023, 1, 1), date(2023, 3, 31)) == ([], [])


# --- the indicators ---------------------------------------------------------------------------------

def county(*extra):
    """Units U1 (transport) and U2 (water); a campaign in May–June with one action for U1, the
    water department and township T1; weekly reports due each Friday 12:00."""
    due = [{"week": week, "due_at": f"{day}T12:00:00+08:00"} for week, day in (
        ("2023-W18", "2023-05-05"), ("2023-W19", "2023-05-12"), ("2023-W20", "2023-05-19"),
        ("2023-W21", "2023-05-26"), ("2023-W22", "2023-06-02"))]
    return facts_of(events_of(
        ("unit_registered", {"unit_id": "U1", "name": "交通运输局", "department": "transport"}),
        ("unit_registered", {"unit_id": "U2", "name": "水利局", "department": "water"}),
        ("campaign_launched", {"campaign_id": "S", "name": "百日冲刺", "starts_on": "2023-05-01",
                               "ends_on": "2023-06-04", "phases": []}),
        ("action_added", {"campaign_id": "S", "action_id": "a1", "name": "道路", "lead": "县长",
                          "responsible_units": ["U1", "water", "all_townships"],
                          "reporters": [{"unit_id": "U1", "kind": "unit"}, {"unit_id": "water", "kind": "department"},
                                        {"unit_id": "T1", "kind": "township"}],
                          "targets": [], "milestones": [], "reports_due": due}),
        *extra))


def report(unit_id, week, late, at, revision=1, first=None):
    return ("weekly_report_submitted", {"campaign_id": "S", "unit_id": unit_id, "week": week, "late": late,
                                        "due_at": "2023-05-12T12:00:00+08:00", "reported_at": at,
                                        "first_reported_at": first or at, "revision": revision, "items": []})


def test_report_timeliness_counts_late_and_missing_weekly_reports_with_evidence():
    facts = county(
        report("U1", "2023-W18", False, "2023-05-05T09:00:00+08:00"),
        report("U1", "2023-W19", True, "2023-05-12T15:00:00+08:00"),
        # a second submission keeps the week's lateness as the first said
        report("U1", "2023-W19", True, "2023-05-13T09:00:00+08:00", revision=2, first="2023-05-12T15:00:00+08:00"),
        report("U1", "2023-W20", False, "2023-05-19T11:59:00+08:00"),
        # W21 missing; W22 is due in June
        report("water", "2023-W18", False, "2023-05-04T10:00:00+08:00"),
    )
    card = scoring.score("unit", "U1", facts, MAY, date(2023, 5, 31))
    timeliness = indicator(card, "report_timeliness")
    assert (timeliness["numerator"], timeliness["denominator"], timeliness["weight"]) == (2, 4, 5)
    assert timeliness["points"] == 2.5
    assert [(e["week"], e["status"], e["reported_at"]) for e in timeliness["evidence"]] == [
        ("2023-W19", "late", "2023-05-12T15:00:00+08:00"), ("2023-W21", "missing", None)]
    assert timeliness["evidence"][0]["campaign_id"] == "S" and timeliness["evidence"][0]["reported_by"] == "U1"
    # the water department's reports are U2's: 1 of 4 made
    water = indicator(scoring.score("unit", "U2", facts, MAY, date(2023, 5, 31)), "report_timeliness")
    assert (water["numerator"], water["denominator"]) == (1, 4)


def test_a_report_is_due_on_its_day_and_one_made_after_the_as_of_date_is_missing_then():
    facts = county(report("U1", "2023-W18", False, "2023-05-05T09:00:00+08:00"))
    before = indicator(scoring.score("unit", "U1", facts, MAY, date(2023, 5, 4)), "report_timeliness")
    assert before is None  # nothing due yet: the indicator does not apply
    on_the_day = indicator(scoring.score("unit", "U1", facts, MAY, date(2023, 5, 5)), "report_timeliness")
    assert (on_the_day["numerator"], on_the_day["denominator"]) == (1, 1)
    late_made = county(report("U1", "2023-W18", True, "2023-05-08T09:00:00+08:00"))
    then = indicator(scoring.score("unit", "U1", late_made, MAY, date(2023, 5, 6)), "report_timeliness")
    assert then["evidence"][0]["status"] == "missing"
    later = indicator(scoring.score("unit", "U1", late_made, MAY, date(2023, 5, 8)), "report_timeliness")
    assert later["evidence"][0]["status"] == "late"


def test_xun_reports_count_in_report_timeliness_against_the_department():
    facts = county(
        ("project_planned", {"project_id": "PR", "title": "通组路", "department": "transport", "plan_year": 2023,
                             "deadline": "2023-09-30", "township_id": "T1"}),
        ("project_started", {"project_id": "PR", "department": "transport", "on": "2023-04-20"}),
        ("progress_reported", {"project_id": "PR", "department": "transport", "reported_on": "2023-05-03",
                               "percent_complete": 10}),
        ("progress_reported", {"project_id": "PR", "department": "transport", "reported_on": "2023-05-25",
                               "percent_complete": 30}),
    )
    timeliness = indicator(scoring.score("unit", "U1", facts, MAY, date(2023, 5, 31)), "report_timeliness")
    # 4 weekly reports (none made) + 3 旬 (上旬 and 下旬 reported, 中旬 not) → 2 / 7
    assert (timeliness["numerator"], timeliness["denominator"]) == (2, 7)
    xun = [e for e in timeliness["evidence"] if e["kind"] == "xun_report"]
    assert xun == [{"kind": "xun_report", "project_id": "PR", "title": "通组路", "xun": "2023-05 中旬",
                    "from": "2023-05-11", "until": "2023-05-20", "status": "missing"}]
    water = indicator(scoring.score("unit", "U2", facts, MAY, date(2023, 5, 31)), "report_timeliness")
    assert not [e for e in water["evidence"] if e["kind"] == "xun_report"]  # another department's project


def problem(problem_id, unit_id, deadline, closed_on=None):
    events = [("problem_recorded", {"problem_id": problem_id, "source": "supervision", "found_on": "2023-05-02",
                                    "description": f"问题{problem_id}", "unit_id": unit_id, "township_id": None,
                                    "household_id": None, "deadline": deadline})]
    if closed_on:
        events.append(("problem_closed", {"problem_id": problem_id, "unit_id": unit_id, "on": closed_on, "note": "",
                                          "deadline": deadline, "on_time": closed_on <= deadline}))
    return events


def test_rectification_counts_problems_closed_by_their_deadline_with_evidence():
    facts = county(
        *problem("p1", "U1", "2023-05-15", closed_on="2023-05-14"),  # on time
        *problem("p2", "U1", "2023-05-20", closed_on="2023-05-25"),  # closed late
        *problem("p3", "U1", "2023-05-25"),  # overdue
        *problem("p4", "U1", "2023-06-15"),  # not due in May
        *problem("p5", "transport", "2023-05-20", closed_on="2023-05-20"),  # the department's: U1's too
        *problem("p6", "U2", "2023-05-10"),  # another unit's
    )
    card = scoring.score("unit", "U1", facts, MAY, date(2023, 5, 31))
    fixing = indicator(card, "rectification")
    assert (fixing["numerator"], fixing["denominator"], fixing["weight"], fixing["points"]) == (2, 4, 5, 2.5)
    assert [(e["problem_id"], e["status"], e["closed_on"]) for e in fixing["evidence"]] == [
        ("p2", "closed_late", "2023-05-25"), ("p3", "overdue", None)]
    # as of 21 May: p3 is not due yet, p2 is open past its deadline (its closure comes later)
    early = indicator(scoring.score("unit", "U1", facts, MAY, date(2023, 5, 21)), "rectification")
    assert (early["numerator"], early["denominator"]) == (2, 3)
    assert [(e["problem_id"], e["status"]) for e in early["evidence"]] == [("p2", "overdue")]


def test_events_in_any_order_give_the_same_indicators():
    specs = [*problem("p1", "U1", "2023-05-15", closed_on="2023-05-14"), *problem("p3", "U1", "2023-05-25"),
             report("U1", "2023-W19", True, "2023-05-12T15:00:00+08:00")]
    forward = county(*specs)
    backward = county(*reversed(specs))
    for facts in (forward, backward):
        card = scoring.score("unit", "U1", facts, MAY, date(2023, 5, 31))
        assert indicator(card, "rectification")["numerator"] == 1
        assert indicator(card, "report_timeliness")["evidence"][0]["week"] == "2023-W18"


def test_a_late_report_and_an_overdue_problem_lower_the_score_by_the_rulebook_weights():
    clean = county(*[report("U1", w, False, f"{d}T09:00:00+08:00") for w, d in (
        ("2023-W18", "2023-05-05"), ("2023-W19", "2023-05-12"), ("2023-W20", "2023-05-19"),
        ("2023-W21", "2023-05-26"))], *problem("p1", "U1", "2023-05-15", closed_on="2023-05-14"))
    poor = county(*[report("U1", w, w == "2023-W19", f"{d}T09:00:00+08:00") for w, d in (
        ("2023-W18", "2023-05-05"), ("2023-W19", "2023-05-12"), ("2023-W20", "2023-05-19"),
        ("2023-W21", "2023-05-26"))], *problem("p1", "U1", "2023-05-15"))
    good_card = scoring.score("unit", "U1", clean, MAY, date(2023, 5, 31))
    poor_card = scoring.score("unit", "U1", poor, MAY, date(2023, 5, 31))
    assert good_card["score"] == 100.0
    # 10 weight in all: report_timeliness 3/4 × 5 = 3.75, rectification 0 → 37.5 %
    assert poor_card["score"] == 37.5
    assert DEFAULT_RULES["weights"]["unit"]["report_timeliness"] == 5
    assert DEFAULT_RULES["weights"]["unit"]["rectification"] == 5


# --- the weekly bulletin ----------------------------------------------------------------------------

def test_the_weekly_bulletin_shows_campaign_progress_and_lapses_by_unit():
    from services.assessment.bulletin import as_csv, as_xlsx, weekly_bulletin

    due = [{"week": w, "due_at": f"{d}T12:00:00+08:00"} for w, d in (("2023-W18", "2023-05-05"),
                                                                     ("2023-W19", "2023-05-12"))]
    action = {"campaign_id": "S", "action_id": "a19", "name": "村组道路畅通", "lead": "副县长",
              "responsible_units": ["U1", "U2"], "reports_due": due,
              "reporters": [{"unit_id": "U1", "kind": "unit"}, {"unit_id": "U2", "kind": "unit"}],
              "targets": [{"target_id": "roads", "name": "通组路", "unit_of_measure": "km", "quantity": "40",
                           "by_township": {}}],
              "milestones": [{"milestone_id": "m1", "what": "完成10公里", "due_on": "2023-05-10", "target_id": "roads",
                              "quantity": "10"},
                             {"milestone_id": "m2", "what": "完成30公里", "due_on": "2023-05-12", "target_id": "roads",
                              "quantity": "30"},
                             {"milestone_id": "m3", "what": "全部完工", "due_on": "2023-06-30", "target_id": None,
                              "quantity": None}]}

    def submitted(unit, week, at, progress, late=False):
        return ("weekly_report_submitted", {"campaign_id": "S", "unit_id": unit, "week": week, "late": late,
                                            "due_at": "x", "reported_at": at, "first_reported_at": at, "revision": 1,
                                            "items": [{"action_id": "a19", "target_id": "roads",
                                                       "progress": progress, "problems": ""}]})

    facts = facts_of(events_of(
        ("unit_registered", {"unit_id": "U1", "name": "交通运输局", "department": "transport"}),
        ("campaign_launched", {"campaign_id": "S", "name": "百日冲刺", "starts_on": "2023-05-01",
                               "ends_on": "2023-06-30", "phases": []}),
        ("action_added", action),
        submitted("U1", "2023-W18", "2023-05-05T09:00:00+08:00", "6"),
        submitted("U2", "2023-W18", "2023-05-05T10:00:00+08:00", "5"),
        submitted("U1", "2023-W19", "2023-05-12T15:00:00+08:00", "12", late=True),
        submitted("U1", "2023-W20", "2023-05-19T09:00:00+08:00", "30"),  # after the bulletin's week
        *problem("p1", "U2", "2023-05-10"),
        *problem("p2", "U1", "2023-05-31"),
    ))
    bulletin = weekly_bulletin(facts, "2023-W19")  # 8–14 May 2023
    [campaign] = bulletin["campaigns"]
    [row] = campaign["actions"]
    assert row["targets"] == [{"target_id": "roads", "name": "通组路", "unit_of_measure": "km", "quantity": "40",
                               "done": "17", "percent": 42.5}]  # U1 12 + U2 5
    assert [(m["what"], m["met_on"]) for m in row["milestones_met"]] == [("完成10公里", "2023-05-05")]
    assert [m["what"] for m in row["milestones_missed"]] == ["完成30公里"] and row["milestones_pending"] == 1
    lapses = {entry["unit_id"]: entry for entry in bulletin["lapses"]}
    assert [item["week"] for item in lapses["U1"]["late"]] == ["2023-W19"] and lapses["U1"]["missing"] == []
    assert [item["week"] for item in lapses["U2"]["missing"]] == ["2023-W19"]
    assert [p["problem_id"] for p in lapses["U2"]["overdue_problems"]] == ["p1"]
    assert lapses["U2"]["overdue_problems"][0]["days_overdue"] == 4
    assert not lapses["U1"]["overdue_problems"]  # p2 is due at the end of May
    text = as_csv(bulletin).decode("utf-8-sig")
    assert "专项行动进展" in text and "村组道路畅通,通组路,km,40,17,42.5,完成10公里 (2023-05-05),完成30公里 (2023-05-12)" in text
    assert "U2,,2023-W19,问题p1 (限2023-05-10)" in text
    assert as_xlsx(bulletin)[:2] == b"PK"
    earlier = weekly_bulletin(facts, "2023-W17")  # the campaign has not started
    assert earlier["campaigns"] == [] and earlier["lapses"] == []

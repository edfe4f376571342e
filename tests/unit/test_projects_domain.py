"""Projects domain rules (DOMAIN.md "Projects service", issue 5): pure, no infrastructure."""
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.projects import bulk_import, domain
from services.projects.domain import FundMovement, ProjectFacts, Rules

RULES = Rules()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"


def plan_command(**changes):
    command = {
        "project_id": "TR-2023-001", "title": "长岭村通组公路硬化", "department": "transport",
        "category": "village_road", "level": "township", "township_id": "T1", "village_ids": ["V1", "V2"],
        "planned_quantity": Decimal("3.2"), "quantity_unit": "km", "budget": Decimal("960000.00"),
        "funding_sources": [{"source": "central", "amount": Decimal("600000.00")},
                            {"source": "integrated", "amount": Decimal("360000.00")}],
        "plan_year": 2023, "deadline": None,
    }
    command.update(changes)
    return command


def fold(state, events):
    for event in events:
        state = domain.evolve(state, event)
    return state


def planned(**changes):
    return fold(None, domain.decide_plan(None, plan_command(**changes), RULES))


def started(on=date(2023, 4, 1), **changes):
    project = planned(**changes)
    return fold(project, domain.decide_start(project, {"project_id": project.project_id, "on": on}))


def progressed(project, percent, on=date(2023, 6, 1), quantity=None):
    command = {"project_id": project.project_id, "reported_on": on, "percent_complete": percent,
               "quantity_done": quantity, "problems": ""}
    return fold(project, domain.decide_report_progress(project, command))


def completed(project, on=date(2023, 10, 20), quantity=None):
    return fold(project, domain.decide_complete(project, {"project_id": project.project_id, "on": on,
                                                          "quantity_done": quantity}))


def cancelled(project, on=date(2023, 5, 1)):
    return fold(project, domain.decide_cancel(project, {"project_id": project.project_id, "on": on,
                                                        "reason": "并入其他项目"}))


def allocated(project, amount, on=date(2023, 3, 1), source="central"):
    return fold(project, domain.decide_allocate(project, {"project_id": project.project_id, "amount": Decimal(amount),
                                                          "source": source, "on": on}))


def disburse(project, amount, on=date(2023, 6, 30)):
    return domain.decide_disburse(project, {"project_id": project.project_id, "amount": Decimal(amount), "on": on,
                                            "payee": "县路桥建设有限公司"})


def refused_rule(call):
    with pytest.raises(RuleRefused) as refused:
        call()
    return refused.value.details["rule"]


# --- planning and deadlines -------------------------------------------------------------------------

def test_county_level_project_without_deadline_is_due_31_august_of_its_plan_year():
    [event] = domain.decide_plan(None, plan_command(level="county", plan_year=2024), RULES)
    assert event.type == "project_planned"
    assert event.payload["deadline"] == "2024-08-31"


def test_township_level_project_without_deadline_is_due_30_november_of_its_plan_year():
    [event] = domain.decide_plan(None, plan_command(level="township"), RULES)
    assert event.payload["deadline"] == "2023-11-30"


def test_a_given_deadline_is_kept():
    [event] = domain.decide_plan(None, plan_command(deadline=date(2023, 10, 15)), RULES)
    assert event.payload["deadline"] == "2023-10-15"


def test_default_deadlines_come_from_the_rulebook():
    rules = Rules.from_dict({"county_deadline": "07-31", "township_deadline": "12-15"})
    [county] = domain.decide_plan(None, plan_command(level="county"), rules)
    [township] = domain.decide_plan(None, plan_command(level="township"), rules)
    assert (county.payload["deadline"], township.payload["deadline"]) == ("2023-07-31", "2023-12-15")


def test_rulebook_from_config_values_and_a_bad_date_is_refused():
    rules = Rules.from_dict({"disbursement_target_rate": 0.9, "departments": ["transport", "water"]})
    assert rules.disbursement_target_rate == Decimal("0.9")
    assert rules.departments == ("transport", "water")
    with pytest.raises(ValueError):
        Rules.from_dict({"county_deadline": "31-08"})


def test_planned_payload_has_every_catalogue_field_with_money_as_two_decimal_strings():
    [event] = domain.decide_plan(None, plan_command(), RULES)
    assert event.payload == {
        "project_id": "TR-2023-001", "title": "长岭村通组公路硬化", "department": "transport",
        "category": "village_road", "level": "township", "township_id": "T1", "village_ids": ["V1", "V2"],
        "planned_quantity": "3.2", "quantity_unit": "km", "budget": "960000.00",
        "funding_sources": [{"source": "central", "amount": "600000.00"},
                            {"source": "integrated", "amount": "360000.00"}],
        "plan_year": 2023, "deadline": "2023-11-30",
    }


def test_money_is_decimal_so_ten_and_twenty_fen_make_exactly_thirty():
    # As floats 0.1 + 0.2 != 0.3 and the plan would be refused as not matching its budget.
    command = plan_command(budget=Decimal("0.30"), funding_sources=[
        {"source": "central", "amount": Decimal("0.10")}, {"source": "county", "amount": Decimal("0.20")}])
    [event] = domain.decide_plan(None, command, RULES)
    assert event.payload["budget"] == "0.30"


def test_funding_sources_must_add_up_to_the_budget():
    command = plan_command(funding_sources=[{"source": "central", "amount": Decimal("500000.00")}])
    with pytest.raises(RuleRefused) as refused:
        domain.decide_plan(None, command, RULES)
    assert refused.value.details == {"rule": "funding_matches_budget", "budget": "960000.00", "funded": "500000.00"}


def test_an_unknown_department_is_refused_and_the_list_is_configurable():
    assert refused_rule(lambda: domain.decide_plan(None, plan_command(department="railways"), RULES)) == "known_department"
    rules = Rules.from_dict({"departments": ["railways"]})
    assert domain.decide_plan(None, plan_command(department="railways"), rules)[0].payload["department"] == "railways"


def test_the_same_project_code_with_the_same_content_appends_nothing():
    project = planned()
    same = plan_command(village_ids=["V2", "V1"], planned_quantity=Decimal("3.20"),
                        funding_sources=list(reversed(plan_command()["funding_sources"])),
                        deadline=date(2023, 11, 30))
    assert domain.decide_plan(project, same, RULES) == []


def test_the_same_project_code_with_different_content_is_a_conflict_naming_the_differences():
    project = started()
    with pytest.raises(Conflict) as conflict:
        domain.decide_plan(project, plan_command(budget=Decimal("1000000.00"), funding_sources=[]), RULES)
    differences = conflict.value.details["differences"]
    assert differences["budget"] == {"recorded": "960000.00", "given": "1000000.00"}
    assert set(differences) == {"budget", "funding_sources"}


# --- lifecycle ----------------------------------------------------------------------------------------

def test_a_project_starts_once():
    project = started(on=date(2023, 4, 1))
    assert project.status == "started" and project.started_on == date(2023, 4, 1)
    assert refused_rule(lambda: domain.decide_start(project, {"project_id": project.project_id,
                                                              "on": date(2023, 4, 2)})) == "start_once"


def test_no_progress_before_the_project_started():
    project = planned()
    assert refused_rule(lambda: progressed(project, 10)) == "no_progress_before_start"


def test_no_progress_dated_before_the_start_date():
    project = started(on=date(2023, 4, 1))
    assert refused_rule(lambda: progressed(project, 10, on=date(2023, 3, 31))) == "no_progress_before_start"
    assert progressed(project, 10, on=date(2023, 4, 1)).percent_complete == 10


def test_percent_complete_never_goes_backwards():
    project = progressed(started(), 40)
    with pytest.raises(RuleRefused) as refused:
        progressed(project, 30, on=date(2023, 6, 11))
    assert refused.value.details == {"rule": "percent_never_decreases", "previous": 40, "given": 30}
    assert progressed(project, 40, on=date(2023, 6, 11)).percent_complete == 40


def test_progress_payload_keeps_the_last_quantity_when_none_is_given():
    project = progressed(started(), 40, quantity=Decimal("1.30"))
    [event] = domain.decide_report_progress(project, {"project_id": project.project_id, "percent_complete": 50,
                                                      "reported_on": date(2023, 6, 11), "quantity_done": None,
                                                      "problems": "雨季影响施工"})
    assert event.payload == {"project_id": "TR-2023-001", "department": "transport", "reported_on": "2023-06-11",
                             "percent_complete": 50, "quantity_done": "1.3", "problems": "雨季影响施工"}
    assert event.occurred_on == "2023-06-11"


def test_no_progress_after_completion():
    project = completed(started())
    assert refused_rule(lambda: progressed(project, 100, on=date(2023, 11, 1))) == "no_progress_after_completion"


def test_no_completion_before_the_project_started():
    assert refused_rule(lambda: completed(planned())) == "no_completion_before_start"


def test_no_completion_dated_before_the_start_date():
    project = started(on=date(2023, 4, 1))
    assert refused_rule(lambda: completed(project, on=date(2023, 3, 30))) == "no_completion_before_start"


def test_a_project_completes_once():
    project = completed(started())
    assert refused_rule(lambda: completed(project, on=date(2023, 11, 2))) == "complete_once"


def test_completion_after_the_deadline_is_late_and_on_the_deadline_is_not():
    project = started()  # township level, deadline 2023-11-30
    [on_time] = domain.decide_complete(project, {"project_id": project.project_id, "on": date(2023, 11, 30),
                                                 "quantity_done": Decimal("3.2")})
    [late] = domain.decide_complete(project, {"project_id": project.project_id, "on": date(2023, 12, 1),
                                              "quantity_done": Decimal("3.2")})
    assert (on_time.payload["late"], late.payload["late"]) == (False, True)
    assert late.payload == {"project_id": "TR-2023-001", "department": "transport", "on": "2023-12-01",
                            "quantity_done": "3.2", "deadline": "2023-11-30", "late": True}


def test_completion_without_quantity_records_the_planned_quantity():
    project = completed(started())
    assert project.quantity_done == Decimal("3.2") and project.percent_complete == 100


def test_no_acceptance_before_completion():
    project = started()
    assert refused_rule(lambda: domain.decide_accept(project, {"project_id": project.project_id,
                                                               "on": date(2023, 12, 1)})) \
        == "no_acceptance_before_completion"


def test_no_acceptance_dated_before_the_completion_date():
    project = completed(started(), on=date(2023, 10, 20))
    assert refused_rule(lambda: domain.decide_accept(project, {"project_id": project.project_id,
                                                               "on": date(2023, 10, 19)})) \
        == "no_acceptance_before_completion"


def test_acceptance_after_completion_then_not_twice():
    project = completed(started(), on=date(2023, 10, 20))
    project = fold(project, domain.decide_accept(project, {"project_id": project.project_id, "on": date(2023, 11, 5)}))
    assert project.status == "accepted"
    assert refused_rule(lambda: domain.decide_accept(project, {"project_id": project.project_id,
                                                               "on": date(2023, 11, 6)})) == "accept_once"


COMMANDS = {
    "start": (domain.decide_start, {"on": date(2023, 6, 1)}),
    "progress": (domain.decide_report_progress, {"reported_on": date(2023, 6, 1), "percent_complete": 50,
                                                 "quantity_done": None, "problems": ""}),
    "complete": (domain.decide_complete, {"on": date(2023, 10, 20), "quantity_done": None}),
    "accept": (domain.decide_accept, {"on": date(2023, 12, 1)}),
    "cancel": (domain.decide_cancel, {"on": date(2023, 6, 1), "reason": "重复立项"}),
    "allocate": (domain.decide_allocate, {"amount": Decimal("1000.00"), "source": "central", "on": date(2023, 6, 1)}),
    "disburse": (domain.decide_disburse, {"amount": Decimal("1.00"), "on": date(2023, 6, 1), "payee": "某公司"}),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_nothing_is_recorded_after_cancellation(name):
    project = cancelled(allocated(started(), "5000.00"), on=date(2023, 5, 1))
    decide, command = COMMANDS[name]
    with pytest.raises(RuleRefused) as refused:
        decide(project, {"project_id": project.project_id, **command})
    assert refused.value.details == {"rule": "nothing_after_cancel", "cancelled_on": "2023-05-01"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_unknown_project_is_not_found(name):
    decide, command = COMMANDS[name]
    with pytest.raises(NotFound):
        decide(None, {"project_id": "NO-SUCH", **command})


def test_a_planned_project_may_be_cancelled_but_a_completed_one_may_not():
    assert cancelled(planned()).status == "cancelled"
    assert refused_rule(lambda: cancelled(completed(started()), on=date(2023, 11, 1))) == "no_cancel_after_completion"


# --- funds --------------------------------------------------------------------------------------------

def test_allocation_and_disbursement_payloads_carry_department_plan_year_and_money_strings():
    project = allocated(planned(), "300000", source="integrated")
    [event] = disburse(project, "120000.5")
    assert project.allocations == ((date(2023, 3, 1), Decimal("300000")),)
    assert event.payload == {"project_id": "TR-2023-001", "department": "transport", "plan_year": 2023,
                             "amount": "120000.50", "on": "2023-06-30", "payee": "县路桥建设有限公司"}


def test_cumulative_disbursement_never_exceeds_allocation():
    project = allocated(allocated(planned(), "60000.00"), "40000.00", on=date(2023, 4, 1))  # 100,000 in all
    project = fold(project, disburse(project, "60000.00"))
    # 60,000 + 40,000.01 = 100,000.01 > 100,000 allocated
    with pytest.raises(RuleRefused) as refused:
        disburse(project, "40000.01")
    assert refused.value.details == {"rule": "disbursement_within_allocation", "on": "2023-06-30",
                                     "allocated": "100000.00", "disbursed": "100000.01", "requested": "40000.01"}
    project = fold(project, disburse(project, "40000.00"))
    assert project.disbursed == project.allocated == Decimal("100000.00")


def test_nothing_can_be_disbursed_without_an_allocation():
    assert refused_rule(lambda: disburse(planned(), "0.01")) == "disbursement_within_allocation"


def test_a_disbursement_dated_before_its_allocation_is_refused():
    project = allocated(planned(), "50000.00", on=date(2023, 7, 1))
    # By 30 June nothing was allocated yet, so paying then would disburse more than allocated.
    assert refused_rule(lambda: disburse(project, "10000.00", on=date(2023, 6, 30))) \
        == "disbursement_within_allocation"
    assert disburse(project, "10000.00", on=date(2023, 7, 1))[0].payload["amount"] == "10000.00"


# --- statistics ---------------------------------------------------------------------------------------

def facts(project_id, deadline, started_on=None, completed_on=None, accepted_on=None, cancelled_on=None):
    return ProjectFacts(project_id, deadline, started_on, completed_on, accepted_on, cancelled_on)


def test_status_on_a_date_follows_the_business_dates():
    project = facts("P", date(2023, 8, 31), date(2023, 4, 1), date(2023, 8, 20), date(2023, 9, 10))
    assert [domain.status_on(project, day) for day in
            (date(2023, 3, 31), date(2023, 4, 1), date(2023, 8, 20), date(2023, 9, 10))] == \
        ["planned", "started", "completed", "accepted"]


def test_overdue_means_past_deadline_and_not_completed_by_then():
    deadline = date(2023, 8, 31)
    running = facts("A", deadline, date(2023, 4, 1))
    finished_late = facts("B", deadline, date(2023, 4, 1), completed_on=date(2023, 9, 15))
    dropped = facts("C", deadline, cancelled_on=date(2023, 6, 1))
    assert not domain.is_overdue(running, deadline)  # on the deadline day itself it is still in time
    assert domain.is_overdue(running, date(2023, 9, 1))
    assert domain.is_overdue(finished_late, date(2023, 9, 14))
    assert not domain.is_overdue(finished_late, date(2023, 9, 15))
    assert not domain.is_overdue(dropped, date(2023, 12, 31))


def department_fixture():
    county, township = date(2023, 8, 31), date(2023, 11, 30)
    projects = [
        facts("A", county, date(2023, 3, 1), completed_on=date(2023, 8, 1), accepted_on=date(2023, 8, 20)),
        facts("B", county, date(2023, 3, 1), completed_on=date(2023, 9, 10)),  # late
        facts("C", county, date(2023, 4, 1)),  # overdue from 1 September
        facts("D", township, date(2023, 5, 1)),  # not due yet in October
        facts("E", township),  # still planned
        facts("F", county, cancelled_on=date(2023, 5, 1)),
    ]
    movements = [
        FundMovement("allocation", Decimal("1000000.00"), date(2023, 3, 1)),
        FundMovement("allocation", Decimal("200000.00"), date(2023, 10, 1)),
        FundMovement("disbursement", Decimal("600000.00"), date(2023, 6, 30)),
        FundMovement("disbursement", Decimal("330000.00"), date(2023, 9, 20)),
        FundMovement("disbursement", Decimal("200000.00"), date(2023, 10, 10)),
    ]
    return projects, movements


def test_department_statistics_counts_overdue_on_time_and_funds_by_the_as_of_date():
    projects, movements = department_fixture()
    stats = domain.department_statistics("transport", 2023, date(2023, 10, 15), projects, movements, RULES)
    assert stats["by_status"] == {"planned": 1, "started": 2, "completed": 1, "accepted": 1, "cancelled": 1}
    assert (stats["overdue"], stats["overdue_projects"]) == (1, ["C"])
    assert (stats["completed"], stats["completed_on_time"], stats["completed_late"]) == (2, 1, 1)
    # Due by 15 October: A, B, C (F was cancelled); only A was completed by its deadline: 1/3.
    assert (stats["due"], stats["due_completed_on_time"], stats["on_time_rate"]) == (3, 1, "0.3333")
    # By 15 October: allocated 1,200,000; disbursed 600,000 + 330,000 + 200,000 = 1,130,000; 0.9417.
    assert (stats["allocated"], stats["disbursed"], stats["disbursement_rate"]) == \
        ("1200000.00", "1130000.00", "0.9417")


def test_disbursement_target_is_measured_on_30_september_of_the_plan_year():
    projects, movements = department_fixture()
    stats = domain.department_statistics("transport", 2023, date(2023, 12, 31), projects, movements, RULES)
    # By 30 September: 930,000 disbursed of 1,000,000 allocated = 0.93 < 0.95, missed.
    assert stats["disbursement_target"] == {
        "target_rate": "0.9500", "target_date": "2023-09-30", "measured_on": "2023-09-30",
        "allocated": "1000000.00", "disbursed": "930000.00", "rate": "0.9300", "met": False}
    lenient = domain.department_statistics("transport", 2023, date(2023, 12, 31), projects, movements,
                                           Rules.from_dict({"disbursement_target_rate": "0.90"}))
    assert lenient["disbursement_target"]["met"] is True


def test_disbursement_target_before_30_september_is_measured_on_the_as_of_date():
    projects, movements = department_fixture()
    stats = domain.department_statistics("transport", 2023, date(2023, 7, 1), projects, movements, RULES)
    # By 1 July: 600,000 of 1,000,000 = 0.60.
    assert stats["disbursement_target"]["measured_on"] == "2023-07-01"
    assert stats["disbursement_target"]["rate"] == "0.6000"


def test_department_statistics_without_allocations_or_due_projects_have_no_rates():
    stats = domain.department_statistics("water", 2023, date(2023, 3, 1),
                                         [facts("W", date(2023, 11, 30))], [], RULES)
    assert (stats["on_time_rate"], stats["disbursement_rate"]) == (None, None)
    assert stats["disbursement_target"]["met"] is None


def test_statistics_from_evolved_projects_match_their_events():
    project = allocated(started(), "100000.00")
    project = fold(project, disburse(project, "96000.00", on=date(2023, 9, 1)))
    project = completed(project, on=date(2023, 12, 5))  # late: deadline 30 November
    stats = domain.department_statistics("transport", 2023, date(2023, 12, 31), [domain.facts_of(project)],
                                         domain.movements_of(project), RULES)
    assert stats["completed_late"] == 1
    assert stats["disbursement_target"]["rate"] == "0.9600" and stats["disbursement_target"]["met"] is True


def test_village_infrastructure_groups_roads_water_and_power():
    projects = [{"project_id": p, "category": c} for p, c in
                (("R1", "village_road"), ("R2", "bridge"), ("W1", "water_supply"), ("E1", "grid_upgrade"),
                 ("H1", "clinic"))]
    grouped = domain.village_infrastructure("V1", projects)
    assert {kind: [p["project_id"] for p in items] for kind, items in grouped.items() if kind != "village_id"} == \
        {"roads": ["R1", "R2"], "water": ["W1"], "power": ["E1"]}


# --- bulk import ---------------------------------------------------------------------------------------

def read_fixture(name, kind="projects"):
    return bulk_import.read_table(name, (FIXTURES / name).read_bytes(), kind, RULES)


def import_error(call):
    with pytest.raises(ValidationFailed) as failed:
        call()
    return failed.value.details


def test_a_good_projects_csv_becomes_one_plan_per_row():
    rows = read_fixture("projects_good.csv")
    plan = bulk_import.plan_import("projects", rows, {}, RULES, department="transport")
    assert [row["row"] for row in plan.rows] == [2, 3, 4]
    assert list(plan.streams) == ["TR-2023-001", "TR-2023-002", "TR-2023-003"]
    first, second, third = (plan.streams[p][0].payload for p in plan.streams)
    assert first["village_ids"] == ["V-CHANGLING", "V-SHANGWAN"]
    assert first["funding_sources"] == [{"source": "central", "amount": "600000.00"},
                                        {"source": "integrated", "amount": "360000.00"}]
    assert (first["deadline"], second["deadline"], third["deadline"]) == ("2023-11-30", "2023-08-31", "2023-10-15")
    assert third["village_ids"] == ["V-QINGSHAN", "V-SHANGWAN"]


def test_a_projects_csv_with_bad_rows_reports_every_bad_row_with_its_reasons():
    rows = read_fixture("projects_mixed.csv")
    details = import_error(lambda: bulk_import.plan_import("projects", rows, {}, RULES, department="transport"))
    reasons = {item["row"]: " | ".join(item["errors"]) for item in details["rows"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]  # only row 2 is good
    assert "category" in reasons[3]
    assert "budget" in reasons[4] and "two decimal" in reasons[4]
    assert "also on row 2" in reasons[5]
    assert "add up to 500000.00" in reasons[6]
    assert "department is water" in reasons[7]
    assert all(name in reasons[8] for name in ("title", "plan_year", "deadline"))
    assert (details["bad_rows"], details["total_rows"]) == (6, 7)


def test_reimporting_the_same_projects_changes_nothing_and_changed_content_is_a_bad_row():
    rows = read_fixture("projects_good.csv")
    first = bulk_import.plan_import("projects", rows, {}, RULES, department="transport")
    states = {p: fold(None, events) for p, events in first.streams.items()}
    again = bulk_import.plan_import("projects", rows, states, RULES, department="transport")
    assert again.streams == {p: [] for p in states}
    assert [row["events"] for row in again.rows] == [[], [], []]
    changed = [bulk_import.Row(rows[0].number, {**rows[0].values, "title": "改名"}), *rows[1:]]
    details = import_error(lambda: bulk_import.plan_import("projects", changed, states, RULES, "transport"))
    assert [item["row"] for item in details["rows"]] == [2]
    assert "title" in details["rows"][0]["errors"][0]


def started_projects(*codes, on=date(2023, 5, 1)):
    return {code: started(on=on, project_id=code) for code in codes}


def test_a_good_progress_csv_with_chinese_headers_and_percent_signs():
    rows = read_fixture("progress_good.csv", "progress")
    plan = bulk_import.plan_import("progress", rows, started_projects("TR-2023-001", "TR-2023-002"), RULES,
                                   "transport")
    percents = [event.payload["percent_complete"] for events in plan.streams.values() for event in events]
    assert percents == [30, 45, 20]
    assert plan.streams["TR-2023-001"][1].payload["problems"] == "雨季影响施工"


def test_a_progress_csv_with_bad_rows_reports_each_one_checked_in_file_order():
    rows = read_fixture("progress_mixed.csv", "progress")
    states = {**started_projects("TR-2023-001", "TR-2023-002"), "TR-2023-003": planned(project_id="TR-2023-003")}
    details = import_error(lambda: bulk_import.plan_import("progress", rows, states, RULES, "transport"))
    reasons = {item["row"]: " | ".join(item["errors"]) for item in details["rows"]}
    assert sorted(reasons) == [3, 5, 6, 7, 8]
    assert "cannot go back from 30 to 25" in reasons[3]  # row 2 in the same file said 30
    assert "row 2" in reasons[5]
    assert "no project NO-SUCH-1" in reasons[6]
    assert "has not started" in reasons[7]
    assert "percent_complete" in reasons[8]


def test_progress_for_another_departments_project_is_a_bad_row():
    states = {"W-1": started(project_id="W-1", department="water")}
    rows = [bulk_import.Row(2, {"project_id": "W-1", "reported_on": "2023-06-01", "percent_complete": "10"})]
    details = import_error(lambda: bulk_import.plan_import("progress", rows, states, RULES, "transport"))
    assert "belongs to water" in details["rows"][0]["errors"][0]


def xlsx_bytes(header, rows, percent_column=None):
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for values in rows:
        sheet.append(values)
    if percent_column is not None:
        for cell in sheet.iter_cols(min_col=percent_column, max_col=percent_column, min_row=2):
            for item in cell:
                item.number_format = "0%"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_an_xlsx_with_date_cells_numbers_and_percent_cells_is_read_as_typed_text():
    content = xlsx_bytes(["项目编号", "填报日期", "完成百分比", "完成数量", "存在问题"],
                         [["TR-2023-001", date(2023, 5, 10), 0.3, 0.9, None],
                          [2023002, date(2023, 5, 20), 0.45, 1.0, "材料到位延迟"]], percent_column=3)
    rows = bulk_import.read_table("进度.XLSX", content, "progress", RULES)
    assert [row.values for row in rows] == [
        {"project_id": "TR-2023-001", "reported_on": "2023-05-10", "percent_complete": "30",
         "quantity_done": "0.9", "problems": None},
        {"project_id": "2023002", "reported_on": "2023-05-20", "percent_complete": "45",
         "quantity_done": "1", "problems": "材料到位延迟"}]


def test_an_xlsx_projects_sheet_plans_like_the_csv():
    header = ["project_id", "title", "department", "category", "level", "township_id", "village_ids",
              "planned_quantity", "quantity_unit", "budget", "funding_county", "plan_year"]
    content = xlsx_bytes(header, [["PW-1", "电网改造", "power", "grid_upgrade", "township", "T1", "V1", 1, "units",
                                   250000.5, 250000.5, 2023.0]])
    plan = bulk_import.plan_import("projects", bulk_import.read_table("p.xlsx", content, "projects", RULES), {},
                                   RULES, "power")
    payload = plan.streams["PW-1"][0].payload
    assert (payload["budget"], payload["plan_year"], payload["deadline"]) == ("250000.50", 2023, "2023-11-30")


def test_a_gb18030_csv_from_chinese_excel_is_read():
    text = (FIXTURES / "progress_good.csv").read_text(encoding="utf-8")
    rows = bulk_import.read_table("p.csv", text.encode("gb18030"), "progress", RULES)
    assert rows[1].values["problems"] == "雨季影响施工"


def test_a_header_with_unknown_or_missing_columns_is_refused_as_a_whole():
    content = b"project_id,titel,category\nX,a,bridge\n"
    details = import_error(lambda: bulk_import.read_table("p.csv", content, "projects", RULES))
    assert any("'titel'" in problem for problem in details["file"])
    assert any(problem.startswith("missing columns: title") for problem in details["file"])


def test_a_value_beyond_the_header_columns_is_refused_rather_than_dropped():
    content = "项目编号,填报日期,完成百分比\nA,2023-05-01,10,多出来的\n".encode()
    details = import_error(lambda: bulk_import.read_table("p.csv", content, "progress", RULES))
    assert details["file"] == ["row 2 has a value under a column without a header"]


def test_only_csv_and_xlsx_files_are_read():
    details = import_error(lambda: bulk_import.read_table("p.xls", b"whatever", "projects", RULES))
    assert "neither .csv nor .xlsx" in details["file"][0]
    details = import_error(lambda: bulk_import.read_table("p.xlsx", b"not a zip", "projects", RULES))
    assert "XLSX" in details["file"][0]


def test_the_number_of_rows_per_import_comes_from_the_rulebook():
    content = "项目编号,填报日期,完成百分比\nA,2023-05-01,1\nB,2023-05-01,1\nC,2023-05-01,1\n".encode()
    details = import_error(lambda: bulk_import.read_table("p.csv", content, "progress",
                                                          Rules.from_dict({"import_max_rows": 2})))
    assert "3 rows" in details["file"][0]


def test_blank_rows_are_skipped_but_rows_keep_their_spreadsheet_numbers():
    content = "项目编号,填报日期,完成百分比\n,,\nA,2023-05-01,1\n".encode()
    [row] = bulk_import.read_table("p.csv", content, "progress", RULES)
    assert row.number == 3

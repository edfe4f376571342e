"""The projects service on real PostgreSQL and RabbitMQ: commands, imports, queries, relay, rebuild."""
import base64
import io
import uuid
from datetime import date
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue
from openpyxl import Workbook

from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.projects.service import ProjectsService
from tests import support

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
TRANSPORT = {"actor": {"id": "transport-clerk", "role": "department"}}


@pytest.fixture(scope="module")
def projects_db(infra):
    return support.fresh_database("projects")


@pytest.fixture
def projects(amqp_uri, projects_db):
    support.truncate_all(projects_db)
    config = support.service_config("projects", amqp_uri, projects_db)
    with support.running(ProjectsService, config) as container:
        yield container


@pytest.fixture
def rpc(amqp_uri, projects):
    with support.rpc_client(amqp_uri) as cluster:
        yield cluster.projects


def plan(project_id="TR-2023-001", **changes):
    body = {"project_id": project_id, "title": "长岭村通组公路硬化", "department": "transport",
            "category": "village_road", "level": "township", "township_id": "T1", "village_ids": ["V1"],
            "planned_quantity": "3.2", "quantity_unit": "km", "budget": "960000.00",
            "funding_sources": [{"source": "central", "amount": "600000.00"},
                                {"source": "integrated", "amount": "360000.00"}],
            "plan_year": 2023}
    body.update(changes)
    return body


def upload(filename, content, kind="projects", department="transport"):
    return {"filename": filename, "content_base64": base64.b64encode(content).decode(), "kind": kind,
            "department": department}


def fixture_upload(name, kind="projects"):
    return upload(name, (FIXTURES / name).read_bytes(), kind)


def bad_row_numbers(error):
    # nameko turns every non-string value inside exception details into a string on the way.
    return [int(row["row"]) for row in error.details["rows"]]


def test_a_plan_gets_its_default_deadline_and_the_department_code_is_idempotent(rpc):
    first = rpc.plan_project(plan(), TRANSPORT)
    assert (first["project_id"], first["deadline"], first["status"], first["events"]) == \
        ("TR-2023-001", "2023-11-30", "planned", ["project_planned"])
    again = rpc.plan_project(plan(village_ids=["V1"], planned_quantity="3.20"), TRANSPORT)
    assert again["events"] == []
    assert len(rpc.get_project("TR-2023-001")["history"]) == 1
    with pytest.raises(Conflict) as conflict:
        rpc.plan_project(plan(title="另一条路"), TRANSPORT)
    assert conflict.value.details["differences"] == {"title": {"recorded": "长岭村通组公路硬化", "given": "另一条路"}}


def test_a_plan_without_a_code_gets_a_generated_id(rpc):
    body = plan()
    del body["project_id"]
    created = rpc.plan_project(body, TRANSPORT)
    assert uuid.UUID(created["project_id"])
    assert rpc.get_project(created["project_id"])["title"] == "长岭村通组公路硬化"


def test_the_lifecycle_over_rpc_with_history_and_a_late_completion(rpc):
    rpc.plan_project(plan(level="county"), TRANSPORT)  # deadline 2023-08-31
    rpc.allocate_funds({"project_id": "TR-2023-001", "amount": "960000.00", "source": "central",
                        "on": "2023-03-01"}, TRANSPORT)
    rpc.start_project({"project_id": "TR-2023-001", "on": "2023-04-01"}, TRANSPORT)
    rpc.report_progress({"project_id": "TR-2023-001", "reported_on": "2023-06-10", "percent_complete": 40,
                         "quantity_done": "1.3", "problems": "雨季影响施工"}, TRANSPORT)
    rpc.disburse_funds({"project_id": "TR-2023-001", "amount": "500000.00", "on": "2023-06-30",
                        "payee": "县路桥建设有限公司"}, TRANSPORT)
    completed = rpc.complete_project({"project_id": "TR-2023-001", "on": "2023-09-05"}, TRANSPORT)
    accepted = rpc.accept_project({"project_id": "TR-2023-001", "on": "2023-09-25"}, TRANSPORT)
    assert (completed["late"], completed["quantity_done"], accepted["status"]) == (True, "3.2", "accepted")
    project = rpc.get_project("TR-2023-001")
    history = project.pop("history")
    accepted.pop("events")
    assert project == accepted  # the read model says what the command answered
    assert (project["allocated"], project["disbursed"], project["percent_complete"]) == ("960000.00", "500000.00", 100)
    assert [item["type"] for item in history] == [
        "project_planned", "funds_allocated", "project_started", "progress_reported", "funds_disbursed",
        "project_completed", "project_accepted"]
    assert history[5]["payload"] == {"project_id": "TR-2023-001", "department": "transport", "on": "2023-09-05",
                                     "quantity_done": "3.2", "deadline": "2023-08-31", "late": True}
    assert history[0]["actor"] == TRANSPORT["actor"]


def test_refusals_arrive_as_rule_refused_and_record_nothing(rpc):
    rpc.plan_project(plan(), TRANSPORT)
    with pytest.raises(RuleRefused) as refused:
        rpc.report_progress({"project_id": "TR-2023-001", "reported_on": "2023-06-10", "percent_complete": 10},
                            TRANSPORT)
    assert refused.value.details["rule"] == "no_progress_before_start"
    rpc.allocate_funds({"project_id": "TR-2023-001", "amount": "100.00", "source": "county", "on": "2023-03-01"})
    with pytest.raises(RuleRefused) as refused:
        rpc.disburse_funds({"project_id": "TR-2023-001", "amount": "100.01", "on": "2023-04-01", "payee": "某公司"})
    assert refused.value.details["rule"] == "disbursement_within_allocation"
    with pytest.raises(RuleRefused):
        rpc.accept_project({"project_id": "TR-2023-001", "on": "2023-04-01"})
    with pytest.raises(ValidationFailed) as invalid:
        rpc.disburse_funds({"project_id": "TR-2023-001", "amount": "1.001", "on": "2023-13-01", "payee": ""})
    assert set(invalid.value.details) == {"amount", "on", "payee"}
    with pytest.raises(NotFound):
        rpc.start_project({"project_id": "NO-SUCH", "on": "2023-04-01"})
    assert [item["type"] for item in rpc.get_project("TR-2023-001")["history"]] == \
        ["project_planned", "funds_allocated"]


def test_parallel_disbursements_never_overdraw_the_allocation(rpc):
    rpc.plan_project(plan(), TRANSPORT)
    rpc.allocate_funds({"project_id": "TR-2023-001", "amount": "100.00", "source": "county", "on": "2023-03-01"})
    calls = [rpc.disburse_funds.call_async({"project_id": "TR-2023-001", "amount": "20.00", "on": "2023-04-01",
                                            "payee": "某公司"}) for _ in range(8)]
    outcomes = []
    for call in calls:
        try:
            call.result()
            outcomes.append("paid")
        except RuleRefused:
            outcomes.append("refused")
    assert sorted(outcomes) == ["paid"] * 5 + ["refused"] * 3  # 5 × 20 = 100 allocated
    assert rpc.get_project("TR-2023-001")["disbursed"] == "100.00"


def seed_projects(rpc):
    rpc.plan_project(plan("TR-1", township_id="T1", village_ids=["V1", "V2"]))
    rpc.plan_project(plan("TR-2", township_id="T2", village_ids=["V3"], category="bridge", level="county"))
    rpc.plan_project(plan("TR-3", township_id="T1", village_ids=["V1"], plan_year=2022))
    rpc.plan_project(plan("WA-1", department="water", category="water_supply", village_ids=["V1"]))
    rpc.plan_project(plan("PW-1", department="power", category="grid_upgrade", village_ids=["V1"]))
    rpc.plan_project(plan("HE-1", department="health", category="clinic", village_ids=["V1"]))
    rpc.start_project({"project_id": "TR-1", "on": "2023-04-01"})
    rpc.start_project({"project_id": "WA-1", "on": "2023-04-01"})
    rpc.complete_project({"project_id": "WA-1", "on": "2023-10-01"})


def ids(result):
    return [item["project_id"] for item in result["items"]]


def test_projects_are_listed_by_department_status_year_township_and_village_page_by_page(rpc):
    seed_projects(rpc)
    assert ids(rpc.list_projects({"department": "transport"})) == ["TR-1", "TR-2", "TR-3"]
    assert ids(rpc.list_projects({"status": "started"})) == ["TR-1"]
    assert ids(rpc.list_projects({"plan_year": "2022"})) == ["TR-3"]
    assert ids(rpc.list_projects({"township_id": "T2"})) == ["TR-2"]
    assert ids(rpc.list_projects({"village_id": "V1", "department": "transport"})) == ["TR-1", "TR-3"]
    first = rpc.list_projects({}, 4)
    second = rpc.list_projects({}, 4, first["next_cursor"])
    assert ids(first) + ids(second) == ["HE-1", "PW-1", "TR-1", "TR-2", "TR-3", "WA-1"]
    assert second["next_cursor"] is None
    with pytest.raises(ValidationFailed):
        rpc.list_projects({"status": "finished"})


def test_village_infrastructure_lists_roads_water_and_power_with_their_state(rpc):
    seed_projects(rpc)
    village = rpc.village_infrastructure("V1")
    assert [(p["project_id"], p["status"]) for p in village["roads"]] == [("TR-1", "started"), ("TR-3", "planned")]
    assert [(p["project_id"], p["status"], p["late"]) for p in village["water"]] == [("WA-1", "completed", False)]
    assert [p["project_id"] for p in village["power"]] == ["PW-1"]
    assert "HE-1" not in str(village)  # a clinic is not roads, water or power


def test_department_statistics_by_a_date(rpc):
    rpc.plan_project(plan("TR-1", level="county"))  # deadline 31 August
    rpc.plan_project(plan("TR-2", level="county"))
    rpc.plan_project(plan("TR-3"))  # township level: 30 November
    for project_id in ("TR-1", "TR-2", "TR-3"):
        rpc.start_project({"project_id": project_id, "on": "2023-04-01"})
    rpc.complete_project({"project_id": "TR-1", "on": "2023-08-20"})
    rpc.allocate_funds({"project_id": "TR-1", "amount": "600000.00", "source": "central", "on": "2023-03-01"})
    rpc.allocate_funds({"project_id": "TR-2", "amount": "400000.00", "source": "central", "on": "2023-03-01"})
    rpc.disburse_funds({"project_id": "TR-1", "amount": "600000.00", "on": "2023-09-01", "payee": "甲公司"})
    rpc.disburse_funds({"project_id": "TR-2", "amount": "300000.00", "on": "2023-09-29", "payee": "乙公司"})
    rpc.disburse_funds({"project_id": "TR-2", "amount": "100000.00", "on": "2023-10-08", "payee": "乙公司"})
    stats = rpc.department_statistics("transport", 2023, "2023-10-10")
    assert stats["by_status"] == {"planned": 0, "started": 2, "completed": 1, "accepted": 0, "cancelled": 0}
    assert (stats["overdue"], stats["overdue_projects"]) == (1, ["TR-2"])
    assert (stats["due"], stats["due_completed_on_time"], stats["on_time_rate"]) == (2, 1, "0.5000")
    assert (stats["allocated"], stats["disbursed"], stats["disbursement_rate"]) == ("1000000.00", "1000000.00",
                                                                                    "1.0000")
    # By 30 September 900,000 of 1,000,000 was disbursed: 0.90, short of 0.95.
    target = stats["disbursement_target"]
    assert (target["measured_on"], target["rate"], target["met"]) == ("2023-09-30", "0.9000", False)
    with pytest.raises(ValidationFailed):
        rpc.department_statistics("transport", 2023, "10/10/2023")


def test_an_import_with_good_and_bad_rows_applies_nothing_and_reports_every_bad_row(rpc):
    with pytest.raises(ValidationFailed) as failed:
        rpc.import_projects(fixture_upload("projects_mixed.csv"), TRANSPORT)
    assert bad_row_numbers(failed.value) == [3, 4, 5, 6, 7, 8]
    assert all(row["errors"] for row in failed.value.details["rows"])
    assert rpc.list_projects({})["items"] == []
    assert [e for e in rpc.events_since(0) if e["stream_type"] != "rulebook"] == []


def test_an_all_good_import_applies_every_row_and_again_changes_nothing(rpc):
    result = rpc.import_projects(fixture_upload("projects_good.csv"), TRANSPORT)
    assert (result["applied"], result["events"], [row["row"] for row in result["rows"]]) == (3, 3, [2, 3, 4])
    assert ids(rpc.list_projects({"department": "transport"})) == ["TR-2023-001", "TR-2023-002", "TR-2023-003"]
    assert rpc.get_project("TR-2023-002")["deadline"] == "2023-08-31"
    assert rpc.get_project("TR-2023-001")["history"][0]["actor"] == TRANSPORT["actor"]
    again = rpc.import_projects(fixture_upload("projects_good.csv"), TRANSPORT)
    assert (again["applied"], again["unchanged"], again["events"]) == (3, 3, 0)


def test_progress_imports_are_all_or_nothing_too(rpc):
    rpc.import_projects(fixture_upload("projects_good.csv"), TRANSPORT)
    for project_id in ("TR-2023-001", "TR-2023-002"):
        rpc.start_project({"project_id": project_id, "on": "2023-05-01"})
    with pytest.raises(ValidationFailed) as failed:
        rpc.import_projects(fixture_upload("progress_mixed.csv", "progress"), TRANSPORT)
    assert bad_row_numbers(failed.value) == [3, 5, 6, 7, 8]
    assert rpc.get_project("TR-2023-001")["percent_complete"] == 0
    result = rpc.import_projects(fixture_upload("progress_good.csv", "progress"), TRANSPORT)
    assert (result["applied"], result["events"]) == (3, 3)
    project = rpc.get_project("TR-2023-001")
    assert (project["percent_complete"], project["quantity_done"], project["problems"]) == (45, "1.4", "雨季影响施工")


def test_an_xlsx_import_and_a_broken_upload(rpc):
    book = Workbook()
    book.active.append(["项目编号", "项目名称", "类别", "级别", "乡镇编号", "村编号", "计划数量", "单位", "预算",
                        "中央资金", "计划年度", "完成期限"])
    book.active.append(["PW-2023-01", "农网改造", "grid_upgrade", "township", "T1", "V1 V2", 1, "units", 250000,
                        250000, 2023, date(2023, 10, 31)])
    buffer = io.BytesIO()
    book.save(buffer)
    result = rpc.import_projects(upload("电力项目.xlsx", buffer.getvalue(), department="power"))
    assert result["applied"] == 1
    project = rpc.get_project("PW-2023-01")
    assert (project["department"], project["village_ids"], project["deadline"]) == ("power", ["V1", "V2"],
                                                                                   "2023-10-31")
    with pytest.raises(ValidationFailed) as failed:
        rpc.import_projects({"filename": "x.csv", "content_base64": "@@@", "kind": "projects"})
    assert "content_base64" in failed.value.details


def bind_queue(amqp_uri):
    exchange = Exchange("projects.events", type="topic", durable=True)
    queue = Queue(f"projects-test-{uuid.uuid4().hex[:8]}", exchange=exchange, routing_key="#", durable=True,
                  auto_delete=True)
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    return queue


def test_events_reach_the_bus_with_the_catalogue_payloads(amqp_uri, rpc):
    queue = bind_queue(amqp_uri)
    rpc.plan_project(plan())
    rpc.allocate_funds({"project_id": "TR-2023-001", "amount": "1000.00", "source": "county", "on": "2023-03-01"})
    received = []
    with Connection(amqp_uri) as conn, conn.SimpleQueue(queue) as simple:
        while len(received) < 2:
            message = simple.get(timeout=20)
            message.ack()
            if message.payload["stream_type"] != "rulebook":  # the section's defaults, put on record at start
                received.append((message.delivery_info["routing_key"], message.payload))
    assert [key for key, _ in received] == ["project_planned", "funds_allocated"]
    assert received[1][1]["payload"] == {"project_id": "TR-2023-001", "department": "transport", "plan_year": 2023,
                                         "amount": "1000.00", "source": "county", "on": "2023-03-01"}


def test_read_models_rebuild_to_the_same_answers(rpc):
    seed_projects(rpc)
    rpc.allocate_funds({"project_id": "TR-1", "amount": "1000.00", "source": "county", "on": "2023-03-01"})
    rpc.disburse_funds({"project_id": "TR-1", "amount": "400.00", "on": "2023-04-01", "payee": "某公司"})
    before = (rpc.list_projects({}), rpc.village_infrastructure("V1"),
              rpc.department_statistics("transport", 2023, "2023-12-31"))
    assert rpc.rebuild_read_models()["events_replayed"] == len(rpc.events_since(0))
    after = (rpc.list_projects({}), rpc.village_infrastructure("V1"),
             rpc.department_statistics("transport", 2023, "2023-12-31"))
    assert after == before

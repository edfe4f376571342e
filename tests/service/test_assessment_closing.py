"""Closing a month (月度考核定格) on real PostgreSQL and RabbitMQ, fed by the real services:
the results freeze, events dated into the month afterwards are listed as late corrections and
change nothing until a re-opening with a reason, a rebuild gives the same closed results, and
the closed month gives the pay sheet (JSON, CSV, XLSX)."""
import base64
import csv
import io

import pytest
from openpyxl import load_workbook

from services.assessment.service import AssessmentService
from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from tests import support
from tests.service.test_assessment_service import ADMIN, SOURCES, seed_county, visits_counted

FEBRUARY_LATER = ("2023-02", "2023-12-31")  # asked long after the closing: still the frozen result


@pytest.fixture(scope="module")
def databases(infra):
    return {name: support.fresh_database(name, f"assessment_close_{name}")
            for name in ("registry", "assistance", "projects", "credit", "supervision", "assessment")}


@pytest.fixture
def county(amqp_uri, databases):
    with support.running_services(amqp_uri, databases, *SOURCES, AssessmentService) as rpc:
        seed_county(rpc)
        support.wait_until(visits_counted(rpc, 2, 3), message="catch-up")
        yield rpc


def test_a_closed_month_is_frozen_until_reopened_and_late_events_are_listed(county):
    rpc = county
    # February, as of 5 March: C1 visited on 8 February → visit_compliance 1/1 × 50; no exam was
    # held in February, nothing else applies → 100.00, excellent, 850 yuan.
    closed = rpc.assessment.close_month({"month": "2023-02", "on": "2023-03-05", "note": "二月定格"}, ADMIN)
    assert closed["status"] == "closed" and closed["closed_on"] == "2023-03-05"
    assert closed["summary"]["cadre"] == {"subjects": 1, "grades": {"excellent": 1}}
    assert closed["summary"]["pay"]["performance_pay"] == "850.00"
    frozen = rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER)
    assert frozen["score"] == 100.0 and frozen["pay"]["monthly_performance_pay"] == "850.00"
    assert frozen["period_status"]["status"] == "closed" and frozen["period_status"]["closed_on"] == "2023-03-05"
    assert frozen["as_of"] == "2023-03-05"
    ranking = rpc.assessment.rankings("cadre", *FEBRUARY_LATER)
    assert ranking["period_status"]["status"] == "closed" and ranking["items"][0]["score"] == 100.0

    # Late: an exam dated 15 February (C1 scored 40 of 100) and the county's 差 of 20 February.
    # Either would change February (policy_exam would apply: 100 × (50 + 8) / 70 = 82.86; the
    # 差 would veto and withhold the month's pay), but February is closed.
    rpc.assistance.record_exam_score({"cadre_id": "C1", "exam_id": "E-2023-02", "score": 40,
                                      "taken_on": "2023-02-15"}, ADMIN)
    rpc.assessment.record_rating({"subject_type": "cadre", "subject_id": "C1", "rating": "poor",
                                  "source": "county", "rated_on": "2023-02-20"}, ADMIN)

    def exam_arrived():
        card = rpc.assessment.subject_score("cadre", "C1", "2023-Q1", "2023-04-10")
        return "policy_exam" in [i["name"] for i in card["indicators"]]
    support.wait_until(exam_arrived, message="the late exam reaches the assessment")
    quarter = rpc.assessment.subject_score("cadre", "C1", "2023-Q1", "2023-04-10")
    assert quarter["period_status"] == {"status": "open", "closed_on": None, "closed_months": ["2023-02"]}
    assert quarter["vetoed"]  # the quarter is open: it shows the late facts

    still = rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER)
    assert still == frozen, "a closed month never changes"
    report = rpc.assessment.period_report("2023-02")
    assert report["status"] == "closed" and report["late_correction_count"] == 2
    assert [(c["event"], c["dated"], c["source"]) for c in report["late_corrections"]] == [
        ("exam_scored", "2023-02-15", "assistance"), ("rating_recorded", "2023-02-20", "assessment")]
    assert all(c["recorded_at"] for c in report["late_corrections"])
    # A month that is not closed has none; January is open and shows the 差-free live score.
    assert rpc.assessment.period_report("2023-01")["late_corrections"] == []
    listing = rpc.assessment.list_periods("2023")["items"]
    assert [(m["month"], m["status"], m["late_correction_count"]) for m in listing[:3]] == [
        ("2023-01", "open", 0), ("2023-02", "closed", 2), ("2023-03", "open", 0)]

    # Rebuilding the read models from the events gives the same closed results and corrections.
    rpc.assessment.rebuild_read_models()
    assert rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER) == frozen
    assert rpc.assessment.period_report("2023-02")["late_corrections"] == report["late_corrections"]

    # Closing twice, too early, or in the future is refused; re-opening needs a reason.
    with pytest.raises(Conflict):
        rpc.assessment.close_month({"month": "2023-02", "on": "2023-03-06"}, ADMIN)
    with pytest.raises(RuleRefused):
        rpc.assessment.close_month({"month": "2023-03", "on": "2023-03-31"}, ADMIN)
    with pytest.raises(RuleRefused):
        rpc.assessment.close_month({"month": "2023-03", "on": "2999-01-01"}, ADMIN)
    with pytest.raises(ValidationFailed):
        rpc.assessment.reopen_month({"month": "2023-02", "on": "2023-04-01"}, ADMIN)
    with pytest.raises(RuleRefused):
        rpc.assessment.reopen_month({"month": "2023-02", "on": "2023-04-01", "reason": "   "}, ADMIN)
    with pytest.raises(Conflict):
        rpc.assessment.reopen_month({"month": "2023-03", "on": "2023-04-01", "reason": "x"}, ADMIN)

    # Re-opened (an event, with its reason), February is live again: the late facts count.
    reopened = rpc.assessment.reopen_month({"month": "2023-02", "on": "2023-04-01",
                                            "reason": "县考核办通报的差评与补考成绩"}, ADMIN)
    assert reopened["status"] == "open" and reopened["history"][-1]["reason"] == "县考核办通报的差评与补考成绩"
    live = rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER)
    assert live["period_status"]["status"] == "open"
    # 100 × (50 + 40/100 × 20 + 0 of 10 for the 差 rating) / 80 = 72.50, vetoed, pay withheld
    assert live["score"] == 72.5 and live["vetoed"] and live["pay"]["monthly_performance_pay"] == "0.00"
    with pytest.raises(RuleRefused):
        rpc.assessment.pay_sheet("2023-02")  # an open month has no pay sheet

    again = rpc.assessment.close_month({"month": "2023-02", "on": "2023-04-02", "note": "重新定格"}, ADMIN)
    assert again["summary"]["pay"] == {"cadres": 1, "performance_pay": "0.00", "rewards": "0.00",
                                       "withheld": "750.00", "total": "0.00"}
    assert rpc.assessment.period_report("2023-02")["late_corrections"] == []
    assert [h["event"] for h in rpc.assessment.period_report("2023-02")["history"]] == [
        "month_closed", "month_reopened", "month_closed"]


def test_the_pay_sheet_of_a_closed_month(county):
    rpc = county
    rpc.assessment.record_rating({"subject_type": "cadre", "subject_id": "C1", "rating": "good",
                                  "source": "city", "rated_on": "2023-01-20"}, ADMIN)
    rpc.assessment.close_month({"month": "2023-01", "on": "2023-02-03"}, ADMIN)
    sheet = rpc.assessment.pay_sheet("2023-01")
    # January: visits 1/1 → 50, the city's 好 → supervision 10/10: 100.00, excellent → 850,
    # plus the 1,000 reward for the external 好 → 1,850.
    assert sheet["rows"] == [{
        "cadre_id": "C1", "cadre": "李四", "unit_id": "U1", "unit": "县交通运输局", "score": 100.0,
        "grade": "excellent", "vetoed": False, "veto_reasons": [], "performance_pay": "850.00",
        "rewards": "1000.00", "withheld": "0.00", "total": "1850.00", "restrictions": [],
        "restrictions_until": None}]
    assert sheet["totals"]["total"] == "1850.00"
    csv_file = rpc.assessment.pay_sheet("2023-01", "csv")
    assert csv_file["filename"] == "pay-sheet-2023-01.csv"
    rows = list(csv.reader(io.StringIO(base64.b64decode(csv_file["content_base64"]).decode("utf-8-sig"))))
    assert rows[1][:8] == ["C1", "李四", "U1", "县交通运输局", "100.0", "优秀", "", "850.00"]
    assert rows[-1][0].startswith("合计")
    book = load_workbook(io.BytesIO(base64.b64decode(rpc.assessment.pay_sheet("2023-01", "xlsx")["content_base64"])))
    sheet_rows = list(book.active.iter_rows(values_only=True))
    assert sheet_rows[2][1] == "李四" and sheet_rows[2][7] == 850.0 and sheet_rows[2][8] == 1000.0
    with pytest.raises(ValidationFailed):
        rpc.assessment.pay_sheet("2023-13")
    with pytest.raises(NotFound):
        rpc.assessment.subject_score("cadre", "nobody", "2023-01", "2023-12-31")


def test_a_read_right_after_the_assessments_own_command_sees_it(county, monkeypatch):
    """Reads share one look at the database for READ_RECHECK_SECONDS, but a write by the assessment
    itself starts a new look: with the window stretched to a minute, a month closed or re-opened
    just now is still what the very next read says."""
    from services.assessment import service

    monkeypatch.setattr(service, "READ_RECHECK_SECONDS", 60)
    rpc = county
    assert rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER)["period_status"]["status"] == "open"
    rpc.assessment.close_month({"month": "2023-02", "on": "2023-03-05"}, ADMIN)
    assert rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER)["period_status"]["status"] == "closed"
    rpc.assessment.reopen_month({"month": "2023-02", "on": "2023-03-06", "reason": "补录走访"}, ADMIN)
    assert rpc.assessment.subject_score("cadre", "C1", *FEBRUARY_LATER)["period_status"]["status"] == "open"

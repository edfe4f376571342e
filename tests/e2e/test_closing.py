"""Closing a month (月度考核定格) and its pay sheet through the gateway over HTTP.

Other e2e modules score 2023; this one closes November 2022, so its frozen results change
nothing they ask for."""
import csv
import io
import uuid

import pytest
from openpyxl import load_workbook

from tests import support

MONTH = "2022-11"
LATER = {"period": MONTH, "as_of": "2023-06-30"}


@pytest.fixture(scope="module")
def november(admin):
    """A cadre paired since 1 October 2022 who visited on 10 November: November is 100.00."""
    suffix = uuid.uuid4().hex[:6]
    ids = {"t": f"TC-{suffix}", "v": f"VC-{suffix}", "u": f"UC-{suffix}", "c": f"CC-{suffix}"}
    assert admin.post("/api/v1/townships", {"township_id": ids["t"], "name": "定格乡"}).status_code == 201
    assert admin.post("/api/v1/villages", {"village_id": ids["v"], "township_id": ids["t"], "name": "定格村",
                                           "poor_village": True}).status_code == 201
    response = admin.post("/api/v1/households", {"household_no": f"HC-{suffix}", "village_id": ids["v"],
                                                 "head_name": "赵六", "poverty_causes": ["illness"],
                                                 "registered_on": "2022-09-01"})
    assert response.status_code == 201, response.text
    ids["h"] = response.json()["household_id"]
    assert admin.post("/api/v1/units", {"unit_id": ids["u"], "name": "定格局", "department": "water",
                                        "parent_unit_id": None}).status_code == 201
    assert admin.post("/api/v1/cadres", {"cadre_id": ids["c"], "unit_id": ids["u"], "name": "钱七", "rank": "staff",
                                         "deputy_section_or_above": False}).status_code == 201
    response = admin.post("/api/v1/pairings", {"cadre_id": ids["c"], "household_id": ids["h"], "from": "2022-10-01"})
    assert response.status_code == 201, response.text
    response = admin.post("/api/v1/visits", {"cadre_id": ids["c"], "household_id": ids["h"], "visited_on": "2022-11-10",
                                             "measures": ["产业帮扶"], "outcome": "", "changes": "",
                                             "policy_explained": True})
    assert response.status_code == 201, response.text

    def scored():
        card = admin.get(f"/api/v1/scores/cadre/{ids['c']}", **LATER)
        return card.status_code == 200 and card.json()["score"] == 100.0
    support.wait_until(scored, 60, message="the November visit reaches the assessment")
    return ids


def test_closing_a_month_freezes_it_and_gives_the_pay_sheet(november, admin, user_factory):
    ids = november
    office = user_factory("leading_group")
    path = f"/api/v1/periods/{MONTH}"
    assert office.get(path).json()["status"] == "open"
    assert user_factory("unit", unit_id=ids["u"]).post(f"{path}/close", {"on": "2022-12-05"}).status_code == 403
    bad = office.post("/api/v1/periods/2022-13/close", {"on": "2022-12-05"})
    assert bad.status_code == 400 and "month" in bad.json()["error"]["details"]
    early = office.post(f"{path}/close", {"on": "2022-11-30"})
    assert early.status_code == 422 and early.json()["error"]["details"]["rule"] == "month_complete"
    assert office.get(f"{path}/pay-sheet").status_code == 422  # not closed: no pay sheet yet

    closed = office.post(f"{path}/close", {"on": "2022-12-05", "note": "十一月定格"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["summary"]["cadre"]["subjects"] >= 1
    assert office.post(f"{path}/close", {"on": "2022-12-06"}).status_code == 409

    card = office.get(f"/api/v1/scores/cadre/{ids['c']}", **LATER).json()
    assert card["period_status"]["status"] == "closed" and card["period_status"]["closed_on"] == "2022-12-05"
    assert card["score"] == 100.0 and card["pay"]["monthly_performance_pay"] == "850.00"
    ranking = office.get("/api/v1/scores/cadre", **LATER).json()
    assert ranking["period_status"]["status"] == "closed" and ranking["as_of"] == "2022-12-05"

    # The county's 差 dated 20 November, recorded after the closing: listed, not applied.
    late = office.post("/api/v1/ratings", {"subject_type": "cadre", "subject_id": ids["c"], "rating": "poor",
                                           "source": "county", "rated_on": "2022-11-20"})
    assert late.status_code == 201, late.text
    assert office.get(f"/api/v1/scores/cadre/{ids['c']}", **LATER).json() == card
    report = office.get(path).json()
    assert [(c["event"], c["dated"], c["source"]) for c in report["late_corrections"]] == [
        ("rating_recorded", "2022-11-20", "assessment")]
    months = office.get("/api/v1/periods", year=2022).json()["items"]
    assert months[10] == {**months[10], "month": MONTH, "status": "closed", "late_correction_count": 1}

    sheet = office.get(f"{path}/pay-sheet").json()
    mine = next(row for row in sheet["rows"] if row["cadre_id"] == ids["c"])
    assert (mine["cadre"], mine["unit"], mine["grade"], mine["performance_pay"], mine["withheld"]) == (
        "钱七", "定格局", "excellent", "850.00", "0.00")
    csv_file = office.get(f"{path}/pay-sheet", format="csv")
    assert csv_file.status_code == 200 and csv_file.headers["Content-Type"].startswith("text/csv")
    assert 'filename="pay-sheet-2022-11.csv"' in csv_file.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    assert [ids["c"], "钱七", ids["u"], "定格局", "100.0", "优秀"] in [row[:6] for row in rows]
    xlsx = office.get(f"{path}/pay-sheet", format="xlsx")
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["Content-Type"]
    values = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert any(row[0] == ids["c"] and row[7] == 850.0 for row in values)
    assert user_factory("cadre", cadre_id=ids["c"]).get(f"{path}/pay-sheet").status_code == 403

    # Re-opening needs a reason; then the late 差 counts: vetoed, November's pay withheld.
    missing = office.post(f"{path}/reopen", {"on": "2022-12-20"})
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["details"]
    reopened = office.post(f"{path}/reopen", {"on": "2022-12-20", "reason": "县里补报的差评"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    live = office.get(f"/api/v1/scores/cadre/{ids['c']}", **LATER).json()
    assert live["period_status"]["status"] == "open"
    assert live["vetoed"] and live["pay"]["monthly_performance_pay"] == "0.00"
    assert office.post(f"{path}/close", {"on": "2022-12-21"}).status_code == 200
    assert office.get(path).json()["late_corrections"] == []

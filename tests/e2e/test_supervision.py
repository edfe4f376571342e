"""Supervision end to end over HTTP: the leading group runs a campaign and verifies problems, each
unit reports for itself, a township sees its own; and a late report and an overdue problem
lower the unit's score in the assessment, with the report and the problem as evidence."""
import uuid

import pytest

from tests.support import wait_until


@pytest.fixture(scope="module")
def sprint(admin, user_factory):
    """Units U1, U2 (transport) with their heads; township T1; a campaign in May–June 2023 with
    one action for U1, U2 and T1; U1's W19 report late, W20 missing; U2 always on time; a problem
    of U1 overdue and one of U2 verified closed on time."""
    s = uuid.uuid4().hex[:6]
    ids = {k: f"{k.upper()}-{s}" for k in ("t1", "t2", "u1", "u2", "h1", "h2", "staff1", "camp")}
    for t in ("t1", "t2"):
        assert admin.post("/api/v1/townships", {"township_id": ids[t], "name": f"镇{t}"}).status_code == 201
    for u in ("u1", "u2"):
        response = admin.post("/api/v1/units", {"unit_id": ids[u], "name": f"单位{u}", "department": "transport",
                                                "parent_unit_id": None})
        assert response.status_code == 201, response.text
    for c, u, rank in (("h1", "u1", "head"), ("h2", "u2", "head"), ("staff1", "u1", "staff")):
        response = admin.post("/api/v1/cadres", {"cadre_id": ids[c], "unit_id": ids[u], "name": "张明", "rank": rank,
                                                 "deputy_section_or_above": rank == "head"})
        assert response.status_code == 201, response.text
    leading = user_factory("leading_group")
    response = leading.post("/api/v1/campaigns", {
        "campaign_id": ids["camp"], "name": "百日冲刺", "starts_on": "2023-05-01", "ends_on": "2023-06-30",
        "phases": [{"name": "决战决胜", "from": "2023-05-01", "until": "2023-06-20"},
                   {"name": "任务清零", "from": "2023-06-21", "until": "2023-06-30"}]})
    assert response.status_code == 201, response.text
    response = leading.post(f"/api/v1/campaigns/{ids['camp']}/actions", {
        "action_id": "a19", "name": "村组道路畅通行动", "lead": "副县长",
        "responsible_units": [ids["u1"], ids["u2"], "all_townships"], "townships": [ids["t1"]],
        "targets": [{"target_id": "roads", "name": "通组路硬化", "unit_of_measure": "km", "quantity": "30",
                     "by_township": {}}],
        "milestones": [{"what": "完成一半", "due_on": "2023-05-31", "target_id": "roads", "quantity": "15"}]})
    assert response.status_code == 201, response.text
    return ids


def report(client, ids, unit, week, at, progress, signer=None):
    return client.post(f"/api/v1/campaigns/{ids['camp']}/reports", {
        "unit_id": ids[unit], "week": week, "signed_off_by": ids[signer or unit.replace("u", "h")],
        "reported_at": at, "items": [{"action_id": "a19", "target_id": "roads", "progress": progress}]})


def test_each_unit_reports_for_itself_signed_by_its_head(sprint, user_factory, admin):
    ids = sprint
    unit1, unit2 = user_factory("unit", unit_id=ids["u1"]), user_factory("unit", unit_id=ids["u2"])
    station = user_factory("township", township_id=ids["t1"])
    leading = user_factory("leading_group")
    assert report(unit2, ids, "u1", "2023-W18", "2023-05-05T09:00:00", "2").status_code == 403
    assert report(leading, ids, "u1", "2023-W18", "2023-05-05T09:00:00", "2").status_code == 403
    unsigned = report(unit1, ids, "u1", "2023-W18", "2023-05-05T09:00:00", "2", signer="staff1")
    assert unsigned.status_code == 422 and unsigned.json()["error"]["details"]["rule"] == "signed_off_by_head"
    other_head = report(unit1, ids, "u1", "2023-W18", "2023-05-05T09:00:00", "2", signer="h2")
    assert other_head.status_code == 422
    on_time = report(unit1, ids, "u1", "2023-W18", "2023-05-05T11:59:00", "2")
    assert on_time.status_code == 201, on_time.text
    assert on_time.json()["on_time"] is True
    late = report(unit1, ids, "u1", "2023-W19", "2023-05-12T12:01:00", "6")
    assert late.status_code == 201 and late.json()["late"] is True
    for week, day, progress in (("2023-W18", "05-04", "3"), ("2023-W19", "05-11", "5"), ("2023-W20", "05-19", "8"),
                                ("2023-W21", "05-26", "9")):
        assert report(unit2, ids, "u2", week, f"2023-{day}T10:00:00", progress).status_code == 201
    # a township's head need not be a registered cadre
    township = station.post(f"/api/v1/campaigns/{ids['camp']}/reports", {
        "unit_id": ids["t1"], "week": "2023-W18", "signed_off_by": "镇长", "reported_at": "2023-05-05T10:00:00",
        "items": [{"action_id": "a19", "target_id": "roads", "progress": "0"}]})
    assert township.status_code == 201, township.text
    assert user_factory("township", township_id=ids["t2"]).post(
        f"/api/v1/campaigns/{ids['camp']}/reports", {
            "unit_id": ids["t1"], "week": "2023-W19", "signed_off_by": "镇长", "reported_at": "2023-05-12T10:00:00",
            "items": [{"action_id": "a19", "target_id": "roads", "progress": "0"}]}).status_code == 403

    view = leading.get(f"/api/v1/campaigns/{ids['camp']}", as_of="2023-05-31").json()
    target = view["actions"][0]["targets"][0]
    assert (target["quantity"], target["done"]) == ("30", "15")  # U1 6 + U2 9 + T1 0
    assert view["actions"][0]["milestones"][0]["status"] == "met"
    units = {u["unit_id"]: u for u in view["reports"]["units"]}
    assert [late["week"] for late in units[ids["u1"]]["late"]] == ["2023-W19"]
    assert units[ids["u1"]]["missing"] == ["2023-W20", "2023-W21"]
    assert units[ids["u2"]]["on_time"] == 4 and not units[ids["u2"]]["late"]
    own = unit1.get(f"/api/v1/campaigns/{ids['camp']}", as_of="2023-05-31").json()
    assert [u["unit_id"] for u in own["reports"]["units"]] == [ids["u1"]]
    assert user_factory("cadre", cadre_id=ids["h1"]).get(f"/api/v1/campaigns/{ids['camp']}").status_code == 403


def test_the_ledger_unit_measures_leading_group_verifies(sprint, user_factory):
    ids = sprint
    unit1, unit2 = user_factory("unit", unit_id=ids["u1"]), user_factory("unit", unit_id=ids["u2"])
    leading, inspector = user_factory("leading_group"), user_factory("inspector")
    station1, station2 = (user_factory("township", township_id=ids["t1"]),
                          user_factory("township", township_id=ids["t2"]))
    assert unit1.post("/api/v1/problems", {"source": "supervision", "found_on": "2023-05-02", "description": "x",
                                           "unit_id": ids["u1"], "deadline": "2023-05-20"}).status_code == 403
    overdue = leading.post("/api/v1/problems", {"source": "supervision", "found_on": "2023-05-02",
                                                "description": "通组路台账不全", "unit_id": ids["u1"],
                                                "township_id": ids["t1"], "deadline": "2023-05-20"})
    assert overdue.status_code == 201, overdue.text
    fixed = inspector.post("/api/v1/problems", {"source": "spot_check", "found_on": "2023-05-03",
                                                "description": "路面破损未修复", "unit_id": ids["u2"],
                                                "deadline": "2023-05-25", "reference": "spot check 2023-05-03"})
    assert fixed.status_code == 201, fixed.text
    overdue_id, fixed_id = overdue.json()["problem_id"], fixed.json()["problem_id"]
    assert unit1.post(f"/api/v1/problems/{fixed_id}/measures", {"on": "2023-05-04", "measures": "x"}).status_code == 403
    assert unit2.post(f"/api/v1/problems/{fixed_id}/measures", {"on": "2023-05-10",
                                                                "measures": "已修复路面"}).status_code == 201
    assert unit2.post(f"/api/v1/problems/{fixed_id}/closure-request", {"on": "2023-05-11"}).status_code == 200
    assert unit2.post(f"/api/v1/problems/{fixed_id}/verify", {"on": "2023-05-12", "accepted": True}).status_code == 403
    closed = leading.post(f"/api/v1/problems/{fixed_id}/verify", {"on": "2023-05-12", "accepted": True, "note": "销号"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert unit1.post(f"/api/v1/problems/{overdue_id}/measures", {"on": "2023-05-15",
                                                                  "measures": "补齐台账"}).status_code == 201
    assert unit1.post(f"/api/v1/problems/{overdue_id}/closure-request", {"on": "2023-05-16"}).status_code == 200
    sent_back = leading.post(f"/api/v1/problems/{overdue_id}/verify", {"on": "2023-05-18", "accepted": False,
                                                                       "note": "仍缺资料"})
    assert sent_back.status_code == 200 and sent_back.json()["status"] == "overdue"  # open, past its deadline

    listed = leading.get("/api/v1/problems", status="overdue", as_of="2023-05-31").json()["items"]
    assert overdue_id in [p["problem_id"] for p in listed] and fixed_id not in [p["problem_id"] for p in listed]
    own = unit1.get("/api/v1/problems").json()["items"]
    assert [p["problem_id"] for p in own] == [overdue_id]
    assert unit1.get("/api/v1/problems", unit_id=ids["u2"]).status_code == 403
    assert unit1.get(f"/api/v1/problems/{fixed_id}").status_code == 403
    assert [p["problem_id"] for p in station1.get("/api/v1/problems").json()["items"]] == [overdue_id]
    assert station2.get("/api/v1/problems").json()["items"] == []
    assert station2.get(f"/api/v1/problems/{overdue_id}").status_code == 403
    assert leading.get("/api/v1/problems", status="lost").status_code == 400


def test_a_late_report_and_an_overdue_problem_lower_the_units_score(sprint, user_factory, admin):
    ids = sprint
    leading = user_factory("leading_group")

    def card(unit):
        response = leading.get(f"/api/v1/scores/unit/{ids[unit]}", period="2023-05", as_of="2023-05-31")
        if response.status_code != 200:
            return None
        found = {i["name"]: i for i in response.json()["indicators"]}
        return response.json() if {"report_timeliness", "rectification"} <= set(found) else None

    def weekly(indicator):  # the weekly reports' part (the 旬 reports of the department's projects
        return [e for e in indicator["evidence"] if e["kind"] == "weekly_report"]  # are the same for both units)

    def settled():
        one, two = card("u1"), card("u2")
        if not (one and two):
            return None
        named = {i["name"]: i for i in one["indicators"]}
        other = {i["name"]: i for i in two["indicators"]}
        # every report and every step of the ledger above has reached the assessment
        if len(weekly(named["report_timeliness"])) != 3 or other["rectification"]["numerator"] != 1:
            return None
        return one, two

    one, two = wait_until(settled, timeout=60, interval=0.5, message="the assessment has the supervision events")
    indicators = {i["name"]: i for i in one["indicators"]}
    timeliness, fixing = indicators["report_timeliness"], indicators["rectification"]
    assert timeliness["weight"] == 5 and fixing["weight"] == 5
    assert [(e["week"], e["status"], e["reported_by"]) for e in weekly(timeliness)] == [
        ("2023-W19", "late", ids["u1"]), ("2023-W20", "missing", ids["u1"]), ("2023-W21", "missing", ids["u1"])]
    assert weekly(timeliness)[0]["reported_at"].startswith("2023-05-12T12:01")
    assert (fixing["numerator"], fixing["denominator"], fixing["points"]) == (0, 1, 0)
    assert fixing["evidence"][0]["status"] == "overdue" and fixing["evidence"][0]["description"] == "通组路台账不全"
    others = {i["name"]: i for i in two["indicators"]}
    assert weekly(others["report_timeliness"]) == [] and others["rectification"]["evidence"] == []
    assert (others["rectification"]["numerator"], others["rectification"]["denominator"]) == (1, 1)
    # the same department (the same projects and 旬), the same other facts: the difference is supervision
    assert one["score"] < two["score"]


def test_bad_input_is_a_clear_4xx_naming_the_field(sprint, user_factory):
    ids = sprint
    leading, unit1 = user_factory("leading_group"), user_factory("unit", unit_id=ids["u1"])
    huge = leading.post(f"/api/v1/campaigns/{ids['camp']}/actions", {
        "action_id": "a-huge", "name": "x", "lead": "x", "responsible_units": [ids["u1"]],
        "targets": [{"target_id": "t", "name": "x", "unit_of_measure": "km", "quantity": "1e400"}]})
    assert huge.status_code == 400 and "targets" in str(huge.json()["error"]["details"])
    no_week = report(unit1, ids, "u1", "2021-W53", "2023-05-05T09:00:00", "1")
    assert no_week.status_code == 400 and "week" in no_week.json()["error"]["details"]
    outside = report(unit1, ids, "u1", "2023-W30", "2023-07-28T09:00:00", "1")
    assert outside.status_code == 422 and outside.json()["error"]["details"]["rule"] == "report_week_in_campaign"
    shares = leading.post(f"/api/v1/campaigns/{ids['camp']}/actions", {
        "action_id": "a-shares", "name": "x", "lead": "x", "responsible_units": ["all_townships"],
        "targets": [{"target_id": "t", "name": "x", "unit_of_measure": "km", "quantity": "10",
                     "by_township": {ids["t1"]: "4", ids["t2"]: "5"}}]})
    assert shares.status_code == 422 and shares.json()["error"]["details"]["rule"] == "township_shares_add_up"
    early = leading.post("/api/v1/problems", {"source": "supervision", "found_on": "2023-05-10", "description": "x",
                                              "unit_id": ids["u1"], "deadline": "2023-05-01"})
    assert early.status_code == 422 and early.json()["error"]["details"]["field"] == "deadline"  # two dates: a rule
    missing = leading.get("/api/v1/campaigns/no-such-campaign")
    assert missing.status_code == 404

"""The county rulebook through the gateway: one rulebook of sections with their history, changed
by admin or the leading group from a date, used by commands on their business dates; the
county's clock for the pages."""
import uuid

LIMIT_FROM = "2030-01-01"  # far ahead, so no other test's dates fall under the change


def _household(admin, suffix):
    township, village = f"RT-{suffix}", f"RV-{suffix}"
    assert admin.post("/api/v1/townships", {"township_id": township, "name": "规则乡"}).status_code == 201
    assert admin.post("/api/v1/villages", {"village_id": village, "township_id": township, "name": "规则村",
                                           "poor_village": True}).status_code == 201
    household = admin.post("/api/v1/households", {"household_no": f"rule-{suffix}", "village_id": village,
                                                  "head_name": "赵六", "poverty_causes": ["illness"],
                                                  "registered_on": "2023-01-05"})
    assert household.status_code == 201, household.text
    body = "43122219800203" + f"{uuid.uuid4().int % 500 * 2 + 1:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    number = body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    member = admin.post(f"/api/v1/households/{household.json()['household_id']}/members", {
        "name": "赵六", "id_number": number, "relation": "head", "birth_date": "1980-02-03", "sex": "male",
        "labor_capacity": "full", "health": "healthy"})
    assert member.status_code == 201, member.text
    return township, household.json()["household_id"]


def test_a_rule_change_holds_from_its_date_for_commands_dated_then(admin, user_factory):
    suffix = uuid.uuid4().hex[:6]
    township, household = _household(admin, suffix)
    leading = user_factory("leading_group")
    station = user_factory("township", township_id=township)
    change = {"effective_from": LIMIT_FROM, "changes": {"max_term_months": 24}, "reason": "县政府2030年1号文"}
    assert station.put("/api/v1/rulebook/credit", change).status_code == 403
    bad = leading.put("/api/v1/rulebook/credit", {**change, "changes": {"max_term": 24}})
    assert bad.status_code == 400 and "max_term" in bad.json()["error"]["details"]
    changed = leading.put("/api/v1/rulebook/credit", change)
    assert changed.status_code == 200, changed.text
    version = changed.json()["versions"][-1]
    assert (version["effective_from"], version["changes"], version["actor"]["role"]) == \
        (LIMIT_FROM, {"max_term_months": 24}, "leading_group")

    def apply(applied_on):
        return admin.post("/api/v1/loans", {"household_id": household, "township_id": township, "amount": "5000.00",
                                            "industry": "livestock", "term_months": 18, "applied_on": applied_on})

    before = apply("2029-12-31")  # the 12-month limit still holds that day
    assert before.status_code == 422 and before.json()["error"]["details"]["rule"] == "term_within_limit"
    assert apply(LIMIT_FROM).status_code == 201

    book = leading.get("/api/v1/rulebook", as_of="2030-06-01").json()
    assert "sections" in book, book
    assert {"county", "registry", "assistance", "projects", "credit", "assessment"} <= set(book["sections"])
    credit = book["sections"]["credit"]
    assert credit["values"]["max_term_months"] == 24 and credit["values"]["subsidy_rate"] == "0.0258"
    assert book["sections"]["registry"]["values"]["poverty_line"] == "4000"
    assert book["sections"]["county"]["values"]["timezone"] == "Asia/Shanghai"
    assert "visits_per_month" in book["sections"]["assistance"]["values"]
    assert "departments" not in book["sections"]["assistance"]["values"]  # one home: the county section
    assert book["sections"]["assessment"]["values"]["weights"]["township"]["loan_recovery"] == 60
    today = leading.get("/api/v1/rulebook/credit").json()
    assert today["values"]["max_term_months"] == 12 and today["latest_version"] >= 1


def test_the_pages_get_the_countys_today(admin):
    clock = admin.get("/api/v1/today").json()
    assert clock["timezone"] == "Asia/Shanghai"
    assert clock["now"].startswith(clock["today"]) and clock["now"].endswith("+08:00")


def test_the_scoring_rulebook_is_a_section_like_the_others(admin, user_factory):
    leading = user_factory("leading_group")
    far = "2031-01-01"  # far ahead, so no other test's scores fall under the change
    moved = leading.put("/api/v1/rulebook/assessment", {"effective_from": far, "changes": {"visits_per_month": 2}})
    assert moved.status_code == 400 and "visits_per_month" in moved.json()["error"]["details"]
    changed = leading.put("/api/v1/rulebook/assessment", {"effective_from": far, "reason": "县考核办2031年1号文",
                                                          "changes": {"grade_bands": {"excellent": 92}}})
    assert changed.status_code == 200, changed.text
    version = changed.json()["versions"][-1]
    assert (version["effective_from"], version["changes"], version["reason"]) == \
        (far, {"grade_bands": {"excellent": 92}}, "县考核办2031年1号文")
    before = leading.get("/api/v1/rulebook", as_of="2030-12-31").json()["sections"]["assessment"]
    after = leading.get("/api/v1/rulebook", as_of=far).json()
    assert before["values"]["grade_bands"]["excellent"] == 90 and before["version_in_force"] < version["version"]
    assert after["sections"]["assessment"]["values"]["grade_bands"]["excellent"] == 92
    assert after["version"] == version["version"] == after["sections"]["assessment"]["version_in_force"]
    scores = leading.get("/api/v1/scores/township", period="2031", as_of="2031-12-31")
    assert scores.status_code == 200 and scores.json()["rulebook_version"] == version["version"]
    assert leading.get("/api/v1/scores/township", period="2030", as_of="2030-12-31").json()["rulebook_version"] \
        == before["version_in_force"]

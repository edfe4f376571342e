"""What a hostile or careless client sends, over real HTTP: each case answers a 4xx in our error
format (never a 500, never a stored value), whichever route it reaches."""
import json
import uuid

import pytest
import requests

from tests.e2e.conftest import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def place(admin):
    suffix = uuid.uuid4().hex[:6]
    ids = {"t": f"TH-{suffix}", "v": f"VH-{suffix}", "u": f"UH-{suffix}", "c": f"CH-{suffix}"}
    assert admin.post("/api/v1/townships", {"township_id": ids["t"], "name": "乡"}).status_code == 201
    assert admin.post("/api/v1/villages", {"village_id": ids["v"], "township_id": ids["t"], "name": "村",
                                           "poor_village": True}).status_code == 201
    assert admin.post("/api/v1/units", {"unit_id": ids["u"], "name": "单位", "department": "transport",
                                        "parent_unit_id": None}).status_code == 201
    assert admin.post("/api/v1/cadres", {"cadre_id": ids["c"], "unit_id": ids["u"], "name": "李强", "rank": "staff",
                                         "deputy_section_or_above": False}).status_code == 201
    return ids


def _project(place, **changes):
    body = {"title": "村道硬化", "department": "transport", "category": "village_road", "level": "township",
            "township_id": place["t"], "village_ids": [place["v"]], "planned_quantity": "2.5",
            "quantity_unit": "km", "budget": "800000.00",
            "funding_sources": [{"source": "central", "amount": "800000.00"}], "plan_year": 2023}
    body.update(changes)
    return body


def assert_refused(response, status=400, field=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert any(key == field or key.startswith(field + ".") for key in error["details"]), error
    return error


@pytest.mark.parametrize("amount", ["1e29", "1e40", "100000000000000000000000000000.00", "Infinity", "NaN", "-1e29"])
def test_huge_or_infinite_money_is_a_400(admin, place, amount):
    assert_refused(admin.post("/api/v1/quotas", {"township_id": place["t"], "year": 2023, "amount": amount}),
                   field="amount")
    assert_refused(admin.post("/api/v1/projects", _project(place, budget=amount)), field="budget")


def test_a_huge_quantity_or_score_is_a_400_and_nothing_is_stored(admin, place):
    assert_refused(admin.post("/api/v1/projects", _project(place, project_id=f"q-{uuid.uuid4().hex[:6]}",
                                                           planned_quantity="1e40")), field="planned_quantity")
    assert_refused(admin.post("/api/v1/exam-scores", {"cadre_id": place["c"], "exam_id": "e1", "score": "1e29",
                                                      "taken_on": "2023-05-01"}), field="score")
    # a JSON number too large for a float, and an integer no count reaches
    assert_refused(admin.post("/api/v1/quotas", None, raw='{"township_id": "x", "year": 2023, "amount": 1e400}'))
    assert_refused(admin.post("/api/v1/residency-reports", {"cadre_id": place["c"], "month": "2023-05",
                                                            "days": 10 ** 20}), field="days")
    listed = admin.get("/api/v1/projects", township_id=place["t"]).json()["items"]
    assert listed == []


@pytest.mark.parametrize("bad_text", ["王\x00伟", "\ud800", "name\x07bell", "tab\x1bescape"])
def test_nul_surrogates_and_control_characters_are_a_400(admin, gateway_url, place, bad_text):
    assert_refused(admin.post("/api/v1/townships", {"township_id": f"X-{uuid.uuid4().hex[:6]}", "name": bad_text}),
                   field="name")
    token = requests.post(f"{gateway_url}/api/v1/auth/token", json={"username": bad_text, "password": "whatever"},
                          timeout=30)
    assert_refused(token, field="username")
    if "\ud800" not in bad_text:  # a URL cannot carry a lone surrogate (it decodes to U+FFFD)
        assert_refused(admin.get("/api/v1/households", village_id=bad_text), field="query")


def test_a_name_with_a_control_character_is_not_stored(admin, place):
    township_id = f"Y-{uuid.uuid4().hex[:6]}"
    assert_refused(admin.post("/api/v1/townships", {"township_id": township_id, "name": "乡\x0b"}))
    assert admin.post("/api/v1/townships", {"township_id": township_id, "name": "乡\t新"}).status_code == 201


def test_deeply_nested_json_is_a_400(admin):
    for depth in (100, 100_000):
        assert_refused(admin.post("/api/v1/townships", None, raw="[" * depth + "]" * depth))
        nested = '{"a":' * depth + "1" + "}" * depth
        assert_refused(admin.post("/api/v1/townships", None, raw=nested))


def test_a_body_over_the_limit_is_a_413_before_parsing(admin):
    too_big = json.dumps({"township_id": "x", "name": "a" * (20 * 1024 * 1024)})
    error = assert_refused(admin.post("/api/v1/townships", None, raw=too_big), status=413)
    assert error["details"]["max_bytes"] < 20 * 1024 * 1024


def test_a_chunked_body_over_the_limit_is_a_413(admin):
    def chunks():
        yield b'{"township_id": "x", "name": "'
        for _ in range(20):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    response = requests.post(admin.base + "/api/v1/townships", data=chunks(),
                             headers=admin.headers({"Content-Type": "application/json"}), timeout=60)
    assert_refused(response, status=413)


@pytest.mark.parametrize("path, params", [
    ("/api/v1/departments/transport/statistics", {"plan_year": "0", "as_of": "2023-06-30"}),
    ("/api/v1/departments/transport/statistics", {"plan_year": "99999", "as_of": "2023-06-30"}),
    ("/api/v1/projects", {"plan_year": "0"}),
    ("/api/v1/audit", {"limit": "-1"}),
    ("/api/v1/audit", {"limit": "0"}),
    ("/api/v1/audit", {"limit": "501"}),
    ("/api/v1/users", {"limit": "0"}),
    ("/api/v1/households", {"limit": "501"}),
    ("/api/v1/loans", {"limit": "abc"}),
])
def test_years_and_limits_out_of_range_are_a_400(admin, auditor, path, params):
    field = next(iter(params)) if "plan_year" in params or "limit" in params else None
    caller = auditor if path.startswith("/api/v1/audit") else admin  # only the auditor reads the audit
    assert_refused(caller.get(path, **params), field=field)


def test_users_honours_limit_and_cursor(admin, gateway_url):
    for n in range(3):
        admin.post("/api/v1/users", {"username": f"lim-{uuid.uuid4().hex[:6]}-{n}", "password": "password-123",
                                     "role": "leading_group", "scope": {}})
    first = admin.get("/api/v1/users", limit=2).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = admin.get("/api/v1/users", limit=2, cursor=first["next_cursor"]).json()
    assert second["items"] and second["items"][0]["username"] > first["items"][-1]["username"]


def test_unknown_paths_and_methods_answer_json(admin, gateway_url):
    for path in ("/api/v1/households/%0A", "/api/v1/no-such-thing", "/no-such-page", "/api/v1/households/a%0Ab"):
        response = requests.get(gateway_url + path, headers=admin.headers(), timeout=30)
        assert_refused(response, status=404)
    for method, path in (("DELETE", "/api/v1/households"), ("PUT", "/api/v1/townships"), ("POST", "/healthz"),
                         ("OPTIONS", "/api/v1/households")):
        response = requests.request(method, gateway_url + path, headers=admin.headers(), timeout=30)
        error = assert_refused(response, status=405)
        assert response.headers["Allow"], response.headers
        assert set(error["details"]["allowed"]) == {m.strip() for m in response.headers["Allow"].split(",")}


def test_a_stored_header_with_a_control_character_is_a_400(admin, gateway_url):
    response = requests.post(f"{gateway_url}/api/v1/townships", json={"township_id": "z", "name": "z"},
                             headers=admin.headers({"Idempotency-Key": "k" * 500}), timeout=30)
    assert_refused(response, field="Idempotency-Key")


def test_admin_password_still_signs_in(gateway_url):
    # the guard must not refuse ordinary input
    response = requests.post(f"{gateway_url}/api/v1/auth/token", json={"username": "admin",
                                                                        "password": ADMIN_PASSWORD}, timeout=30)
    assert response.status_code == 200


def test_scoped_reads_stay_in_scope(admin, user_factory, place):
    """A station reads only its own township's households' help; a department only its projects."""
    other = user_factory("township", township_id=f"other-{place['t']}")
    household = admin.post("/api/v1/households", {"household_no": f"hh-{uuid.uuid4().hex[:6]}", "village_id": place["v"],
                                                   "head_name": "王伟", "poverty_causes": ["illness"],
                                                   "registered_on": "2023-01-05"}).json()["household_id"]
    assert other.get(f"/api/v1/households/{household}/help").status_code == 403
    assert user_factory("township", township_id=place["t"]).get(f"/api/v1/households/{household}/help").status_code == 200
    project_id = f"w-{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/projects", _project(place, project_id=project_id, department="water",
                                                   category="water_supply")).status_code == 201
    transport = user_factory("department", department="transport")
    assert transport.get(f"/api/v1/projects/{project_id}").status_code == 403
    assert transport.get("/api/v1/projects", department="water").status_code == 403
    assert all(p["department"] == "transport" for p in transport.get("/api/v1/projects").json()["items"])
    assert transport.get("/api/v1/departments/water/statistics", plan_year=2023, as_of="2023-06-30").status_code == 403
    assert user_factory("department", department="water").get(f"/api/v1/projects/{project_id}").status_code == 200


@pytest.mark.parametrize("path, field", [
    ("/api/v1/households/a%20b", "household_id"),  # no id has a space (the document's pattern)
    ("/api/v1/scores/planet?period=2023&as_of=2023-06-30", "subject_type"),
    ("/api/v1/periods/2023-13", "month"),
    ("/api/v1/rulebook/nowhere", "section"),
])
def test_a_path_parameter_is_checked_as_the_openapi_document_states_it(admin, path, field):
    response = requests.get(admin.base + path, headers=admin.headers(), timeout=30)
    assert_refused(response, field=field)

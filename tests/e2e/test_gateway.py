"""The gateway end to end over HTTP, every service running on real PostgreSQL and RabbitMQ:
the permission matrix, each error code from a real bad request, idempotency, OpenAPI."""
import uuid

import pytest
from openapi_spec_validator import validate as validate_openapi

from gateway.app import ROUTES
from gateway.openapi import openapi_path
from tests import support


@pytest.fixture(scope="module")
def county(admin, user_factory):
    """Two townships, a village each, a household each, a unit with two cadres, a pairing,
    a transport and a water project, a loan: the smallest county every area can act in."""
    suffix = uuid.uuid4().hex[:6]
    ids = {"t1": f"T1-{suffix}", "t2": f"T2-{suffix}", "v1": f"V1-{suffix}", "v2": f"V2-{suffix}",
           "u1": f"U1-{suffix}", "u2": f"U2-{suffix}", "c1": f"C1-{suffix}", "c2": f"C2-{suffix}"}
    for t in ("t1", "t2"):
        assert admin.post("/api/v1/townships", {"township_id": ids[t], "name": f"乡{t}"}).status_code == 201
    for v, t in (("v1", "t1"), ("v2", "t2")):
        response = admin.post("/api/v1/villages", {"village_id": ids[v], "township_id": ids[t], "name": f"村{v}",
                                                   "poor_village": True})
        assert response.status_code == 201, response.text
    for h, v in (("h1", "v1"), ("h2", "v2")):
        response = admin.post("/api/v1/households", {
            "household_no": f"{h}-{suffix}", "village_id": ids[v], "head_name": "王伟",
            "poverty_causes": ["illness"], "registered_on": "2023-01-05"})
        assert response.status_code == 201, response.text
        ids[h] = response.json()["household_id"]
        member = admin.post(f"/api/v1/households/{ids[h]}/members", {
            "name": "王伟", "id_number": support.id_number(h + suffix), "relation": "head", "birth_date": "1980-02-03",
            "sex": "male", "labor_capacity": "full", "health": "healthy"})
        assert member.status_code == 201, member.text
    for u in ("u1", "u2"):
        assert admin.post("/api/v1/units", {"unit_id": ids[u], "name": f"单位{u}", "department": "transport",
                                            "parent_unit_id": None}).status_code == 201
    for c, u in (("c1", "u1"), ("c2", "u2")):
        response = admin.post("/api/v1/cadres", {"cadre_id": ids[c], "unit_id": ids[u], "name": "李强", "rank": "staff",
                                                 "deputy_section_or_above": False})
        assert response.status_code == 201, response.text
    response = admin.post("/api/v1/pairings", {"cadre_id": ids["c1"], "household_id": ids["h1"], "from": "2023-01-01"})
    assert response.status_code == 201, response.text
    ids["pairing"] = response.json()["pairing_id"]
    for p, department in (("p_transport", "transport"), ("p_water", "water")):
        ids[p] = f"{department}-{suffix}"
        response = admin.post("/api/v1/projects", _project(ids[p], department, ids["t1"], ids["v1"]))
        assert response.status_code == 201, response.text
    assert admin.post("/api/v1/quotas", {"township_id": ids["t1"], "year": 2023, "amount": "500000.00"}).status_code == 201
    response = admin.post("/api/v1/loans", _loan(ids["h1"], ids["t1"]))
    assert response.status_code == 201, response.text
    ids["loan"] = response.json()["loan_id"]
    return ids



def _project(project_id, department, township_id, village_id):
    return {"project_id": project_id, "title": "村道硬化", "department": department,
            "category": "village_road" if department == "transport" else "water_supply", "level": "township",
            "township_id": township_id, "village_ids": [village_id], "planned_quantity": "2.5",
            "quantity_unit": "km", "budget": "800000.00",
            "funding_sources": [{"source": "central", "amount": "800000.00"}], "plan_year": 2023}


def _loan(household_id, township_id):
    return {"household_id": household_id, "township_id": township_id, "amount": "10000.00", "industry": "livestock",
            "term_months": 12, "applied_on": "2023-03-01"}


def test_permission_matrix(county, user_factory, admin, auditor):
    """For each role: one allowed and one forbidden call per area it works in."""
    c = county
    station1 = user_factory("township", township_id=c["t1"])
    transport = user_factory("department", department="transport")
    unit1 = user_factory("unit", unit_id=c["u1"])
    cadre1 = user_factory("cadre", cadre_id=c["c1"])
    union = user_factory("credit_union")
    leading = user_factory("leading_group")
    inspector = user_factory("inspector")
    matrix = [
        # (who, allowed?, method, path, body)
        (station1, True, "GET", f"/api/v1/households/{c['h1']}", None),
        (station1, False, "GET", f"/api/v1/households/{c['h2']}", None),
        (station1, True, "POST", f"/api/v1/households/{c['h1']}/income",
         {"year": 2023, "per_capita_income": "3000.00", "assessed_on": "2023-06-01"}),
        (station1, False, "POST", f"/api/v1/households/{c['h2']}/income",
         {"year": 2023, "per_capita_income": "3000.00", "assessed_on": "2023-06-01"}),
        (station1, True, "POST", f"/api/v1/loans/{c['loan']}/village-review", {"on": "2023-03-02", "passed": True, "note": ""}),
        (station1, False, "POST", f"/api/v1/loans/{c['loan']}/decision", {"on": "2023-03-20", "approved": True, "reason": ""}),
        (transport, True, "POST", f"/api/v1/projects/{c['p_transport']}/start", {"on": "2023-04-01"}),
        (transport, False, "POST", f"/api/v1/projects/{c['p_water']}/start", {"on": "2023-04-01"}),
        (transport, False, "POST", "/api/v1/townships", {"township_id": "x", "name": "x"}),
        (unit1, True, "POST", "/api/v1/exam-scores", {"cadre_id": c["c1"], "exam_id": "e1", "score": 88, "taken_on": "2023-05-01"}),
        (unit1, False, "POST", "/api/v1/exam-scores", {"cadre_id": c["c2"], "exam_id": "e1", "score": 88, "taken_on": "2023-05-01"}),
        (cadre1, True, "POST", "/api/v1/visits", {"cadre_id": c["c1"], "household_id": c["h1"], "visited_on": "2023-05-03",
                                                  "measures": ["产业指导"], "outcome": "好", "changes": "无",
                                                  "policy_explained": True}),
        (cadre1, False, "POST", "/api/v1/visits", {"cadre_id": c["c2"], "household_id": c["h1"], "visited_on": "2023-05-03",
                                                   "measures": [], "outcome": "", "changes": "", "policy_explained": True}),
        (cadre1, False, "POST", f"/api/v1/projects/{c['p_transport']}/progress",
         {"reported_on": "2023-05-01", "percent_complete": 10, "quantity_done": "0.2", "problems": ""}),
        (union, True, "GET", f"/api/v1/loans/{c['loan']}", None),
        (union, False, "POST", f"/api/v1/households/{c['h1']}/exit", {"year": 2023, "exited_on": "2023-12-01"}),
        (leading, True, "POST", "/api/v1/ratings", {"subject_type": "unit", "subject_id": c["u1"], "rating": "good",
                                                    "source": "internal", "rated_on": "2023-06-01"}),
        (leading, False, "POST", "/api/v1/users", {"username": "x-lg", "password": "password-1", "role": "admin"}),
        (inspector, True, "POST", "/api/v1/awareness-checks", {"household_id": c["h1"], "checked_on": "2023-06-02",
                                                               "passed": True}),
        (inspector, False, "POST", "/api/v1/vetoes", {"subject_type": "unit", "subject_id": c["u1"], "reason": "x",
                                                      "on": "2023-06-02"}),
        (leading, True, "POST", "/api/v1/campaigns", {"campaign_id": f"camp-{c['t1']}", "name": "百日冲刺",
                                                      "starts_on": "2023-05-01", "ends_on": "2023-06-30"}),
        (station1, False, "POST", "/api/v1/campaigns", {"campaign_id": f"x-{c['t1']}", "name": "x",
                                                        "starts_on": "2023-05-01", "ends_on": "2023-06-30"}),
        (inspector, True, "POST", "/api/v1/problems", {"source": "inspection", "found_on": "2023-06-02",
                                                       "description": "台账不全", "unit_id": c["u1"],
                                                       "deadline": "2023-06-30"}),
        (unit1, False, "POST", "/api/v1/problems", {"source": "inspection", "found_on": "2023-06-02",
                                                    "description": "x", "unit_id": c["u1"], "deadline": "2023-06-30"}),
        (unit1, True, "GET", "/api/v1/problems", None),
        (unit1, False, "GET", f"/api/v1/problems?unit_id={c['u2']}", None),
        (cadre1, False, "GET", "/api/v1/problems", None),
        # 三权分立: the admin manages users but does not read the audit; the auditor reads it and nothing else
        (admin, True, "GET", "/api/v1/users", None),
        (admin, False, "GET", "/api/v1/audit", None),
        (auditor, True, "GET", "/api/v1/audit", None),
        (auditor, False, "GET", "/api/v1/users", None),
        (auditor, False, "GET", f"/api/v1/households/{c['h1']}", None),
        (auditor, False, "POST", "/api/v1/users", {"username": "x-au", "password": "Password-12", "role": "admin"}),
    ]
    failures = []
    for client, allowed, method, path, body in matrix:
        response = client.get(path) if method == "GET" else client.post(path, body)
        ok = response.status_code < 300 if allowed else response.status_code == 403
        if not ok:
            failures.append(f"{method} {path} allowed={allowed}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_personal_data_is_masked_outside_the_township(county, user_factory, admin):
    station1 = user_factory("township", township_id=county["t1"])
    leading = user_factory("leading_group")
    own = station1.get(f"/api/v1/households/{county['h1']}").json()["members"][0]["id_number"]
    masked = leading.get(f"/api/v1/households/{county['h1']}").json()["members"][0]["id_number"]
    assert "*" not in own and len(own) == 18
    assert masked == own[:4] + "*" * 10 + own[-4:]
    assert admin.get(f"/api/v1/households/{county['h1']}").json()["members"][0]["id_number"] == own


def test_every_unmasked_read_is_audited_who_saw_whose(county, user_factory, auditor):
    station1 = user_factory("township", township_id=county["t1"])
    leading = user_factory("leading_group")
    correlation = f"reveal-{uuid.uuid4().hex[:8]}"
    masked = leading.get(f"/api/v1/households/{county['h1']}")
    assert masked.status_code == 200
    import requests

    unmasked = requests.get(f"{station1.base}/api/v1/households/{county['h1']}", timeout=30,
                            headers=station1.headers({"X-Correlation-Id": correlation}))
    assert unmasked.status_code == 200 and "*" not in unmasked.json()["members"][0]["id_number"]
    listed = station1.get("/api/v1/households", township_id=county["t1"])
    assert listed.status_code == 200

    def reveals():
        items = auditor.get("/api/v1/audit", limit=500).json()["items"]
        return [i for i in items if (i["resource"] or {}).get("event") == "personal_data_revealed"]

    from tests.support import wait_until

    wait_until(lambda: any(i["correlation_id"] == correlation for i in reveals()), 10, message="the reveal audited")
    rows = reveals()
    single = next(i for i in rows if i["correlation_id"] == correlation)
    assert single["actor_username"] == "township-" + county["t1"] and single["method"] == "GET"
    assert single["resource"]["household_ids"] == [county["h1"]]
    wait_until(lambda: any(i["path"] == "/api/v1/households" for i in reveals()), 10, message="the list audited")
    assert any(county["h1"] in i["resource"]["household_ids"] for i in reveals() if i["path"] == "/api/v1/households")
    # the leading group saw masked numbers only: nothing of theirs in the reveals
    assert not any(i["actor_role"] == "leading_group" for i in rows)


def test_erasing_personal_data_keeps_history_and_scores(county, admin, user_factory, auditor):
    """PIPL deletion: the ID number becomes unreadable for everyone; history and scores stay."""
    import time

    suffix = uuid.uuid4().hex[:6]
    household_id = admin.post("/api/v1/households", {
        "household_no": f"erase-{suffix}", "village_id": county["v1"], "head_name": "赵六",
        "poverty_causes": ["illness"], "registered_on": "2023-01-05"}).json()["household_id"]
    added = admin.post(f"/api/v1/households/{household_id}/members", {
        "name": "赵六", "id_number": support.id_number("h-erase" + suffix), "relation": "head", "birth_date": "1980-02-03",
        "sex": "male", "labor_capacity": "full", "health": "healthy", "phone": "13700001111"})
    assert added.status_code == 201, added.text
    assert admin.post("/api/v1/pairings", {"cadre_id": county["c1"], "household_id": household_id,
                                           "from": "2023-01-01"}).status_code == 201
    assert admin.post("/api/v1/visits", {"cadre_id": county["c1"], "household_id": household_id,
                                         "visited_on": "2023-02-03", "measures": ["产业指导"], "outcome": "好",
                                         "changes": "无", "policy_explained": True}).status_code == 201

    def scores():
        return admin.get(f"/api/v1/scores/cadre/{county['c1']}", period="2023", as_of="2023-12-31").json()

    def settled():  # the assessment service reads the events asynchronously
        first = scores()
        time.sleep(1.5)
        return first == scores()

    from tests.support import wait_until

    wait_until(settled, timeout=30, message="scores settled")
    before, history_before = scores(), admin.get(f"/api/v1/households/{household_id}/history").json()["items"]
    station = user_factory("township", township_id=county["t1"])
    assert station.post(f"/api/v1/households/{household_id}/erase-personal-data",
                        {"reason": "x" * 5}).status_code == 403
    assert admin.post(f"/api/v1/households/{household_id}/erase-personal-data", {}).status_code == 400
    erased = admin.post(f"/api/v1/households/{household_id}/erase-personal-data",
                        {"reason": "本人书面申请 2023-12-20"})
    assert erased.status_code == 200, erased.text
    member = admin.get(f"/api/v1/households/{household_id}").json()["members"][0]
    assert member["id_number"] is None and member["phone"] is None and member["name"] == "赵六"
    history = admin.get(f"/api/v1/households/{household_id}/history").json()["items"]
    assert len(history) == len(history_before) + 1 and history[-1]["type"] == "personal_data_erased"
    time.sleep(2)
    assert scores() == before
    wait_until(lambda: any((i["resource"] or {}).get("event") == "personal_data_erased"
                           and i["resource"]["household_id"] == household_id
                           for i in auditor.get("/api/v1/audit", limit=200).json()["items"]), 10,
               message="erasure audited")


def test_each_error_code_from_a_real_bad_request(county, admin, gateway_url):
    from tests.e2e.conftest import Client

    assert Client(gateway_url).get("/api/v1/households").status_code == 401
    assert Client(gateway_url, "not-a-token").get("/api/v1/households").json()["error"]["code"] == "unauthorized"
    bad = admin.post("/api/v1/households", {"village_id": county["v1"], "poverty_causes": ["bad luck"]})
    assert bad.status_code == 400
    body = bad.json()["error"]
    assert body["code"] == "validation_error"
    assert {"household_no", "head_name", "registered_on", "poverty_causes.0"} <= set(body["details"]) or \
        {"household_no", "head_name", "registered_on", "poverty_causes"} <= set(body["details"])
    bad_id = admin.post(f"/api/v1/households/{county['h1']}/members", {
        "name": "张三", "id_number": "431222198002031235", "relation": "child", "birth_date": "2010-01-01",
        "sex": "male", "labor_capacity": "none", "health": "healthy"})
    assert bad_id.status_code in (400, 422) and "id_number" in str(bad_id.json()["error"])
    # a valid number whose birth date and sex digit contradict the member's fields: 400 naming them
    valid_but_other = support.id_number("h1" + county["t1"])  # born 1980-02-03, male
    disagreeing = admin.post(f"/api/v1/households/{county['h1']}/members", {
        "name": "张三", "id_number": valid_but_other, "relation": "child", "birth_date": "2010-01-01",
        "sex": "female", "labor_capacity": "none", "health": "healthy"})
    assert disagreeing.status_code == 400, disagreeing.text
    assert {"birth_date", "sex", "id_number"} <= set(disagreeing.json()["error"]["details"])
    missing = admin.get("/api/v1/households/no-such-household")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    duplicate = admin.post("/api/v1/townships", {"township_id": county["t1"], "name": "again"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
    refused = admin.post(f"/api/v1/households/{county['h2']}/exit", {"year": 2023, "exited_on": "2023-12-01"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "rule_refused"
    assert refused.json()["error"]["details"]
    broken = admin.post("/api/v1/pairings", None, raw="{not json")
    assert broken.status_code == 400


def test_the_same_post_twice_with_one_key_counts_once(county, user_factory):
    transport = user_factory("department", department="transport")
    project = county["p_transport"]
    allocation = {"amount": "100000.00", "source": "central", "on": "2023-03-01"}
    first = transport.post(f"/api/v1/projects/{project}/allocations", allocation, key="alloc-2023-03-01")
    again = transport.post(f"/api/v1/projects/{project}/allocations", allocation, key="alloc-2023-03-01")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    history = transport.get(f"/api/v1/projects/{project}").json()["history"]
    allocations = [e for e in history if (e.get("type") or e.get("event_type")) == "funds_allocated"]
    assert len(allocations) == 1


def test_a_command_without_a_key_gets_the_gateways_own_so_a_redelivery_runs_once(county, admin, e2e_amqp_uri):
    from tests import support

    body = {"household_no": f"redeliver-{uuid.uuid4().hex[:6]}", "village_id": county["v1"], "head_name": "张敏",
            "poverty_causes": ["illness"], "registered_on": "2023-02-01"}
    created = admin.post("/api/v1/households", body)  # no Idempotency-Key
    assert created.status_code == 201, created.text
    household_id = created.json()["household_id"]
    with support.rpc_client(e2e_amqp_uri) as cluster:
        [event] = cluster.registry.stream_events("household", household_id)
        key = event["metadata"]["idempotency_key"]
        assert key.startswith("gateway:")
        # nameko redelivers the same RPC message (same body, same context) after a crash between
        # commit and ack: the command answers with its first result and registers nobody twice
        context = {"actor": event["metadata"]["actor"], "idempotency_key": key}
        again = cluster.registry.register_household(dict(body), context)
    assert again["household_id"] == household_id
    listed = admin.get("/api/v1/households", village_id=county["v1"], limit=500).json()["items"]
    assert sum(1 for h in listed if h["household_no"] == body["household_no"]) == 1


def test_openapi_validates_and_lists_every_route(gateway_url, admin):
    spec = admin.get("/api/v1/openapi.json").json()
    validate_openapi(spec)
    for r in ROUTES:
        assert r.method.lower() in spec["paths"][openapi_path(r.path)], r.endpoint
    assert len(ROUTES) >= 60


def test_audit_lists_who_changed_what(county, admin, auditor):
    from tests.support import wait_until

    def townships_audited():  # audit rows are written in batches within a fraction of a second
        return auditor.get("/api/v1/audit", path_prefix="/api/v1/townships").json()["items"]

    wait_until(townships_audited, timeout=10, message="audit rows written")
    items = townships_audited()
    assert items[-1]["actor_username"] == "admin" and items[-1]["method"] == "POST"
    assert items[-1]["path"].startswith("/api/v1/townships") and items[-1]["status"] == 201


def test_metrics_count_requests_by_route(gateway_url, admin):
    import requests

    text = requests.get(f"{gateway_url}/metrics", timeout=10).text
    assert 'route="/api/v1/households/<household_id>"' in text
    assert "fupin_http_request_seconds_bucket" in text


def test_the_loan_public_notice_lists_the_townships_approvals_of_the_month(county, admin):
    response = admin.get(f"/api/v1/townships/{county['t1']}/loan-notice", month="2023-03")
    assert response.status_code == 200, response.text
    notice = response.json()
    assert (notice["township_id"], notice["month"]) == (county["t1"], "2023-03")
    assert notice["count"] == len(notice["items"])
    bad = admin.get(f"/api/v1/townships/{county['t1']}/loan-notice", month="2023-13")
    assert bad.status_code == 400 and "month" in bad.json()["error"]["details"]


def test_a_never_poor_household_is_registered_for_monitoring_only(admin, county):
    response = admin.post("/api/v1/households", {
        "household_no": f"marginal-{uuid.uuid4().hex[:6]}", "village_id": county["v1"], "head_name": "李四",
        "poverty_causes": ["illness"], "registered_on": "2023-04-01", "status": "monitored",
        "risk_type": "sudden_hardship", "reason": "大病支出"})
    assert response.status_code == 201, response.text
    household = admin.get(f"/api/v1/households/{response.json()['household_id']}").json()
    assert (household["status"], household["monitored"], household["monitoring"]["risk_type"]) == \
        ("monitored", True, "sudden_hardship")
    listed = admin.get("/api/v1/households", township_id=county["t1"], status="monitored").json()["items"]
    assert [h["household_id"] for h in listed] == [household["household_id"]]

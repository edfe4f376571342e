"""The gateway on its own: tokens, users, audit, OpenAPI, health, and its error format."""
import time

import jwt
import pytest
import requests

from gateway.service import GatewayService
from tests import support

ADMIN_PASSWORD = "identity-Admin-pw1"
AUDITOR_PASSWORD = "identity-Auditor-pw1"


@pytest.fixture(scope="module")
def gateway(amqp_uri):
    url = support.fresh_database("gateway", name="gateway_identity")
    config = support.service_config("gateway", amqp_uri, url, ADMIN_PASSWORD=ADMIN_PASSWORD,
                                    AUDITOR_PASSWORD=AUDITOR_PASSWORD, JWT_SECRET="identity-test-key", ENVIRONMENT="test", TOKEN_TTL_SECONDS=2)
    with support.running(GatewayService, config):
        yield f"http://{config['WEB_SERVER_ADDRESS']}"


def token_for(base, username, password):
    return requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password})


def fresh(base, username="admin", password=ADMIN_PASSWORD):
    """A header with a new token: this module's tokens live 2 s, less than a few calls on a busy machine."""
    return {"Authorization": f"Bearer {token_for(base, username, password).json()['access_token']}"}


def test_first_admin_signs_in_and_creates_a_scoped_user(gateway):
    response = token_for(gateway, "admin", ADMIN_PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 2
    claims = jwt.decode(body["access_token"], "identity-test-key", algorithms=["HS256"])
    assert claims["role"] == "admin"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    created = requests.post(f"{gateway}/api/v1/users", headers=auth, json={
        "username": "station-a", "password": "station-pw-1", "role": "township", "scope": {"township_id": "t1"}})
    assert created.status_code == 201, created.text
    assert created.json()["scope"] == {"township_id": "t1"}
    station = token_for(gateway, "station-a", "station-pw-1")
    assert station.status_code == 200
    # a township may not administer users
    forbidden = requests.post(f"{gateway}/api/v1/users", json={
        "username": "x1", "password": "password-1", "role": "admin"},
        headers={"Authorization": f"Bearer {station.json()['access_token']}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    # 三权分立: the admin manages users but does not read the audit trail; the auditor does
    refused = requests.get(f"{gateway}/api/v1/audit", headers=fresh(gateway))
    assert refused.status_code == 403, refused.text

    def audited():  # audit rows reach the table in batches, within a fraction of a second
        answer = requests.get(f"{gateway}/api/v1/audit", headers=fresh(gateway, "auditor", AUDITOR_PASSWORD))
        return [item for item in answer.json()["items"] if item["path"] == "/api/v1/users"]

    support.wait_until(audited, timeout=10, message="the audit row")
    audit = audited()
    assert audit[0]["path"] == "/api/v1/users" and audit[0]["actor_username"] == "admin"
    assert audit[0]["resource"] == {"user_id": created.json()["user_id"]}


def test_errors_are_json_with_codes(gateway):
    assert token_for(gateway, "admin", "wrong").status_code == 401
    no_token = requests.get(f"{gateway}/api/v1/users")
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "unauthorized"
    bad = requests.post(f"{gateway}/api/v1/users", headers=fresh(gateway), json={"username": "u", "role": "mayor"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["details"]) >= {"username", "password", "role"}
    scoped = requests.post(f"{gateway}/api/v1/users", headers=fresh(gateway), json={
        "username": "dept", "password": "password-1", "role": "department"})
    assert scoped.status_code == 400 and "scope.department" in scoped.json()["error"]["details"]
    junk = requests.post(f"{gateway}/api/v1/users", headers={**fresh(gateway), "Content-Type": "application/json"}, data="{nope")
    assert junk.status_code == 400
    dup = {"username": "twice", "password": "password-1", "role": "inspector"}
    assert requests.post(f"{gateway}/api/v1/users", headers=fresh(gateway), json=dup).status_code == 201
    assert requests.post(f"{gateway}/api/v1/users", headers=fresh(gateway), json=dup).status_code == 409
    assert requests.get(f"{gateway}/api/v1/nowhere", headers=fresh(gateway)).status_code == 404


def test_tokens_expire(gateway):
    admin = token_for(gateway, "admin", ADMIN_PASSWORD).json()["access_token"]
    time.sleep(3.1)
    expired = requests.get(f"{gateway}/api/v1/users", headers={"Authorization": f"Bearer {admin}"})
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_openapi_health_and_metrics(gateway):
    spec = requests.get(f"{gateway}/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/auth/token" in spec["paths"]
    assert requests.get(f"{gateway}/healthz").json()["status"] == "ok"
    assert requests.get(f"{gateway}/readyz").status_code == 200
    metrics = requests.get(f"{gateway}/metrics").text
    assert 'fupin_http_requests_total{method="POST",route="/api/v1/auth/token"' in metrics


def test_post_users_with_one_idempotency_key_creates_one_user(gateway):
    def post(key):  # a fresh token each time: this module's tokens live 2 s
        admin = token_for(gateway, "admin", ADMIN_PASSWORD).json()["access_token"]
        return requests.post(f"{gateway}/api/v1/users", json=body,
                             headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": key})

    body = {"username": "clerk-once", "password": "Clerk-pw-12345", "role": "leading_group"}
    first = post("create-clerk-1")
    again = post("create-clerk-1")  # a client's retry
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert post("create-clerk-2").status_code == 409  # a new request for the same name is still a duplicate


def test_a_service_nobody_consumes_is_a_fast_503_with_retry_after(gateway):
    admin = token_for(gateway, "admin", ADMIN_PASSWORD).json()["access_token"]
    started = time.monotonic()
    response = requests.post(f"{gateway}/api/v1/townships", headers={"Authorization": f"Bearer {admin}"},
                             json={"township_id": "t-none", "name": "Nowhere"}, timeout=30)
    assert time.monotonic() - started < 5  # not the RPC timeout (60 s)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["details"]["service"] == "registry"
    assert int(response.headers["Retry-After"]) >= 1

"""等保 2.0 / PIPL on the gateway (issue 22): login-failure handling, password policy, logout and
revocation, 三权分立, and the append-only, hash-chained audit trail, on a real PostgreSQL."""
import time
import uuid

import jwt
import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from nameko.containers import ServiceContainer

from gateway.audit import AuditTrail, verify_chain
from gateway.auth import ensure_first_account
from gateway.service import GatewayService
from tests import support

ADMIN_PASSWORD = "security-Admin-pw1"
AUDITOR_PASSWORD = "security-Auditor-pw1"
LOCK_SECONDS = 3


@pytest.fixture(scope="module")
def database(amqp_uri):
    return support.fresh_database("gateway", name="gateway_security")


@pytest.fixture(scope="module")
def gateway(amqp_uri, database):
    config = support.service_config(
        "gateway", amqp_uri, database, ADMIN_PASSWORD=ADMIN_PASSWORD, AUDITOR_PASSWORD=AUDITOR_PASSWORD,
        JWT_SECRET="security-test-key", ENVIRONMENT="test", LOGIN_LOCK_SECONDS=LOCK_SECONDS,
        LOGIN_ADDRESS_MAX_FAILURES=8, LOGIN_ADDRESS_WINDOW_SECONDS=60, CLIENT_ADDRESS_HEADER="X-Real-IP")
    with support.running(GatewayService, config):
        yield f"http://{config['WEB_SERVER_ADDRESS']}"


def sign_in(base, username, password, address="10.0.0.1"):
    return requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password},
                         headers={"X-Real-IP": address}, timeout=30)


def bearer(response):
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin(gateway):
    return bearer(sign_in(gateway, "admin", ADMIN_PASSWORD))


@pytest.fixture(scope="module")
def auditor(gateway):
    return bearer(sign_in(gateway, "auditor", AUDITOR_PASSWORD))


def new_user(base, admin, username, password="Station-pw-1", role="inspector"):
    response = requests.post(f"{base}/api/v1/users", headers=admin, timeout=30,
                             json={"username": username, "password": password, "role": role})
    assert response.status_code == 201, response.text
    return response.json()


def audit_events(base, auditor, event):
    items = requests.get(f"{base}/api/v1/audit", headers=auditor, params={"limit": 500}, timeout=30).json()["items"]
    return [item for item in items if (item["resource"] or {}).get("event") == event]


def test_five_wrong_passwords_lock_the_account_for_the_configured_time_audited(gateway, admin, auditor):
    user = new_user(gateway, admin, "lock-me")
    for _ in range(4):
        assert sign_in(gateway, "lock-me", "Wrong-pass-1", "10.0.1.1").status_code == 401
    fifth = sign_in(gateway, "lock-me", "Wrong-pass-1", "10.0.1.2")
    assert fifth.status_code == 423 and fifth.json()["error"]["code"] == "account_locked"
    assert fifth.json()["error"]["details"]["locked_until"] and fifth.headers["Retry-After"] == str(LOCK_SECONDS)
    # locked: even the right password is refused, from any address
    assert sign_in(gateway, "lock-me", "Station-pw-1", "10.0.1.3").status_code == 423
    locked = audit_events(gateway, auditor, "account_locked")
    assert locked and locked[0]["resource"]["user_id"] == user["user_id"] and locked[0]["resource"]["failures"] == 5
    assert len(audit_events(gateway, auditor, "login_failed")) >= 5
    time.sleep(LOCK_SECONDS + 0.5)
    assert sign_in(gateway, "lock-me", "Station-pw-1", "10.0.1.3").status_code == 200
    signed_in = [i for i in audit_events(gateway, auditor, "login_succeeded") if i["actor_username"] == "lock-me"]
    assert signed_in[0]["resource"]["client_address"] == "10.0.1.3"
    unlocked = audit_events(gateway, auditor, "account_unlocked")
    assert unlocked[0]["resource"]["reason"] == "lock expired" and unlocked[0]["resource"]["user_id"] == user["user_id"]
    # the failures before the lock do not count again: four more wrong ones do not lock
    for _ in range(4):
        assert sign_in(gateway, "lock-me", "Wrong-pass-1", "10.0.1.4").status_code == 401
    assert sign_in(gateway, "lock-me", "Station-pw-1", "10.0.1.4").status_code == 200


def test_the_admin_unlocks_a_locked_account_and_it_is_audited(gateway, admin, auditor):
    user = new_user(gateway, admin, "unlock-me")
    for _ in range(5):
        sign_in(gateway, "unlock-me", "Wrong-pass-1", "10.0.2.1")
    assert sign_in(gateway, "unlock-me", "Station-pw-1", "10.0.2.1").status_code == 423
    response = requests.post(f"{gateway}/api/v1/users/{user['user_id']}/unlock", headers=admin, timeout=30)
    assert response.status_code == 200 and response.json()["was_locked_until"]
    assert sign_in(gateway, "unlock-me", "Station-pw-1", "10.0.2.1").status_code == 200
    support.wait_until(lambda: any(item["path"].endswith("/unlock") for item in
                                   audit_events(gateway, auditor, "account_unlocked")), 10, message="unlock audited")


def test_failures_from_one_address_are_throttled(gateway):
    for n in range(8):  # different (unknown) usernames: password spraying, not one account
        assert sign_in(gateway, f"nobody-{n}", "Wrong-pass-1", "10.0.3.1").status_code == 401
    throttled = sign_in(gateway, "nobody-9", "Wrong-pass-1", "10.0.3.1")
    assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) >= 1
    # even a right password from that address waits; another address is not affected
    assert sign_in(gateway, "admin", ADMIN_PASSWORD, "10.0.3.1").status_code == 429
    assert sign_in(gateway, "admin", ADMIN_PASSWORD, "10.0.3.2").status_code == 200


@pytest.mark.parametrize("password, problem", [
    ("Sh0rt-pw", "at least 10 characters"),
    ("only-lower-case", "at least 3 of"),
    ("ONLYUPPER12345", "at least 3 of"),
])
def test_the_password_policy_refuses_weak_passwords(gateway, admin, password, problem):
    response = requests.post(f"{gateway}/api/v1/users", headers=admin, timeout=30,
                             json={"username": f"weak-{abs(hash(password))}", "password": password, "role": "inspector"})
    assert response.status_code == 400
    assert any(problem in message for message in response.json()["error"]["details"]["password"])


def test_password_change_enforces_policy_and_history_and_revokes_old_tokens(gateway, admin):
    new_user(gateway, admin, "changer", password="First-pass-1")
    old = bearer(sign_in(gateway, "changer", "First-pass-1"))

    def change(headers, current, new):
        return requests.post(f"{gateway}/api/v1/auth/password", headers=headers, timeout=30,
                             json={"old_password": current, "new_password": new})

    assert change(old, "Not-the-pass-1", "Second-pass-2").json()["error"]["details"] == {
        "old_password": ["wrong password"]}
    assert change(old, "First-pass-1", "weak").status_code == 400
    reuse = change(old, "First-pass-1", "First-pass-1")
    assert reuse.status_code == 400 and "last 5" in reuse.json()["error"]["details"]["new_password"][0]
    changed = change(old, "First-pass-1", "Second-pass-2")
    assert changed.status_code == 200, changed.text
    new = bearer(changed)
    refused = requests.get(f"{gateway}/api/v1/openapi.json", timeout=30)  # public: unaffected
    assert refused.status_code == 200
    stale = change(old, "Second-pass-2", "Third-pass-3")
    assert stale.status_code == 401 and "password was changed" in stale.json()["error"]["message"]
    assert sign_in(gateway, "changer", "First-pass-1").status_code == 401
    # back to the first password: refused while it is among the last five
    assert change(new, "Second-pass-2", "First-pass-1").status_code == 400
    assert change(new, "Second-pass-2", "Third-pass-3").status_code == 200


def test_logout_revokes_the_token(gateway, admin):
    token = bearer(sign_in(gateway, "admin", ADMIN_PASSWORD))
    assert requests.get(f"{gateway}/api/v1/users", headers=token, timeout=30).status_code == 200
    assert requests.post(f"{gateway}/api/v1/auth/logout", headers=token, timeout=30).json() == {"revoked": True}
    refused = requests.get(f"{gateway}/api/v1/users", headers=token, timeout=30)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert requests.get(f"{gateway}/api/v1/users", headers=admin, timeout=30).status_code == 200  # only that one


def test_a_logout_on_another_gateway_replica_is_refused_here_within_the_token_check_interval(gateway, database):
    """The gateway keeps a token's liveness check for TOKEN_CHECK_SECONDS (1 s); a revocation it did
    not take itself (another replica's logout, written straight to the shared table here) is
    refused once that has passed."""
    response = sign_in(gateway, "admin", ADMIN_PASSWORD)
    token = bearer(response)
    assert requests.get(f"{gateway}/api/v1/users", headers=token, timeout=30).status_code == 200
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO revoked_tokens (jti, user_id, expires_at) "
                             "VALUES (:jti, :user_id, now() + interval '1 hour')"),
                     {"jti": claims["jti"], "user_id": claims["sub"]})
    engine.dispose()
    time.sleep(1.2)
    refused = requests.get(f"{gateway}/api/v1/users", headers=token, timeout=30)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]


def test_separation_of_duties_admin_manages_users_auditor_reads_the_audit(gateway, admin, auditor):
    assert requests.get(f"{gateway}/api/v1/audit", headers=admin, timeout=30).status_code == 403
    assert requests.get(f"{gateway}/api/v1/audit/export", headers=admin, timeout=30).status_code == 403
    made = requests.post(f"{gateway}/api/v1/users", headers=admin, timeout=30,
                         json={"username": "my-auditor", "password": "Auditor-pw-12", "role": "auditor"})
    assert made.status_code == 400 and "role" in made.json()["error"]["details"]
    assert requests.get(f"{gateway}/api/v1/audit", headers=auditor, timeout=30).status_code == 200
    for method, path in (("GET", "/api/v1/users"), ("POST", "/api/v1/users"), ("GET", "/api/v1/households"),
                         ("POST", "/api/v1/townships")):
        response = requests.request(method, f"{gateway}{path}", headers=auditor, json={}, timeout=30)
        assert response.status_code == 403, (method, path, response.text)


def test_the_auditor_exports_the_trail_as_csv_and_json_and_the_export_is_audited(gateway, admin, auditor):
    new_user(gateway, admin, "exported-user")
    support.wait_until(lambda: any(i["path"] == "/api/v1/users" for i in
                                   requests.get(f"{gateway}/api/v1/audit", headers=auditor, timeout=30).json()["items"]),
                       10, message="user creation audited")
    as_json = requests.get(f"{gateway}/api/v1/audit/export", headers=auditor, params={"format": "json"}, timeout=30)
    assert as_json.status_code == 200 and as_json.headers["Content-Type"].startswith("application/json")
    items = as_json.json()["items"]
    assert items[0]["audit_id"] < items[-1]["audit_id"] and as_json.json()["head_hash"] == items[-1]["row_hash"]
    assert all(later["prev_hash"] == earlier["row_hash"] for earlier, later in zip(items, items[1:]))
    as_csv = requests.get(f"{gateway}/api/v1/audit/export", headers=auditor, timeout=30)
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0].startswith("audit_id,at,actor_id")
    assert "/api/v1/users" in as_csv.text
    support.wait_until(lambda: audit_events(gateway, auditor, "audit_exported"), 10, message="export audited")


def test_nobody_can_edit_or_delete_audit_rows_and_a_tampered_row_is_detected(gateway, admin, database):
    new_user(gateway, admin, "tamper-witness")
    engine = sa.create_engine(database)
    try:
        support.wait_until(lambda: _count(engine) >= 3, 10, message="audit rows")
        with engine.connect() as conn:
            assert verify_chain(conn)[1] is None
        with engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT audit_id FROM audit_log ORDER BY audit_id")).scalars().all()
        victim = ids[len(ids) // 2]
        for statement in (f"UPDATE audit_log SET actor_username = 'someone-else' WHERE audit_id = {victim}",
                          f"DELETE FROM audit_log WHERE audit_id = {victim}", "TRUNCATE audit_log"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with engine.begin() as conn:
                    conn.execute(sa.text(statement))
        # a database superuser can switch the trigger off: the chain still shows the edit
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
            conn.execute(sa.text(f"UPDATE audit_log SET status = 200 + status WHERE audit_id = {victim}"))
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update"))
        with engine.connect() as conn:
            checked, broken = verify_chain(conn)
        assert broken["audit_id"] == victim and "edited" in broken["reason"]
        assert checked == ids.index(victim)
        from fupin.cli import main

        result = CliRunner().invoke(main, ["audit", "verify", "--database-url", database])
        assert result.exit_code == 1 and f"broken at audit_id {victim}" in result.output
    finally:
        engine.dispose()


def test_an_answered_write_is_in_the_audit_trail_even_if_the_gateway_dies_right_after(amqp_uri, database,
                                                                                     monkeypatch):
    # The trail used to keep rows in memory for up to AuditTrail.FLUSH_SECONDS: made an hour here,
    # only a trail written before the answer leaves passes.
    monkeypatch.setattr(AuditTrail, "FLUSH_SECONDS", 3600, raising=False)
    config = support.service_config(
        "gateway", amqp_uri, database, ADMIN_PASSWORD=ADMIN_PASSWORD, AUDITOR_PASSWORD=AUDITOR_PASSWORD,
        JWT_SECRET="security-test-key", ENVIRONMENT="test")
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    correlation_id = str(uuid.uuid4())
    container = ServiceContainer(GatewayService, config)
    container.start()
    try:
        admin_headers = bearer(sign_in(base, "admin", ADMIN_PASSWORD))
        made = requests.post(f"{base}/api/v1/users", timeout=30,
                             headers={**admin_headers, "X-Correlation-Id": correlation_id},
                             json={"username": f"crash-{correlation_id[:8]}", "password": "Station-pw-1",
                                   "role": "inspector"})
        assert made.status_code == 201, made.text
    finally:
        container.kill()  # a crash: no stop(), nothing flushed on the way out
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            audited = conn.execute(sa.text("SELECT method, path, status FROM audit_log WHERE correlation_id = :c"),
                                   {"c": correlation_id}).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in audited] == [("POST", "/api/v1/users", 201)]


def test_a_write_the_audit_table_refuses_is_answered_after_a_bounded_wait_and_audited_once_it_can(
        gateway, admin, database, monkeypatch):
    monkeypatch.setattr(AuditTrail, "WAIT_SECONDS", 0.5)
    monkeypatch.setattr(AuditTrail, "RETRY_SECONDS", 0.2)
    correlation_id = str(uuid.uuid4())
    engine = sa.create_engine(database)

    def audited():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE correlation_id = :c"),
                                {"c": correlation_id}).scalar()

    try:
        with engine.begin() as conn:  # the trail's table gone for a while: every write of it fails
            conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
        try:
            made = requests.post(f"{gateway}/api/v1/users", timeout=30,
                                 headers={**admin, "X-Correlation-Id": correlation_id},
                                 json={"username": f"refused-{correlation_id[:8]}", "password": "Station-pw-1",
                                       "role": "inspector"})
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
        assert made.status_code == 201, made.text  # the user exists: an error would invite a second one
        support.wait_until(audited, 30, message="the kept row written once the table is back")
        assert audited() == 1
    finally:
        engine.dispose()


def _count(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()


def test_outside_development_the_default_or_a_weak_first_admin_password_refuses_to_start(amqp_uri):
    url = support.fresh_database("gateway", name="gateway_first_admin")
    engine = sa.create_engine(url)
    production = {"ENVIRONMENT": "production"}
    try:
        with Session(engine) as session:
            with pytest.raises(RuntimeError, match="published local default"):
                ensure_first_account(session, "admin", "admin", "fupin-admin", production)
            with pytest.raises(RuntimeError, match="breaks the password policy"):
                ensure_first_account(session, "admin", "admin", "longbutlowercase", production)
            # development (how `fupin up` and the demo run): the local default still works
            assert ensure_first_account(session, "admin", "admin", "fupin-admin", {"ENVIRONMENT": "development"})
            session.commit()
            # that admin, still with the default, is refused at the next start outside development
            with pytest.raises(RuntimeError, match="still has the published local default"):
                ensure_first_account(session, "admin", "admin", "County-admin-2024", production)
        with Session(engine) as session:
            assert ensure_first_account(session, "auditor", "auditor", "County-auditor-2024", production)
    finally:
        engine.dispose()


def test_audit_rows_younger_than_180_days_cannot_be_pruned(amqp_uri):
    """网络安全法 第二十一条: logs kept at least six months. Only rows past the retention may go,
    and only in a transaction that says so (docs/security.md)."""
    from datetime import datetime, timedelta, timezone

    from gateway.audit import append_audit

    url = support.fresh_database("gateway", name="gateway_retention")
    engine = sa.create_engine(url)
    now = datetime.now(timezone.utc)

    def row(days_ago):
        return {"at": now - timedelta(days=days_ago), "actor_id": "u1", "actor_username": "someone",
                "actor_role": "admin", "method": "POST", "path": "/api/v1/users", "status": 201,
                "idempotency_key": None, "correlation_id": "c", "resource": {"n": days_ago}}

    try:
        with engine.begin() as conn:
            append_audit(conn, [row(200), row(179)])
        ids = [r[0] for r in engine.connect().execute(sa.text("SELECT audit_id FROM audit_log ORDER BY audit_id"))]
        old, young = ids
        for audit_id, prune in ((old, False), (young, True)):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with engine.begin() as conn:
                    if prune:
                        conn.execute(sa.text("SET LOCAL fupin.audit_prune = 'on'"))
                    conn.execute(sa.text(f"DELETE FROM audit_log WHERE audit_id = {audit_id}"))
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL fupin.audit_prune = 'on'"))
            assert conn.execute(sa.text(f"DELETE FROM audit_log WHERE audit_id = {old}")).rowcount == 1
        with engine.connect() as conn:  # the chain now starts at the first kept row, still intact
            assert verify_chain(conn) == (1, None)
    finally:
        engine.dispose()

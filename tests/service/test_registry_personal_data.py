"""Personal data at rest (issue 22, PIPL): ID and phone numbers encrypted per household in the
events and the read models, duplicates found through a keyed hash, erasure by destroying the
household's key, older plaintext events sealed on start, and a KEK rotation — on a real
PostgreSQL, the tables read directly."""
import base64
import json
import os
import uuid
from contextlib import contextmanager

import pytest
from nameko.containers import ServiceContainer
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.crypto import key_ring_from_config
from services.common.errors import Conflict, RuleRefused
from services.registry.service import RegistryService
from tests import support
from tests.service.test_registry_service import CHILD_ID, HEAD_ID, STATION, assess, county, household, member

PHONE = "13812345678"
HASH_KEY = base64.b64encode(b"h" * 32).decode()


def new_kek():
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def registry_db(infra):
    return support.fresh_database("registry", name="registry_personal_data")


@pytest.fixture
def engine(registry_db):
    engine = sa.create_engine(registry_db)
    yield engine
    engine.dispose()


@contextmanager
def start(amqp_uri, registry_db, **overrides):
    """A registry on this database with these keys. Restarting containers back to back sometimes
    meets a pooled broker connection the broker has just reset: start again (at most twice)."""
    config = support.service_config("registry", amqp_uri, registry_db, PII_HASH_KEY=HASH_KEY, **overrides)
    for attempt in range(3):
        container = ServiceContainer(RegistryService, config)
        try:
            container.start()
            break
        except (ConnectionResetError, KeyError):
            container.kill()
            if attempt == 2:
                raise
    try:
        yield container
    finally:
        container.stop()


@pytest.fixture
def rpc(amqp_uri, registry_db):
    support.truncate_all(registry_db)
    with start(amqp_uri, registry_db), support.rpc_client(amqp_uri) as cluster:
        yield cluster.registry


def rows(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def test_id_and_phone_numbers_are_ciphertext_in_every_table(rpc, engine):
    county(rpc)
    household_id = household(rpc)
    member(rpc, household_id)
    person = member(rpc, household_id, CHILD_ID, name="王小明", relation="child", birth_date="2010-05-06",
                    phone=None)["person_id"]
    rpc.update_member({"household_id": household_id, "person_id": person, "phone": "13987654321"}, STATION)
    # nowhere in the database in clear: events, the household read model, the uniqueness table
    for table, column in (("events", "payload"), ("households", "detail"), ("living_id_numbers", "id_hash"),
                          ("household_keys", "wrapped_key")):
        for secret in (HEAD_ID, CHILD_ID, PHONE, "13987654321", HEAD_ID[-4:] + '"'):
            found = rows(engine, f"SELECT count(*) FROM {table} WHERE {column}::text LIKE :s", s=f"%{secret}%")
            assert found[0][0] == 0, (table, secret)
    added = rows(engine, "SELECT payload FROM events WHERE event_type = 'member_added' ORDER BY global_position")
    assert all(p.payload["id_number"].startswith("enc:v1:") for p in added)
    assert added[0].payload["phone"].startswith("enc:v1:") and added[1].payload["phone"] is None
    updated = rows(engine, "SELECT payload FROM events WHERE event_type = 'member_updated'")[0].payload
    assert updated["changes"]["phone"].startswith("enc:v1:")
    detail = rows(engine, "SELECT detail FROM households WHERE household_id = :h", h=household_id)[0].detail
    assert all(m["id_number"].startswith("enc:v1:") for m in detail["members"])
    assert {r.id_hash[:5] for r in rows(engine, "SELECT id_hash FROM living_id_numbers")} == {"hmac:"}
    # the same household's two members do not share a ciphertext layout: a random nonce each
    assert added[0].payload["id_number"] != added[1].payload["id_number"]
    # and the service still reads them: unmasked for those allowed, masked for the rest
    revealed = rpc.get_household(household_id, True)
    assert sorted(m["id_number"] for m in revealed["members"]) == sorted([HEAD_ID, CHILD_ID])
    assert {m["phone"] for m in revealed["members"]} == {PHONE, "13987654321"}
    masked = rpc.get_household(household_id)["members"]
    assert {m["id_number"] for m in masked} == {HEAD_ID[:4] + "*" * 10 + HEAD_ID[-4:],
                                                CHILD_ID[:4] + "*" * 10 + CHILD_ID[-4:]}
    assert rpc.list_households({"village_id": "V1"}, 10, None, True)["items"][0]["members"][0]["id_number"] in (
        HEAD_ID, CHILD_ID)
    history = rpc.household_history(household_id)
    assert history[1]["payload"]["id_number"] == HEAD_ID[:4] + "*" * 10 + HEAD_ID[-4:]


def test_a_county_wide_duplicate_is_found_through_the_keyed_hash(rpc):
    county(rpc)
    first = household(rpc)
    member(rpc, first)
    second = household(rpc, "342401002")
    with pytest.raises(Conflict) as refused:
        member(rpc, second)
    assert refused.value.details["rule"] == "id_number_unique"


def test_erasure_makes_the_numbers_unreadable_and_keeps_history_and_status(rpc, engine):
    county(rpc)
    household_id = household(rpc)
    rpc.add_member({"household_id": household_id, "name": "王伟", "id_number": HEAD_ID, "relation": "head",
                    "birth_date": "1980-02-03", "sex": "male", "labor_capacity": "full", "health": "healthy",
                    "phone": PHONE}, {**STATION, "idempotency_key": "erase-test-member"})
    assert rows(engine, "SELECT result FROM idempotency_keys")[0].result["id_number"].endswith(HEAD_ID[-4:])
    assess(rpc, household_id, "5200.00")
    before = rpc.get_household(household_id, True)
    stored_before = rows(engine, "SELECT global_position, payload FROM events WHERE stream_id = :h "
                                 "ORDER BY global_position", h=household_id)
    erased = rpc.erase_personal_data({"household_id": household_id, "reason": "本人申请删除 2024-03-01 第7号"},
                                     {"actor": {"id": "admin-1", "role": "admin"}})
    assert erased["personal_data_erased"] is True
    after = rpc.get_household(household_id, True)
    assert after["members"][0]["id_number"] is None and after["members"][0]["phone"] is None
    assert after["members"][0]["name"] == before["members"][0]["name"]
    for key in ("status", "latest_income", "latest_assurances", "people", "monitored", "household_no"):
        assert after[key] == before[key], key
    # the events are all still there, the personal fields still the same ciphertext, now unreadable
    stored_after = rows(engine, "SELECT global_position, payload FROM events WHERE stream_id = :h "
                                "ORDER BY global_position", h=household_id)
    assert stored_after[:len(stored_before)] == stored_before
    assert [r.payload.get("reason") for r in stored_after[len(stored_before):]] == ["本人申请删除 2024-03-01 第7号"]
    assert rows(engine, "SELECT count(*) FROM idempotency_keys")[0][0] == 0  # its masked digits too
    key = rows(engine, "SELECT wrapped_key, erased_by FROM household_keys WHERE household_id = :h", h=household_id)[0]
    assert key.wrapped_key is None and key.erased_by["id"] == "admin-1"
    history = rpc.household_history(household_id)
    assert [item["type"] for item in history][-1] == "personal_data_erased" and len(history) == len(stored_after)
    assert history[1]["payload"]["id_number"] is None
    # the household goes on (income, assurances) but takes no new personal data
    assess(rpc, household_id, "6100.00", on="2023-12-01")
    assert rpc.get_household(household_id)["latest_income"]["per_capita_income"] == "6100.00"
    with pytest.raises(RuleRefused) as refused:
        member(rpc, household_id, CHILD_ID, name="王小明", relation="child", birth_date="2010-05-06")
    assert refused.value.details["rule"] == "personal_data_erased"
    # a rebuild of the read models reads the same: nothing of the numbers comes back
    rpc.rebuild_read_models()
    assert rpc.get_household(household_id, True)["members"][0]["id_number"] is None


def test_older_plaintext_events_are_sealed_on_start_and_read_before_that(amqp_uri, registry_db, engine):
    support.truncate_all(registry_db)
    household_id = str(uuid.uuid4())
    person = str(uuid.uuid4())
    legacy = [
        ("household_registered", {"household_id": household_id, "household_no": "L-1", "village_id": "V1",
                                   "township_id": "T1", "head_name": "李四", "poverty_causes": ["illness"],
                                   "registered_on": "2021-01-05", "five_guarantees": False}),
        ("member_added", {"household_id": household_id, "person_id": person, "name": "李四", "id_number": HEAD_ID,
                          "relation": "head", "birth_date": "1980-02-03", "sex": "male", "labor_capacity": "full",
                          "health": "healthy", "schooling": None, "phone": PHONE}),
    ]
    with engine.begin() as conn:  # what an older release left: plaintext events and read models
        for version, (kind, payload) in enumerate(legacy, start=1):
            conn.execute(sa.text(
                "INSERT INTO events (event_id, stream_type, stream_id, version, event_type, payload, metadata) "
                "VALUES (:id, 'household', :s, :v, :t, CAST(:p AS jsonb), '{}')"),
                {"id": str(uuid.uuid4()), "s": household_id, "v": version, "t": kind, "p": json.dumps(payload)})
        conn.execute(sa.text("INSERT INTO living_id_numbers (id_hash, household_id, person_id) VALUES (:n, :h, :p)"),
                     {"n": HEAD_ID, "h": household_id, "p": person})
    # before the sealing, a plaintext payload is read as it is (the upcaster's case)
    from services.registry import personal_data

    codec = personal_data.HouseholdCodec(key_ring_from_config({"PII_HASH_KEY": HASH_KEY}))
    with Session(engine) as session:
        assert codec.open(session, household_id, [legacy[1][1]])[0]["id_number"] == HEAD_ID
    with start(amqp_uri, registry_db), support.rpc_client(amqp_uri) as cluster:
        stored = rows(engine, "SELECT payload FROM events WHERE event_type = 'member_added'")[0].payload
        assert stored["id_number"].startswith("enc:v1:") and stored["phone"].startswith("enc:v1:")
        assert rows(engine, "SELECT count(*) FROM events WHERE payload::text LIKE :s", s=f"%{HEAD_ID}%")[0][0] == 0
        assert rows(engine, "SELECT id_hash FROM living_id_numbers")[0].id_hash.startswith("hmac:")
        assert cluster.registry.get_household(household_id, True)["members"][0]["id_number"] == HEAD_ID


def test_a_key_encryption_key_rotation(amqp_uri, registry_db, engine):
    support.truncate_all(registry_db)
    old, new = new_kek(), new_kek()
    with start(amqp_uri, registry_db, PII_KEK=old), support.rpc_client(amqp_uri) as cluster:
        county(cluster.registry)
        household_id = household(cluster.registry)
        member(cluster.registry, household_id)
    old_id = rows(engine, "SELECT kek_id FROM household_keys")[0].kek_id

    def head_id_number(cluster):
        return cluster.registry.get_household(household_id, True)["members"][0]["id_number"]

    # the new KEK wraps; the old one still unwraps until every data key is rewrapped
    with start(amqp_uri, registry_db, PII_KEK=new, PII_KEK_PREVIOUS=old), support.rpc_client(amqp_uri) as cluster:
        assert head_id_number(cluster) == HEAD_ID
        assert cluster.registry.rewrap_household_keys()["rewrapped"] == 1
    assert rows(engine, "SELECT kek_id FROM household_keys")[0].kek_id not in (old_id, None)
    # only the new KEK now; a brand-new RPC client (a restarted broker connection resets the old one)
    with start(amqp_uri, registry_db, PII_KEK=new), support.rpc_client(amqp_uri) as cluster:
        assert head_id_number(cluster) == HEAD_ID
    # and without the old KEK before the rewrap, the numbers would not have opened
    with Session(engine) as session:
        from services.registry import personal_data

        stale = personal_data.HouseholdCodec(key_ring_from_config({"PII_KEK": old, "PII_HASH_KEY": HASH_KEY}))
        with pytest.raises(Exception, match="key-encryption key"):
            stale.data_key(session, household_id)


def test_outside_development_the_registry_needs_a_key_encryption_key():
    with pytest.raises(RuntimeError, match="FUPIN_PII_KEK must be set"):
        key_ring_from_config({"ENVIRONMENT": "production"})
    with pytest.raises(RuntimeError, match="32 bytes"):
        key_ring_from_config({"ENVIRONMENT": "production", "PII_KEK": base64.b64encode(b"short").decode()})
    assert key_ring_from_config({"ENVIRONMENT": "production", "PII_KEK": new_kek()}).current

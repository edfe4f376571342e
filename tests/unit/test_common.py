"""Pure parts of the chassis: validation messages, pagination, config, metadata, the demo generator."""
import os
from datetime import date

import pytest
from marshmallow import Schema, fields

from fupin.demo_county import generate, id_number
from services.common.commands import command_metadata
from services.common.config import load_config, rules_from_config
from services.common.errors import ValidationFailed
from services.common.pagination import decode_cursor, encode_cursor, page, page_limit
from services.common.validation import validate


class Inner(Schema):
    amount = fields.Decimal(required=True)


class Outer(Schema):
    name = fields.String(required=True)
    sources = fields.List(fields.Nested(Inner))


def test_validation_names_each_bad_field_with_its_reason():
    with pytest.raises(ValidationFailed) as error:
        validate(Outer(), {"sources": [{"amount": "x"}], "surplus": 1})
    details = error.value.details
    assert details["name"] == ["Missing data for required field."]
    assert details["sources.0.amount"] == ["Not a valid number."]
    assert details["surplus"] == ["Unknown field."]
    with pytest.raises(ValidationFailed) as not_object:
        validate(Outer(), ["a list"])
    assert "_body" in not_object.value.details


def test_pagination_limits_and_cursors():
    assert page_limit(None) == 50
    for bad in (0, 501, "ten"):
        with pytest.raises(ValidationFailed):
            page_limit(bad)
    assert decode_cursor(encode_cursor(["2023-05-01", "h-9"])) == ["2023-05-01", "h-9"]
    with pytest.raises(ValidationFailed):
        decode_cursor("not-a-cursor!")
    rows = [{"id": n} for n in range(4)]
    first = page(rows, 3, key=lambda r: r["id"])
    assert [r["id"] for r in first["items"]] == [0, 1, 2] and decode_cursor(first["next_cursor"]) == 2
    assert page(rows[:2], 3, key=lambda r: r["id"])["next_cursor"] is None


def test_config_resolves_environment_with_defaults(tmp_path):
    os.environ.pop("AMQP_URI", None)
    config = load_config("gateway", env={"FUPIN_JWT_SECRET": "k"})
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["JWT_SECRET"] == "k"
    assert config["WEB_SERVER_ADDRESS"] == "127.0.0.1:8000"


def test_rules_come_from_config_and_unknown_keys_are_refused():
    from dataclasses import dataclass

    @dataclass
    class Rules:
        poverty_line: int = 4000

    assert rules_from_config({"RULES": {"poverty_line": 4200}}, Rules).poverty_line == 4200
    assert rules_from_config({}, Rules).poverty_line == 4000
    with pytest.raises(ValueError):
        rules_from_config({"RULES": {"povrty_line": 1}}, Rules)


def test_event_metadata_carries_actor_and_key():
    meta = command_metadata({"actor": {"id": "u1", "role": "township"}, "idempotency_key": "k1",
                             "correlation_id": "c1"})
    assert meta == {"actor": {"id": "u1", "role": "township"}, "correlation_id": "c1", "causation_id": None,
                    "idempotency_key": "k1"}
    assert command_metadata(None)["actor"] == {"id": "system", "role": "system"}


def test_demo_county_is_deterministic_and_at_seed_scale():
    county = generate(seed=7)
    assert county.steps == generate(seed=7).steps
    assert county.steps != generate(seed=8).steps
    s = county.summary
    assert (s["townships"], s["villages"], s["poor_villages"]) == (5, 13, 6)
    assert (s["households"], s["people"], s["cadres"], s["loans"]) == (389, 1045, 100, 40)
    assert s["loan_total"] == "1320000.00"
    small = generate(seed=7, households=40, cadres=10)
    assert small.summary["households"] == 40 and small.summary["cadres"] == 10


def test_demo_id_numbers_pass_the_gb11643_check_digit():
    number = id_number(date(1985, 3, 9), 17, female=True)
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    assert len(number) == 18 and number[6:14] == "19850309"
    assert number[17] == "10X98765432"[sum(int(d) * w for d, w in zip(number[:17], weights)) % 11]
    assert int(number[16]) % 2 == 0  # even sequence digit = female


def test_demo_id_numbers_do_not_repeat_in_a_scaled_county():
    """The registry refuses a second household member with an ID number already held, so the
    generator must never draw one twice, even at 2,000 cadres and 7,780 households."""
    county = generate(seed=7, households=7780, cadres=2000)
    numbers = [request[2]["id_number"] for _, _, requests in county.steps for request in requests
               if len(request) > 2 and isinstance(request[2], dict) and "id_number" in request[2]]
    assert len(numbers) > 15000
    assert len(numbers) == len(set(numbers))

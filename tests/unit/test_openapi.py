"""The OpenAPI document states what the API enforces (issue 15): generated from the same
marshmallow fields and validators, checked here without a platform. tests/api_fuzz runs
schemathesis against a live one."""
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from marshmallow import ValidationError
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi

from gateway import service  # noqa: F401 - registers every route
from gateway.app import ROUTES
from gateway.auth import SecurityRules, password_pattern, password_problems
from gateway.openapi import build_spec, openapi_path
from services.common.errors import ValidationFailed
from services.common.validation import (CONTROL_CHARACTERS, IDENTIFIER_PATTERN, UNSAFE_TEXT, YEAR_TEXT, Money, Month,
                                        Quantity, validate)
from services.common.values import FIRST_YEAR, LAST_YEAR
from services.credit import schemas as credit
from services.registry import schemas as registry

SPEC = build_spec()


def _walk(node, found):
    if isinstance(node, dict):
        found.append(node)
        for child in node.values():
            _walk(child, found)
    elif isinstance(node, list):
        for child in node:
            _walk(child, found)
    return found


def _component(name):
    return {**SPEC["components"]["schemas"][name], "components": SPEC["components"]}


def _valid(name, body):
    schema = _component(name)
    resolver_schema = {**schema}
    return OAS30Validator(resolver_schema).is_valid(body)


def test_the_document_is_valid_openapi_and_lists_every_route():
    validate_openapi(SPEC)
    for r in ROUTES:
        assert r.method.lower() in SPEC["paths"][openapi_path(r.path)], r.endpoint


def test_every_path_parameter_has_the_shape_the_gateway_checks():
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            for parameter in operation["parameters"]:
                if parameter["in"] == "path":
                    schema = parameter["schema"]
                    assert "pattern" in schema or "enum" in schema, (method, path, parameter)
    month = SPEC["paths"]["/api/v1/periods/{month}"]["get"]["parameters"][0]["schema"]
    assert month["pattern"] == Month().validators[0].regex.pattern


def _requests():
    """Every schema node of what a request carries: parameters and body schemas."""
    parameters = [operation["parameters"] for operations in SPEC["paths"].values() for operation in operations.values()]
    bodies = [schema for name, schema in SPEC["components"]["schemas"].items() if name != "Error"]
    return _walk(parameters, []) + _walk(bodies, [])


def test_every_string_says_what_text_it_takes_and_every_number_its_bounds():
    for node in _requests():
        if node.get("type") == "string" and "enum" not in node and "format" not in node:
            assert "pattern" in node, node
            assert re.compile(node["pattern"])  # Python reads it as the gateway does
        if node.get("type") in ("number", "integer"):
            assert "minimum" in node and "maximum" in node, node


def test_every_status_the_gateway_answers_is_documented():
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            assert {"400", "403", "404", "409", "422", "503"} <= set(operation["responses"]), (method, path)
            if method in ("post", "put", "patch"):
                assert "413" in operation["responses"], (method, path)
            if path != "/api/v1/openapi.json" and path != "/api/v1/auth/token":
                assert "401" in operation["responses"], (method, path)
    token = SPEC["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert {"401", "423", "429"} <= set(token)  # wrong password, locked account, too many attempts


def test_the_year_in_month_quarter_and_week_text_is_the_platforms_year():
    for year in range(FIRST_YEAR - 50, LAST_YEAR + 50):
        assert bool(re.fullmatch(YEAR_TEXT, str(year))) == (FIRST_YEAR <= year <= LAST_YEAR), year
    # "0000-Q1" was a 500 (date(0, 1, 1)); now it is a 400 naming the field
    with pytest.raises(ValidationFailed) as refused:
        validate(credit.SettleSubsidies(), {"quarter": "0000-Q1", "settled_on": "2023-06-05"})
    assert "quarter" in refused.value.details


def test_patterns_match_the_whole_text():
    # marshmallow's Regexp matched with `$`, which also matches before a final line feed
    for schema, body, field in ((credit.MonthQuery(), {"month": "2023-05\n"}, "month"),
                                (registry.RegisterTownship(), {"township_id": "T1\n", "name": "乡"}, "township_id")):
        with pytest.raises(ValidationFailed) as refused:
            validate(schema, body)
        assert field in refused.value.details


def test_ids_numbers_and_phones_take_ascii_digits_and_no_space_of_any_engine():
    for text in ("T\x851", "T\ufeff1", "T 1", "T/1"):
        assert not re.fullmatch(IDENTIFIER_PATTERN, text), text
    member = {"household_id": "H1", "name": "王伟", "relation": "head", "birth_date": "1980-02-03",
              "sex": "male", "labor_capacity": "full", "health": "healthy"}
    with pytest.raises(ValidationFailed) as refused:  # Arabic-Indic digits are \d to Python, not to ECMA 262
        validate(registry.AddMember(), {**member, "id_number": "١" * 17 + "X"})
    assert "id_number" in refused.value.details


def test_money_and_quantities_are_text_of_one_shape():
    money, zero_or_more = Money(), Quantity()
    assert money.deserialize("20000.00") == money.deserialize("20000")
    for bad in (" 20000", "1e3", "20000.001", "0.00", "-5", 20000):  # 20000: a number, not text (API.md)
        with pytest.raises(ValidationError):
            money.deserialize(bad)
        assert not (isinstance(bad, str) and re.fullmatch(money.text_pattern, bad))
    assert zero_or_more.deserialize("0") == 0
    with pytest.raises(ValidationError):
        zero_or_more.deserialize(2.5)


def test_one_borrower_is_stated_as_the_schema_checks_it():
    base = {"township_id": "T1", "amount": "20000.00", "industry": "tobacco", "term_months": 12,
            "applied_on": "2023-03-01"}
    for borrower, ok in (({"household_id": "H1"}, True), ({"enterprise_name": "合作社"}, True),
                         ({"household_id": "H1", "enterprise_name": None}, True),
                         ({"household_id": "H1", "enterprise_name": "合作社"}, False), ({}, False),
                         ({"household_id": None}, False)):
        body = {**base, **borrower}
        assert _valid("ApplyLoan", body) is ok, borrower
        if ok:
            validate(credit.ApplyLoan(), body)
        else:
            with pytest.raises(ValidationFailed):
                validate(credit.ApplyLoan(), body)


def test_a_scoped_role_names_its_scope_in_the_document_too():
    password = "Aa1" * 4
    assert _valid("NewUser", {"username": "u1", "password": password, "role": "unit", "scope": {"unit_id": "U1"}})
    assert not _valid("NewUser", {"username": "u1", "password": password, "role": "unit", "scope": {}})
    assert _valid("NewUser", {"username": "u1", "password": password, "role": "inspector"})
    assert not _valid("NewUser", {"username": "u1", "password": "short", "role": "inspector"})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_password_the_pattern_allows_meets_the_policy(data):
    rules = SecurityRules()
    password = data.draw(st.from_regex(password_pattern(rules), fullmatch=True))
    assert password_problems(password, rules) == []


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_no_pattern_of_the_document_allows_a_control_character(data):
    patterns = sorted({node["pattern"] for node in _requests() if isinstance(node.get("pattern"), str)})
    pattern = data.draw(st.sampled_from(patterns))
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    assert not UNSAFE_TEXT.search(text), (pattern, text)
    assert CONTROL_CHARACTERS  # the one definition both read


def test_the_scoring_rulebook_on_a_day_before_its_first_version_is_the_defaults():
    from datetime import date

    from services.assessment.facts import DEFAULT_RULES, ScoringRulebook

    book = ScoringRulebook()
    version, rules = book.rules(day=date(939, 7, 4))  # schemathesis found it: a 500
    assert version == 1 and rules["weights"] == DEFAULT_RULES["weights"]
    # a change dated before the defaults' 1900 holds over them from its day on: the weights stay whole
    book.apply({"version": 2, "changes": {"restriction_years": 3}, "published_on": "2023-01-01",
                "effective_from": "0138-04-27"})
    version, rules = book.rules(day=date(574, 6, 26))
    assert version == 2 and rules["restriction_years"] == 3 and rules["weights"] == DEFAULT_RULES["weights"]


def test_a_download_documents_the_media_type_of_each_format_it_offers():
    from services.common.web import MEDIA_TYPES

    pay_sheet = SPEC["paths"]["/api/v1/periods/{month}/pay-sheet"]["get"]["responses"]["200"]["content"]
    assert set(pay_sheet) == {MEDIA_TYPES["json"], MEDIA_TYPES["csv"], MEDIA_TYPES["xlsx"]}
    audit = SPEC["paths"]["/api/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert set(audit) == {MEDIA_TYPES["csv"], MEDIA_TYPES["json"]}
    assert set(SPEC["paths"]["/api/v1/households"]["get"]["responses"]["200"]["content"]) == {"application/json"}

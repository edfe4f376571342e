"""The guards under every schema: unsafe text, depth and numbers (services.common.validation)."""
from decimal import Decimal

import pytest
from marshmallow import Schema

from services.common.errors import ValidationFailed
from services.common.validation import BoundedDecimal, WholeNumber, unsafe_value_problems, validate


class Amount(Schema):
    amount = BoundedDecimal(required=True)
    count = WholeNumber()


@pytest.mark.parametrize("value", ["1e29", "1e15", "-1e15", "Infinity", "nan", 1e300, "1" * 40])
def test_bounded_decimal_refuses_what_no_county_counts(value):
    with pytest.raises(ValidationFailed) as refused:
        validate(Amount(), {"amount": value})
    assert "amount" in refused.value.details


def test_bounded_decimal_keeps_ordinary_amounts():
    assert validate(Amount(), {"amount": "999999999999.99"})["amount"] == Decimal("999999999999.99")


def test_whole_number_refuses_a_huge_exponent_without_expanding_it():
    with pytest.raises(ValidationFailed) as refused:
        validate(Amount(), {"amount": "1", "count": "1e100000000"})
    assert "count" in refused.value.details


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "\x1b[31m", "\x7f", "\uffff"])
def test_unsafe_text_is_named_by_its_field(text):
    assert unsafe_value_problems({"outer": [{"name": text}]}) == {"outer.0.name": [
        "contains a control character, NUL or an unpaired surrogate"]}


def test_tabs_and_line_breaks_are_ordinary_text():
    assert unsafe_value_problems({"note": "line one\r\nline two\tend", "n": 3, "ok": True, "x": None}) == {}


def test_depth_is_limited_without_recursion():
    value = 1
    for _ in range(100_000):
        value = [value]
    problems = unsafe_value_problems({"deep": value})
    assert list(problems.values()) == [["nested deeper than 20 levels"]]

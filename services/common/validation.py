"""Input checking at a service's door: marshmallow errors become a 400 with field messages.

Two guards sit under every schema, so no route has to remember them: `refuse_unsafe_values`
(text a database, a spreadsheet or a log line cannot hold, structures nested past any real
request, numbers no county ever counts) and `BoundedDecimal`, the base of every money, rate,
quantity and score field (a decimal too large to quantize was a 500).
"""
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields
from marshmallow import validate as checks

from .errors import ValidationFailed
from .values import FIRST_YEAR, LAST_YEAR


def parse_date(value: Any, name: str) -> Any:
    """A query argument that must be a date: ISO text or a date; anything else is a 400."""
    try:
        return value if isinstance(value, date) else date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} must be a date YYYY-MM-DD", {name: ["not a date"]}) from None


# NUL breaks PostgreSQL text, lone surrogates break UTF-8, and the other C0 controls (tab, line
# feed and carriage return stay allowed) break XLSX bulletins and log lines.
UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
MAX_DEPTH = 20
# No amount, quantity or count in a county reaches a thousand trillion; anything above is an
# attack or a typo, and past 1e28 Decimal arithmetic itself fails.
MAX_MAGNITUDE = Decimal("1e15")
MAX_DIGITS = 28


def _unsafe_number(number: Any) -> Any:
    if not number.is_finite():
        return "must be a finite number"
    if number and number.adjusted() >= MAX_MAGNITUDE.adjusted():  # no arithmetic: 1e999999999 overflows
        return f"must be smaller than {MAX_MAGNITUDE:,.0f}"
    if len(number.as_tuple().digits) > MAX_DIGITS:
        return f"at most {MAX_DIGITS} digits"
    return None


def unsafe_value_problems(value: Any, name: str = "_body") -> Any:
    """{field: [reason]} for every string, key or number in a JSON-like value that no field may
    hold, and for nesting deeper than MAX_DEPTH. Iterative: a hostile depth cannot recurse."""
    problems = {}
    pending = [(value, name, 0)]
    while pending:
        item, path, depth = pending.pop()
        if depth > MAX_DEPTH:
            problems[path] = [f"nested deeper than {MAX_DEPTH} levels"]
            continue
        if isinstance(item, str):
            if UNSAFE_TEXT.search(item):
                problems[path] = ["contains a control character, NUL or an unpaired surrogate"]
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float, Decimal)):
            try:
                reason = _unsafe_number(Decimal(item) if not isinstance(item, float) else Decimal(repr(item)))
            except (InvalidOperation, ValueError):
                reason = "not a number"
            if reason:
                problems[path] = [reason]
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = str(key) if path == "_body" else f"{path}.{key}"
                if isinstance(key, str) and UNSAFE_TEXT.search(key):
                    problems[path] = ["a field name contains a control character, NUL or an unpaired surrogate"]
                    continue
                pending.append((child, child_path, depth + 1))
        elif isinstance(item, (list, tuple)):
            for index, child in enumerate(item):
                pending.append((child, f"{path}.{index}", depth + 1))
    return problems


def refuse_unsafe_values(value: Any, name: str = "_body") -> None:
    problems = unsafe_value_problems(value, name)
    if problems:
        raise ValidationFailed("some values cannot be accepted", {
            key.encode("utf-8", "backslashreplace").decode("utf-8"): messages
            for key, messages in problems.items()})


class BoundedDecimal(fields.Decimal):
    """A decimal that is finite, below MAX_MAGNITUDE and of at most MAX_DIGITS digits; the base
    of every money, rate, quantity and score field, so their own checks (quantizing to fen)
    only ever see numbers that can be quantized."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("Not a valid number.")
        try:
            raw = Decimal(str(value).strip()) if isinstance(value, (str, int, float, Decimal)) else None
        except InvalidOperation:
            raw = None
        if raw is not None:
            reason = _unsafe_number(raw)
            if reason:
                raise ValidationError(reason)
        return super()._deserialize(value, attr, data, **kwargs)


class WholeNumber(fields.Integer):
    """An integer given as a number or digits; 10.5 is refused instead of truncated to 10."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError("Not a valid integer.") from None
        reason = _unsafe_number(number)
        if reason:
            raise ValidationError(reason)
        if number != number.to_integral_value():
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(int(number), attr, data, **kwargs)


class Flag(fields.Boolean):
    """A JSON true or false, nothing else: marshmallow's Boolean also takes 0, 1, "yes" and "on",
    which a JSON body never means as a yes/no (a body's `"poor_village": 0` is a 400, not False).
    Query strings, which are text, keep fields.Boolean."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        # an explicit type check: 0 == False and 1 == True, so truthy/falsy sets cannot tell them apart
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean: give true or false.")
        return value


def validate(schema: Any, data: dict[str, Any], partial: bool = False) -> Any:
    """Load `data` with a marshmallow schema instance; bad input raises ValidationFailed whose
    details map each field to its messages (nested fields as "parent.child")."""
    if not isinstance(data, dict):
        raise ValidationFailed("the request body must be a JSON object", {"_body": ["not an object"]})
    refuse_unsafe_values(data)
    try:
        return schema.load(data, partial=partial)
    except ValidationError as error:
        raise ValidationFailed("some fields are invalid", _flatten(error.messages)) from None


def validate_filters(schema: Schema, filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """A list's filters checked with the service's filter schema (the one the gateway's query
    schema extends); a filter given as None or "" is no filter."""
    return validate(schema, {name: value for name, value in (filters or {}).items() if value not in (None, "")})


def arguments(schema: Schema, **values: Any) -> dict[str, Any]:
    """A query's arguments checked with the service's query schema: `arguments(YearQuery(), year=y)`.
    An argument given as None is not given (an RPC's optional argument left out)."""
    return validate(schema, {name: value for name, value in values.items() if value is not None})


def _flatten(messages: Any, prefix: str = "") -> Any:
    flat = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(_flatten(value, name))
            else:
                flat[name] = value if isinstance(value, list) else [value]
    else:
        flat[prefix or "_body"] = messages if isinstance(messages, list) else [messages]
    return flat


class Money(BoundedDecimal):
    """Yuan, at most two decimals; greater than zero unless `allow_zero`. The one money field
    of every service; `description` and `example` are its OpenAPI text."""

    def __init__(self, allow_zero: bool = False, description: str = "yuan, two decimals", example: str = "20000.00",
                 **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        kwargs["metadata"] = {"type": "string", "example": example, "description": description,
                              **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        amount = super()._deserialize(value, attr, data, **kwargs)
        if not amount.is_finite():
            raise ValidationError("not a number")
        if amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("at most two decimal places (fen)")
        if amount < 0 or (amount == 0 and not self.allow_zero):
            raise ValidationError("must not be negative" if self.allow_zero else "must be greater than 0")
        return amount


class Year(WholeNumber):
    """A year from FIRST_YEAR to LAST_YEAR (a plan, an income, a quota), as a number or digits;
    `strict` takes a JSON integer only. The one year field of every service."""

    def __init__(self, strict: bool = False, **kwargs: Any) -> None:
        self.strict_year = strict
        kwargs.setdefault("validate", checks.Range(min=FIRST_YEAR, max=LAST_YEAR))
        kwargs["metadata"] = {"description": f"a year, {FIRST_YEAR}..{LAST_YEAR}", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if self.strict_year and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


MONTH_TEXT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class Month(fields.String):
    """A month as YYYY-MM text (kept as text). The one month field of every service."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"description": "YYYY-MM", "example": "2023-10", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not MONTH_TEXT.match(text):
            raise ValidationError("a month YYYY-MM")
        return text

"""Input checking at a service's door: marshmallow errors become a 400 with field messages.

Two guards sit under every schema, so no route has to remember them: `refuse_unsafe_values`
(text a database, a spreadsheet or a log line cannot hold, structures nested past any real
request, numbers no county ever counts) and `BoundedDecimal`, the base of every money, rate,
quantity and score field (a decimal too large to quantize was a 500).
"""
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
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
# feed and carriage return stay allowed) break XLSX bulletins and log lines. Written as regex
# escapes, so the same text serves Python here and the OpenAPI document's patterns (ECMA 262).
CONTROL_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff"
SURROGATES = r"\ud800-\udfff"
UNSAFE_TEXT = re.compile(f"[{CONTROL_CHARACTERS}{SURROGATES}]")
# What the OpenAPI document says of every string. Surrogates are not in it: no UTF-8 request can
# carry one (only a JSON escape can), and a pattern naming them is one no validator compiles.
SAFE_TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
# Python's \s and ECMA 262's differ (\x85, \ufeff): what any of them calls a space, spelt out.
WHITESPACE = r"\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# An id ends up in URLs and stream ids: no spaces, slashes, query characters or control characters.
IDENTIFIER_PATTERN = rf"^[^{WHITESPACE}/?#%\\{CONTROL_CHARACTERS}]{{1,64}}$"
# A year FIRST_YEAR..LAST_YEAR (2000..2100) inside a month, quarter, week or period text;
# tests/unit/test_openapi.py holds it to the two constants.
YEAR_TEXT = "(20[0-9]{2}|2100)"
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


class Pattern(checks.Regexp):
    """A regular expression the whole text must match. marshmallow's Regexp uses `match`, whose
    `$` also matches before a final line feed ("2023-05\\n" was a month). The pattern is written
    so ECMA 262 reads it the same way: the OpenAPI document carries it as it is."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


IDENTIFIER = Pattern(IDENTIFIER_PATTERN, error="1 to 64 characters without spaces, '/', '?', '#', '%' or '\\'")


def identifier(required: bool = True, **kwargs: Any) -> Any:
    """The one id field of every service."""
    return fields.String(required=required, validate=IDENTIFIER, **kwargs)


class BoundedDecimal(fields.Decimal):
    """A decimal that is finite, below MAX_MAGNITUDE and of at most MAX_DIGITS digits; the base
    of every money, rate, quantity and score field, so their own checks (quantizing to fen)
    only ever see numbers that can be quantized.

    `text_pattern`, when a subclass sets one, is the shape the API writes the value in (money
    "20000.00"): text must have it (" 1e3 " is not money), and the OpenAPI document says so."""

    text_pattern: str | None = None
    text_error = "Not a valid number."

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("Not a valid number.")
        if self.text_pattern and not (isinstance(value, Decimal) or  # a Decimal: a service's own call
                                      isinstance(value, str) and re.fullmatch(self.text_pattern, value)):
            raise ValidationError(self.text_error)
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


# below MAX_MAGNITUDE: at most 15 digits before the point
MONEY_TEXT = r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
POSITIVE_MONEY_TEXT = r"^(?=[0-9.]*[1-9])[0-9]{1,15}(\.[0-9]{1,2})?$"  # not all zeros


class Money(BoundedDecimal):
    """Yuan, at most two decimals; greater than zero unless `allow_zero`. The one money field
    of every service; `description` and `example` are its OpenAPI text."""

    text_error = "yuan as text with at most two decimals, like \"20000.00\""

    def __init__(self, allow_zero: bool = False, description: str = "yuan, two decimals", example: str = "20000.00",
                 **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        self.text_pattern = MONEY_TEXT if allow_zero else POSITIVE_MONEY_TEXT
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


MONTH_PATTERN = rf"^{YEAR_TEXT}-(0[1-9]|1[0-2])$"
MONTH_TEXT = re.compile(MONTH_PATTERN)  # for a month inside an event payload (fullmatch: see Pattern)
QUARTER_PATTERN = rf"^{YEAR_TEXT}-Q[1-4]$"


class Month(fields.String):
    """A month as YYYY-MM text (kept as text). The one month field of every service."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"description": "YYYY-MM", "example": "2023-10", **kwargs.get("metadata", {})}
        kwargs["validate"] = [Pattern(MONTH_PATTERN, error="a month YYYY-MM"), *_as_list(kwargs.get("validate"))]
        super().__init__(**kwargs)


WEEK_TEXT = re.compile(rf"{YEAR_TEXT}-W([0-9]{{2}})")
# Weeks 1 to 52 exist in every ISO year, week 53 only in some (2020, 2026): the document states
# the first, the field also takes week 53 of a year that has one.
EVERY_YEARS_WEEK_PATTERN = rf"^{YEAR_TEXT}-W(0[1-9]|[1-4][0-9]|5[0-2])$"


class Week(fields.String):
    """An ISO week `2023-W23` (it must exist: 2021-W53 does not). The one week field of every service."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"example": "2023-W23", "pattern": EVERY_YEARS_WEEK_PATTERN,
                              "description": "ISO week; W53 too in a year that has one", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        week = super()._deserialize(value, attr, data, **kwargs)
        match = WEEK_TEXT.fullmatch(week)
        if not match:
            raise ValidationError("an ISO week like 2023-W23")
        try:
            date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise ValidationError(f"{week} does not exist") from None
        return week


class Quantity(BoundedDecimal):
    """A quantity of work or progress (km, units, households): zero or more, as text."""

    text_pattern = r"^[0-9]{1,15}(\.[0-9]{1,13})?$"  # below MAX_MAGNITUDE, at most MAX_DIGITS digits
    text_error = "a number, not negative, like \"2.5\""

    def __init__(self, example: str = "2.5", **kwargs: Any) -> None:
        kwargs["metadata"] = {"type": "string", "example": example, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        quantity = super()._deserialize(value, attr, data, **kwargs)
        if quantity < 0:
            raise ValidationError("must not be negative")
        return quantity


def _as_list(validators: Any) -> list[Any]:
    if validators is None:
        return []
    return list(validators) if isinstance(validators, (list, tuple)) else [validators]


def exactly_one_of(*names: str) -> Any:
    """A schema rule: exactly one of these fields is given (present, not null). Declared in the
    schema's body (`one_borrower = exactly_one_of("household_id", "enterprise_name")`): marshmallow
    runs it, and the OpenAPI document reads `names` off it and states the rule as a oneOf."""
    def check(self: Schema, data: Mapping[str, Any], **kwargs: Any) -> None:
        if sum(data.get(name) is not None for name in names) != 1:
            raise ValidationError(f"give exactly one of {' or '.join(names)}", names[0])

    check.exactly_one_of = names  # type: ignore[attr-defined]
    return validates_schema(check)


def all_or_none_of(*names: str) -> Any:
    """A schema rule: these fields are given together (present, not null) or not at all; the
    OpenAPI document reads `names` off it, like `exactly_one_of`."""
    def check(self: Schema, data: Mapping[str, Any], **kwargs: Any) -> None:
        if 0 < sum(data.get(name) is not None for name in names) < len(names):
            raise ValidationError(f"{' and '.join(names)} go together", names[-1])

    check.all_or_none_of = names  # type: ignore[attr-defined]
    return validates_schema(check)


def documented(statement: dict[str, Any]) -> Any:
    """Put on a @validates_schema method: the JSON Schema that states its rule, which the OpenAPI
    document adds to the schema's own. Written beside the check, from the same constants."""
    def mark(method: Any) -> Any:
        method.openapi = statement
        return method
    return mark


class Distinct(checks.Validator):
    """No item of a list twice (the OpenAPI document says uniqueItems)."""

    def __call__(self, value: Any) -> Any:
        if len(set(value)) != len(value):
            raise ValidationError("an item is listed twice")
        return value


class DateOrDateTime(fields.String):
    """A date (a query means its end) or a date-time, ISO text, kept as text for the service
    to place in county time. `openapi` is its statement in the document."""

    openapi = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError("a date or a date-time, ISO (2023-06-30 or 2023-06-30T18:00:00+08:00)") from None
        return text

"""The assessment service's boundary contract: its commands and its queries as marshmallow
schemas (field types and code lists only), checked by the gateway and again by the service.

The scores' rules live in scoring.py and domain.py; these schemas say what a well-formed request
looks like.
"""
from marshmallow import Schema, ValidationError, fields, validate as v, validates_schema

from services.common.validation import YEAR_TEXT, BoundedDecimal, Month, Pattern, Week, WholeNumber, Year, documented

# Range validators, so the OpenAPI document states the bounds too.
_fraction = v.Range(0, 1, min_inclusive=False, error="must be a fraction between 0 and 1 (e.g. 0.95)")
_rate = v.Range(0, 1, error="must be a fraction from 0 to 1 (e.g. 0.95)")
_not_negative = v.Range(min=0, error="must not be negative")


SUBJECT_TYPES = ("unit", "cadre", "township")
RATINGS = ("good", "fair", "poor")
EXTERNAL_SOURCES = ("county", "city", "province", "third_party")  # an external 差 vetoes; a 好 earns a reward
SOURCES = ("internal", *EXTERNAL_SOURCES)
FORMATS = ("json", "csv", "xlsx")


class RecordRating(Schema):
    subject_type = fields.String(required=True, validate=v.OneOf(SUBJECT_TYPES))
    subject_id = fields.String(required=True, validate=v.Length(min=1))
    rating = fields.String(required=True, validate=v.OneOf(RATINGS),
                           metadata={"description": "good 好, fair 较好, poor 差"})
    source = fields.String(required=True, validate=v.OneOf(SOURCES))
    rated_on = fields.Date(required=True)


class RecordVeto(Schema):
    subject_type = fields.String(required=True, validate=v.OneOf(SUBJECT_TYPES))
    subject_id = fields.String(required=True, validate=v.Length(min=1))
    reason = fields.String(required=True, validate=v.Length(min=1))
    on = fields.Date(required=True)


RULE_KEYS = ("weights", "grade_bands", "monthly_performance_pay", "reward_per_external_good", "restriction_years",
             "loan_recovery_target", "rating_values")  # PublishRulebook's fields beside the dates and the reason


class PublishRulebook(Schema):
    """Any part of the rulebook to change, from `effective_from` on; the rest is what is in force. The
    keys facts.MOVED_RULES names (visits, residency days, disbursement target) live in other
    sections: PUT /api/v1/rulebook/<section>."""

    weights = fields.Dict(keys=fields.String(validate=v.OneOf(SUBJECT_TYPES)),
                          values=fields.Dict(keys=fields.String(), values=WholeNumber(validate=v.Range(min=0))))
    grade_bands = fields.Dict(keys=fields.String(validate=v.OneOf(("excellent", "good"))),
                              values=fields.Float(validate=v.Range(0, 100)))
    monthly_performance_pay = fields.Dict(keys=fields.String(validate=v.OneOf(("excellent", "good", "poor"))),
                                          values=BoundedDecimal(as_string=True, places=2))
    reward_per_external_good = BoundedDecimal(as_string=True, places=2, validate=_not_negative)
    restriction_years = WholeNumber(validate=v.Range(0, 10))  # 2.5 is refused, not cut to 2
    loan_recovery_target = BoundedDecimal(as_string=True, validate=_fraction)
    rating_values = fields.Dict(keys=fields.String(validate=v.OneOf(RATINGS)),
                                values=BoundedDecimal(as_string=True, validate=_rate))
    published_on = fields.Date(required=True)
    effective_from = fields.Date(metadata={"description": "the first day the new values hold (default published_on); "
                                                          "a score dated before keeps the earlier values"})
    reason = fields.String(allow_none=True, validate=v.Length(max=2000),
                           metadata={"description": "why (the county document that decided it)"})

    @validates_schema
    @documented({"anyOf": [{"required": [key]} for key in RULE_KEYS]})
    def some_rule(self, data, **kwargs):
        if not any(key in data for key in RULE_KEYS):
            raise ValidationError(f"name at least one rule to change: {', '.join(RULE_KEYS)}", "_schema")


assert set(RULE_KEYS) == set(PublishRulebook._declared_fields) - {"published_on", "effective_from", "reason"}


class CloseMonth(Schema):
    """月度考核定格: freeze the month's scores, grades and pay of every unit, cadre and township."""

    month = Month(required=True)
    on = fields.Date(required=True, metadata={"description": "the closing date; after the month's last day"})
    note = fields.String(load_default="", validate=v.Length(max=2000))


class ReopenMonth(Schema):
    month = Month(required=True)
    on = fields.Date(required=True)
    reason = fields.String(required=True, validate=v.Length(min=1, max=2000),
                           metadata={"description": "why the frozen results must change"})


COMMAND_SCHEMAS = {"record_rating": RecordRating, "record_veto": RecordVeto, "publish_rulebook": PublishRulebook,
                   "close_month": CloseMonth, "reopen_month": ReopenMonth}


# --- queries: the gateway's query schemas extend these, and the service checks the same again ---
class ScoreQuery(Schema):
    """A score card or a ranking: the period, the as-of date and, to recompute under another, a rulebook version."""

    period = fields.String(required=True, validate=Pattern(rf"^{YEAR_TEXT}(-Q[1-4]|-(0[1-9]|1[0-2]))?$",
                                                           error="use 2023, 2023-Q3 or 2023-05"))
    as_of = fields.Date(required=True)
    version = fields.Integer(metadata={"description": "scoring rulebook version to recompute under; default the one in force on the scoring date, min(period end, as_of)"})


class InFormat(Schema):
    """A report as JSON, or as a CSV or XLSX download."""

    format = fields.String(load_default="json", validate=v.OneOf(FORMATS))


class BulletinQuery(InFormat):
    week = Week(required=True)


class PeriodsQuery(Schema):
    year = Year(required=True)


class MonthArgument(Schema):
    """The month of /periods/<month> (a path value at the gateway)."""

    month = Month(required=True)


class PaySheetQuery(MonthArgument, InFormat):
    pass

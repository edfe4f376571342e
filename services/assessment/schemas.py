"""Commands of the assessment service (the gateway validates with these too)."""
from marshmallow import Schema, fields, validate as v

from services.common.validation import BoundedDecimal, Month

# Range validators, so the OpenAPI document states the bounds too.
_fraction = v.Range(0, 1, min_inclusive=False, error="must be a fraction between 0 and 1 (e.g. 0.95)")
_rate = v.Range(0, 1, error="must be a fraction from 0 to 1 (e.g. 0.95)")
_not_negative = v.Range(min=0, error="must not be negative")

SUBJECT_TYPES = ("unit", "cadre", "township")


class RecordRating(Schema):
    subject_type = fields.String(required=True, validate=v.OneOf(SUBJECT_TYPES))
    subject_id = fields.String(required=True, validate=v.Length(min=1))
    rating = fields.String(required=True, validate=v.OneOf(("good", "fair", "poor")),
                           metadata={"description": "good 好, fair 较好, poor 差"})
    source = fields.String(required=True, validate=v.OneOf(("internal", "county", "city", "province", "third_party")))
    rated_on = fields.Date(required=True)


class RecordVeto(Schema):
    subject_type = fields.String(required=True, validate=v.OneOf(SUBJECT_TYPES))
    subject_id = fields.String(required=True, validate=v.Length(min=1))
    reason = fields.String(required=True, validate=v.Length(min=1))
    on = fields.Date(required=True)


class PublishRulebook(Schema):
    """Any part of the rulebook to change; the rest is carried over from the newest version. The
    keys domain.MOVED_RULES names (visits, residency days, disbursement target) live in other
    sections now: PUT /api/v1/rulebook/<section>."""

    weights = fields.Dict(keys=fields.String(validate=v.OneOf(SUBJECT_TYPES)),
                          values=fields.Dict(keys=fields.String(), values=fields.Integer(validate=v.Range(min=0))))
    grade_bands = fields.Dict(keys=fields.String(validate=v.OneOf(("excellent", "good"))),
                              values=fields.Float(validate=v.Range(0, 100)))
    monthly_performance_pay = fields.Dict(keys=fields.String(validate=v.OneOf(("excellent", "good", "poor"))),
                                          values=BoundedDecimal(as_string=True, places=2))
    reward_per_external_good = BoundedDecimal(as_string=True, places=2, validate=_not_negative)
    restriction_years = fields.Integer(validate=v.Range(0, 10))
    loan_recovery_target = BoundedDecimal(as_string=True, validate=_fraction)
    rating_values = fields.Dict(keys=fields.String(validate=v.OneOf(("good", "fair", "poor"))),
                                values=BoundedDecimal(as_string=True, validate=_rate))
    published_on = fields.Date(required=True)


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

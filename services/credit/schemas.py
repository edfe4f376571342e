"""The credit service's commands as marshmallow schemas: field types and code lists only.

Business rules (step order, term and amount limits, borrowers, quotas, subsidies) live in
domain.py; these schemas say what a well-formed request looks like, for the service and the gateway.
"""
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.validation import (IDENTIFIER, POSITIVE_MONEY_TEXT, QUARTER_PATTERN, BoundedDecimal, Flag, Money,
                                       Month, Pattern, WholeNumber, Year, documented, exactly_one_of)

INDUSTRIES = ("tobacco", "sugarcane", "mulberry", "livestock", "off_season_vegetables", "other_farming",
              "non_production")
ID = IDENTIFIER
CENT = Decimal("0.01")
QUARTER = Pattern(QUARTER_PATTERN, error="a quarter like 2023-Q3")
STATUSES = ("applied", "village_reviewed", "recommended", "county_approved", "approved", "disbursed", "overdue",
            "settled", "rejected")


class Rate(BoundedDecimal):
    """A yearly interest rate as a fraction: 0.0435 is 4.35 %."""

    text_pattern = r"^0(\.[0-9]{1,6})?$"
    text_error = "a fraction from 0 up to (not including) 1 with at most six decimals, e.g. \"0.0435\""

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"type": "string", "example": "0.0435",
                              "description": "yearly rate as a fraction (0.0435 = 4.35 %)",
                              **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        rate = super()._deserialize(value, attr, data, **kwargs)
        if not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
            raise ValidationError("a fraction from 0 up to (not including) 1, e.g. 0.0435")
        if rate != rate.quantize(Decimal("0.000001")):
            raise ValidationError("at most six decimal places")
        return rate



def note(**kwargs):
    return fields.String(load_default="", validate=validate.Length(max=2000), **kwargs)


class AllocateQuota(Schema):
    township_id = fields.String(required=True, validate=ID)
    year = Year(required=True)
    amount = Money(required=True, metadata={"description": "yuan added to the township's loan plan for the year"})


class ApplyLoan(Schema):
    household_id = fields.String(load_default=None, allow_none=True, validate=ID,
                                 metadata={"description": "a registered household; or give enterprise_name"})
    enterprise_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200),
                                    metadata={"description": "an agricultural enterprise; or give household_id"})
    township_id = fields.String(required=True, validate=ID)
    amount = Money(required=True)
    industry = fields.String(required=True, validate=validate.OneOf(INDUSTRIES))
    term_months = WholeNumber(required=True, validate=validate.Range(min=1, max=120),
                              metadata={"description": "the county's limit (12 by default) is checked as a rule"})
    applied_on = fields.Date(required=True)

    one_borrower = exactly_one_of("household_id", "enterprise_name")


class LoanCommand(Schema):
    loan_id = fields.String(required=True, validate=ID)
    on = fields.Date(required=True)


class VillageReview(LoanCommand):
    passed = Flag(required=True)
    note = note()


class TownshipRecommendation(LoanCommand):
    recommended = Flag(required=True)
    note = note()


class CountyApproval(LoanCommand):
    approved = Flag(required=True)


class DecideLoan(LoanCommand):
    approved = Flag(required=True)
    reason = note()


class DisburseLoan(LoanCommand):
    annual_rate = Rate(required=True)


class RecordRepayment(LoanCommand):
    principal = Money(required=True, allow_zero=True)
    interest = Money(load_default=lambda: Decimal("0.00"), allow_zero=True,
                     metadata={"description": "yuan, two decimals; 0 when not given"})

    @validates_schema
    @documented({"anyOf": [{"properties": {"principal": {"pattern": POSITIVE_MONEY_TEXT}}},
                           {"required": ["interest"], "properties": {"interest": {"pattern": POSITIVE_MONEY_TEXT}}}]})
    def something_paid(self, data, **kwargs):
        if data.get("principal") == 0 and data.get("interest", 0) == 0:
            raise ValidationError("a repayment pays some principal or interest", "principal")


class SettleSubsidies(Schema):
    quarter = fields.String(required=True, validate=QUARTER, metadata={"example": "2023-Q3"})
    settled_on = fields.Date(required=True)


COMMAND_SCHEMAS = {
    "allocate_quota": AllocateQuota,
    "apply_loan": ApplyLoan,
    "village_review": VillageReview,
    "township_recommendation": TownshipRecommendation,
    "county_approval": CountyApproval,
    "decide_loan": DecideLoan,
    "disburse_loan": DisburseLoan,
    "record_repayment": RecordRepayment,
    "settle_subsidies": SettleSubsidies,
}


# --- queries: the gateway's query schemas extend these, and the service checks the same again ---
class LoanFilters(Schema):
    township_id = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    household_id = fields.String()


class YearQuery(Schema):
    year = Year(required=True)


class MonthQuery(Schema):
    month = Month(required=True)

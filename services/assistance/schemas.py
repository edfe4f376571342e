"""The assistance service's boundary contract: its commands and its queries as marshmallow
schemas (field types and code lists only), checked by the gateway and again by the service.

Business rules (pairing, visit dates, score and day ranges from the rulebook) live in domain.py.
`from` is a Python keyword, so those fields are declared as `start`/`from` with data_key and
attribute both "from": the API and the loaded dict both say `from`.
"""
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate

from services.common.validation import BoundedDecimal, Flag, IDENTIFIER, Month, identifier

RANKS = ("head", "leader", "staff")
STATIONING_ROLES = ("first_secretary", "member")



class Score(BoundedDecimal):
    """An exam score: a number with at most one decimal (87.5); the range is the rulebook's."""

    STEP = Decimal("0.1")
    openapi = {"multipleOf": float(STEP)}  # the OpenAPI document's statement of STEP

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"type": "number", "example": 88, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid number.")
        score = super()._deserialize(value, attr, data, **kwargs)
        if score != score.quantize(self.STEP):
            raise ValidationError("at most one decimal place")
        return score


def text(required=True, max_length=200, **kwargs):
    return fields.String(required=required, validate=validate.Length(min=1, max=max_length), **kwargs)


def note(max_length=2000, **kwargs):
    """Free text that may be empty."""
    return fields.String(load_default="", validate=validate.Length(max=max_length), **kwargs)


def start_date(description="first day"):
    return fields.Date(required=True, data_key="from", attribute="from", metadata={"description": description})


def until_date(description="last day (inclusive); empty = open-ended"):
    return fields.Date(load_default=None, allow_none=True, metadata={"description": description})


class RegisterUnit(Schema):
    unit_id = identifier()
    name = text()
    department = text(max_length=40, metadata={"description": "transport, water, power, ... (county list)"})
    parent_unit_id = fields.String(load_default=None, allow_none=True, validate=IDENTIFIER,
                                   metadata={"description": "the unit this one belongs to, if any"})


class RegisterCadre(Schema):
    cadre_id = identifier()
    unit_id = identifier()
    name = text()
    rank = fields.String(required=True, validate=validate.OneOf(RANKS),
                         metadata={"description": "head 主要负责人, leader 分管负责人/班子成员, staff"})
    deputy_section_or_above = Flag(load_default=False, metadata={"description": "副科级以上"})


class AssignVillage(Schema):
    unit_id = identifier()
    village_id = identifier()
    start = start_date("first day of the assignment (单位包村)")
    until = until_date()


class PairHousehold(Schema):
    cadre_id = identifier()
    household_id = identifier()
    start = start_date("first day of the pairing (干部包户)")


class EndPairing(Schema):
    pairing_id = identifier()
    until = fields.Date(required=True, metadata={"description": "last day of the pairing (inclusive)"})
    reason = text(max_length=2000)


class RecordVisit(Schema):
    cadre_id = identifier()
    household_id = identifier()
    visited_on = fields.Date(required=True)
    measures = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=list,
                           metadata={"description": "帮扶措施 taken"})
    outcome = note(metadata={"description": "帮扶成效"})
    changes = note(metadata={"description": "household changes noticed"})
    policy_explained = Flag(required=True)


class BatchVisit(RecordVisit):
    class Meta:
        exclude = ("cadre_id",)


class RecordVisits(Schema):
    """A cadre's visits synced at once (recorded offline); all are recorded or none."""

    cadre_id = identifier()
    visits = fields.List(fields.Nested(BatchVisit), required=True, validate=validate.Length(min=1, max=500))


class RecordVillageVisit(Schema):
    cadre_id = identifier()
    village_id = identifier()
    visited_on = fields.Date(required=True)
    purpose = note()


class RecordInspection(Schema):
    cadre_id = identifier()
    village_id = identifier()
    inspected_on = fields.Date(required=True)
    findings = note()


class RecordExamScore(Schema):
    cadre_id = identifier()
    exam_id = identifier()
    score = Score(required=True, metadata={"description": "0-100 by default (the county rulebook's range)"})
    taken_on = fields.Date(required=True)


class RecordAwarenessCheck(Schema):
    household_id = identifier()
    checked_on = fields.Date(required=True)
    passed = Flag(required=True)


class StationCadre(Schema):
    cadre_id = identifier()
    village_id = identifier()
    role = fields.String(required=True, validate=validate.OneOf(STATIONING_ROLES),
                         metadata={"description": "first_secretary 第一书记 or member"})
    start = start_date("first day in the work team")
    until = until_date()


class ReportResidency(Schema):
    cadre_id = identifier()
    month = Month(required=True)
    days = fields.Integer(required=True, strict=True, validate=validate.Range(0, 31),
                          metadata={"description": "days in the village that month"})


COMMAND_SCHEMAS = {
    "register_unit": RegisterUnit,
    "register_cadre": RegisterCadre,
    "assign_village": AssignVillage,
    "pair_household": PairHousehold,
    "end_pairing": EndPairing,
    "record_visit": RecordVisit,
    "record_visits": RecordVisits,
    "record_village_visit": RecordVillageVisit,
    "record_inspection": RecordInspection,
    "record_exam_score": RecordExamScore,
    "record_awareness_check": RecordAwarenessCheck,
    "station_cadre": StationCadre,
    "report_residency": ReportResidency,
}


# --- queries: the gateway's query schemas extend these, and the service checks the same again ---
class AsOfQuery(Schema):
    """A cadre's overdue visits or a unit's summary as of a date."""

    as_of = fields.Date(required=True)

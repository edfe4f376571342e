"""The registry's commands as marshmallow schemas: field types and code lists only.

Rules (GB 11643 check digit, uniqueness of ID numbers, exit and monitoring conditions) live in
domain.py; these schemas say what a well-formed request looks like, for the service and the
gateway (which validates request bodies plus path ids with them).
"""
from decimal import Decimal

from marshmallow import Schema, fields, validate

from services.common.validation import IDENTIFIER, Flag, Money, Pattern, Year

POVERTY_CAUSES = ("illness", "disability", "schooling", "disaster", "lack_of_land", "lack_of_water",
                  "lack_of_skills", "lack_of_labour", "lack_of_capital", "poor_transport", "lack_of_motivation")
SEXES = ("male", "female")
RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")
LABOR_CAPACITIES = ("full", "weak", "none")
HEALTH = ("healthy", "chronic", "serious_illness", "disabled")
HOUSING_GRADES = ("A", "B", "C", "D")
RISK_TYPES = ("unstable", "marginal", "sudden_hardship")
REMOVAL_REASONS = ("death", "moved_out", "other")
STATUSES = ("poor", "exited", "monitored")  # monitored: never poor, registered for monitoring only (边缘易致贫户)
CENT = Decimal("0.01")

ID_NUMBER = Pattern(r"^[0-9]{17}[0-9Xx]$", error="18 characters: 17 digits and a digit or X")
PHONE = Pattern(r"^\+?[0-9]{7,15}$", error="7 to 15 digits")


def text(required=True, max_length=200, **kwargs):
    return fields.String(required=required, validate=validate.Length(min=1, max=max_length), **kwargs)


def code(**kwargs):
    return fields.String(required=True, validate=IDENTIFIER, **kwargs)


class RegisterTownship(Schema):
    township_id = code()
    name = text()


class RegisterVillage(Schema):
    village_id = code()
    township_id = code()
    name = text()
    poor_village = Flag(load_default=False, metadata={"description": "a registered poor village (贫困村)"})


class RegisterHousehold(Schema):
    household_no = code(metadata={"description": "the county-unique household number (户编号)"})
    village_id = code()
    head_name = text(max_length=100)
    poverty_causes = fields.List(fields.String(validate=validate.OneOf(POVERTY_CAUSES)), required=True,
                                 metadata={"description": "致贫原因"})
    registered_on = fields.Date(required=True)
    five_guarantees = Flag(load_default=False, metadata={"description": "a 五保 household"})
    status = fields.String(load_default="poor", validate=validate.OneOf(("poor", "monitored")),
                           metadata={"description": "poor (建档立卡 poor household, the default) or monitored: a "
                                                    "never-poor household registered for monitoring only (边缘易致贫户)"})
    risk_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("marginal", "sudden_hardship")),
                              metadata={"description": "for status monitored: marginal or sudden_hardship"})
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=2000),
                           metadata={"description": "for status monitored: why it is monitored"})


class HouseholdCommand(Schema):
    household_id = code()


class AddMember(HouseholdCommand):
    name = text(max_length=100)
    id_number = fields.String(required=True, validate=ID_NUMBER,
                              metadata={"description": "身份证号, 18 characters with the GB 11643 check digit"})
    relation = fields.String(required=True, validate=validate.OneOf(RELATIONS))
    birth_date = fields.Date(required=True)
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    labor_capacity = fields.String(required=True, validate=validate.OneOf(LABOR_CAPACITIES))
    health = fields.String(required=True, validate=validate.OneOf(HEALTH))
    schooling = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100),
                              metadata={"description": "schooling status"})
    phone = fields.String(load_default=None, allow_none=True, validate=PHONE)


class UpdateMember(HouseholdCommand):
    person_id = code()
    name = text(required=False, max_length=100)
    id_number = fields.String(validate=ID_NUMBER)
    relation = fields.String(validate=validate.OneOf(RELATIONS))
    birth_date = fields.Date()
    sex = fields.String(validate=validate.OneOf(SEXES))
    labor_capacity = fields.String(validate=validate.OneOf(LABOR_CAPACITIES))
    health = fields.String(validate=validate.OneOf(HEALTH))
    schooling = fields.String(allow_none=True, validate=validate.Length(max=100))
    phone = fields.String(allow_none=True, validate=PHONE)


class RemoveMember(HouseholdCommand):
    person_id = code()
    reason = fields.String(required=True, validate=validate.OneOf(REMOVAL_REASONS))
    removed_on = fields.Date(required=True)


class AssessIncome(HouseholdCommand):
    year = Year(strict=True, required=True)
    per_capita_income = Money(allow_zero=True, required=True, description="yuan per person per year", example="4500.00")
    assessed_on = fields.Date(required=True)


class AssessAssurances(HouseholdCommand):
    assessed_on = fields.Date(required=True)
    food = Flag(required=True)
    clothing = Flag(required=True)
    education = Flag(required=True, metadata={"description": "compulsory education assured"})
    medical = Flag(required=True, metadata={"description": "basic medical insurance"})
    housing_grade = fields.String(required=True, validate=validate.OneOf(HOUSING_GRADES),
                                  metadata={"description": "A/B safe, C repair, D rebuild"})
    drinking_water = Flag(required=True, metadata={"description": "safe drinking water"})


class ExitHousehold(HouseholdCommand):
    year = Year(strict=True, required=True)
    exited_on = fields.Date(required=True)


class FlagMonitoring(HouseholdCommand):
    risk_type = fields.String(required=True, validate=validate.OneOf(RISK_TYPES))
    reason = text(max_length=2000)
    flagged_on = fields.Date(required=True)


class ClearMonitoring(HouseholdCommand):
    cleared_on = fields.Date(required=True)


class ReturnToPoverty(HouseholdCommand):
    returned_on = fields.Date(required=True)
    reason = text(max_length=2000)


class NamePolicyInformant(HouseholdCommand):
    person_id = code()
    named_on = fields.Date(required=True)


COMMAND_SCHEMAS = {
    "register_township": RegisterTownship,
    "register_village": RegisterVillage,
    "register_household": RegisterHousehold,
    "add_member": AddMember,
    "update_member": UpdateMember,
    "remove_member": RemoveMember,
    "assess_income": AssessIncome,
    "assess_assurances": AssessAssurances,
    "exit_household": ExitHousehold,
    "flag_monitoring": FlagMonitoring,
    "clear_monitoring": ClearMonitoring,
    "return_to_poverty": ReturnToPoverty,
    "name_policy_informant": NamePolicyInformant,
}


# --- queries: the gateway's query schemas extend these, and the service checks the same again ---
class HouseholdFilters(Schema):
    village_id = fields.String()
    township_id = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    monitored = fields.Boolean()


class YearQuery(Schema):
    year = Year(required=True)

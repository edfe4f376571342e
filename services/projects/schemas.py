"""The projects service's commands as marshmallow schemas: field types and code lists only.

Business rules (lifecycle order, funds, deadlines) live in domain.py; these schemas say what a
well-formed request looks like, for the service, the gateway and each row of an import.
"""
from decimal import Decimal

from marshmallow import Schema, fields, validate, validates_schema

from services.common.errors import RuleRefused
from services.common.validation import (CONTROL_CHARACTERS, IDENTIFIER, Distinct, Money, Pattern, Quantity, WholeNumber,
                                       Year)

CATEGORIES = ("village_road", "road_repair", "bridge", "road_safety", "water_supply", "grid_upgrade",
              "clinic", "relocation_housing", "house_renovation", "other")
LEVELS = ("county", "township")
FUNDING_SOURCES = ("central", "provincial", "county", "integrated", "other")
IMPORT_KINDS = ("projects", "progress")
STATUSES = ("planned", "started", "completed", "accepted", "cancelled")

PROJECT_CODE = IDENTIFIER  # a department's own project code ends up in URLs
# bulk_import.read_table reads a file by its name's ending, in any case
BASE64 = Pattern(r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$", error="not valid base64")
IMPORT_FILENAME = Pattern(rf"^[^{CONTROL_CHARACTERS}]*\.([cC][sS][vV]|[xX][lL][sS][xX])$",
                          error="only .csv and .xlsx files can be imported")
CENT = Decimal("0.01")


def text(required=True, max_length=200, **kwargs):
    return fields.String(required=required, validate=validate.Length(min=1, max=max_length), **kwargs)


class FundingSource(Schema):
    source = fields.String(required=True, validate=validate.OneOf(FUNDING_SOURCES))
    amount = Money(required=True)


class PlanProject(Schema):
    project_id = fields.String(validate=PROJECT_CODE, metadata={
        "description": "the department's own project code; planning the same code again with the same "
                       "content changes nothing, with different content is a 409"})
    title = text()
    department = text(max_length=40)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    township_id = text(max_length=64)
    village_ids = fields.List(fields.String(validate=IDENTIFIER), load_default=list, validate=Distinct(),
                              metadata={"description": "the administrative villages the project serves"})
    planned_quantity = Quantity(required=True)
    quantity_unit = text(max_length=20, metadata={"description": "km, units, households, ..."})
    budget = Money(required=True)
    funding_sources = fields.List(fields.Nested(FundingSource), load_default=list,
                                  metadata={"description": "when given, the amounts add up to the budget"})
    plan_year = Year(required=True)
    deadline = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "defaults to 31 August (county level) or 30 November (township level) of the plan year"})

    @validates_schema
    def no_repeats(self, data, **kwargs):
        sources = [item["source"] for item in data.get("funding_sources") or []]
        if len(set(sources)) != len(sources):  # unique by key, which JSON Schema cannot say: a rule, 422
            raise RuleRefused("a funding source is listed twice", {"rule": "funding_source_once",
                                                                    "field": "funding_sources"})


class ProjectCommand(Schema):
    project_id = fields.String(required=True, validate=PROJECT_CODE)


class StartProject(ProjectCommand):
    on = fields.Date(required=True)


class ReportProgress(ProjectCommand):
    reported_on = fields.Date(required=True)
    percent_complete = WholeNumber(required=True, validate=validate.Range(min=0, max=100))
    quantity_done = Quantity(load_default=None, allow_none=True)
    problems = fields.String(load_default="", validate=validate.Length(max=2000))


class CompleteProject(ProjectCommand):
    on = fields.Date(required=True)
    quantity_done = Quantity(load_default=None, allow_none=True,
                             metadata={"description": "defaults to the planned quantity"})


class AcceptProject(ProjectCommand):
    on = fields.Date(required=True)


class CancelProject(ProjectCommand):
    on = fields.Date(required=True)
    reason = text(max_length=2000)


class AllocateFunds(ProjectCommand):
    amount = Money(required=True)
    source = fields.String(required=True, validate=validate.OneOf(FUNDING_SOURCES))
    on = fields.Date(required=True)


class DisburseFunds(ProjectCommand):
    amount = Money(required=True)
    on = fields.Date(required=True)
    payee = text(metadata={"description": "the contractor paid"})


class ImportProjects(Schema):
    filename = fields.String(required=True, validate=[validate.Length(min=1, max=255), IMPORT_FILENAME],
                             metadata={"description": "ends in .csv or .xlsx"})
    content_base64 = fields.String(required=True, validate=BASE64, metadata={"format": "byte"})
    kind = fields.String(load_default="projects", validate=validate.OneOf(IMPORT_KINDS))
    department = fields.String(load_default=None, allow_none=True, metadata={
        "description": "when given, every row must be (or belong to a project) of this department"})


COMMAND_SCHEMAS = {
    "plan_project": PlanProject,
    "start_project": StartProject,
    "report_progress": ReportProgress,
    "complete_project": CompleteProject,
    "accept_project": AcceptProject,
    "cancel_project": CancelProject,
    "allocate_funds": AllocateFunds,
    "disburse_funds": DisburseFunds,
    "import_projects": ImportProjects,
}


# --- queries: the gateway's query schemas extend these, and the service checks the same again ---
class ProjectFilters(Schema):
    department = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    plan_year = Year()
    township_id = fields.String()
    village_id = fields.String()


class StatisticsQuery(Schema):
    plan_year = Year(required=True)
    as_of = fields.Date(required=True)

"""The supervision service's commands as marshmallow schemas: field types and code lists only.

Business rules (dates inside the campaign, who is responsible, the problem lifecycle) live in
domain.py; these schemas say what a well-formed request looks like.
"""
from marshmallow import Schema, fields, validate, validates_schema

from services.common.errors import RuleRefused

from services.common.validation import IDENTIFIER, Distinct, Flag, Quantity, Week, all_or_none_of

PROBLEM_SOURCES = ("supervision", "inspection", "spot_check", "third_party")
PROBLEM_STATUSES = ("open", "awaiting_verification", "closed", "overdue")
ALL_TOWNSHIPS = "all_townships"

CODE = IDENTIFIER


def text(required=True, max_length=200, **kwargs):
    return fields.String(required=required, validate=validate.Length(min=1, max=max_length), **kwargs)


def code(required=True, **kwargs):
    return fields.String(required=required, validate=CODE, **kwargs)


class Phase(Schema):
    name = text(max_length=100)
    from_ = fields.Date(required=True, data_key="from")
    until = fields.Date(required=True)


class LaunchCampaign(Schema):
    campaign_id = code()
    name = text()
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    phases = fields.List(fields.Nested(Phase), load_default=list)


class Target(Schema):
    target_id = code()
    name = text()
    unit_of_measure = text(max_length=20, metadata={"description": "km, units, households, ..."})
    quantity = Quantity(required=True)
    by_township = fields.Dict(keys=fields.String(validate=CODE), values=Quantity(), load_default=dict,
                              metadata={"description": "township id → its share of the quantity (optional)"})


class Milestone(Schema):
    milestone_id = code(required=False, metadata={"description": "defaults to m1, m2, ... in order"})
    what = text(max_length=500)
    due_on = fields.Date(required=True)
    target_id = code(required=False, metadata={
        "description": "with quantity: met once the reported progress of this target reaches it"})
    quantity = Quantity(load_default=None, allow_none=True)

    target_and_quantity_together = all_or_none_of("target_id", "quantity")


class AddAction(Schema):
    campaign_id = code()
    action_id = code()
    name = text()
    lead = text(max_length=100, metadata={"description": "the county leader in charge (责任领导)"})
    responsible_units = fields.List(code(), required=True, validate=[validate.Length(min=1), Distinct()], metadata={
        "description": "unit ids, department codes, or `all_townships` (责任单位)"})
    townships = fields.List(code(), load_default=None, allow_none=True, metadata={
        "description": "the townships `all_townships` stands for (default: those of the targets' by_township)"})
    targets = fields.List(fields.Nested(Target), load_default=list)
    milestones = fields.List(fields.Nested(Milestone), load_default=list)

    @validates_schema
    def no_repeats(self, data, **kwargs):
        # an id twice among a list's objects: a rule about the request as a whole (JSON Schema
        # cannot say "unique by key"), so 422 like the other rules
        for name, key in (("targets", "target_id"), ("milestones", "milestone_id")):
            ids = [item.get(key) for item in data.get(name) or [] if item.get(key) is not None]
            if len(set(ids)) != len(ids):
                raise RuleRefused(f"a {key} is listed twice", {"rule": f"{key}_once", "field": name})


class ReportItem(Schema):
    action_id = code()
    target_id = code()
    progress = Quantity(required=True, metadata={"description": "the quantity done so far (cumulative)"})
    problems = fields.String(load_default="", validate=validate.Length(max=2000))


class SubmitWeeklyReport(Schema):
    campaign_id = code()
    unit_id = code(metadata={"description": "the reporting unit: a unit id, a department code or a township id"})
    week = Week(required=True)
    items = fields.List(fields.Nested(ReportItem), required=True, validate=validate.Length(min=1))
    signed_off_by = text(max_length=64, metadata={"description": "the unit's head (a cadre id)"})
    reported_at = fields.DateTime(load_default=None, allow_none=True, metadata={
        "description": "ISO date-time; without an offset it is county time; default now"})
    signer = fields.Dict(load_default=None, allow_none=True, metadata={
        "description": "filled by the gateway: the signing cadre's unit, department and rank"})

    @validates_schema
    def one_item_per_target(self, data, **kwargs):
        keys = [(item["action_id"], item["target_id"]) for item in data.get("items") or []]
        if len(set(keys)) != len(keys):  # unique by key: see AddAction.no_repeats
            raise RuleRefused("a target is reported twice", {"rule": "target_reported_once", "field": "items"})


class MarkMilestone(Schema):
    campaign_id = code()
    action_id = code()
    milestone_id = code()
    on = fields.Date(required=True)


class RecordProblem(Schema):
    problem_id = code(required=False)
    source = fields.String(required=True, validate=validate.OneOf(PROBLEM_SOURCES))
    found_on = fields.Date(required=True)
    description = text(max_length=2000)
    unit_id = code(metadata={"description": "the responsible unit: a unit id, a department code or a township id"})
    township_id = code(required=False, allow_none=True)
    household_id = code(required=False, allow_none=True)
    deadline = fields.Date(required=True)
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200), metadata={
        "description": "what it was found in: an inspection, a spot check, a report"})


class ProblemCommand(Schema):
    problem_id = code()


class RecordMeasures(ProblemCommand):
    on = fields.Date(required=True)
    measures = text(max_length=2000)


class RequestClosure(ProblemCommand):
    on = fields.Date(required=True)


class VerifyProblem(ProblemCommand):
    on = fields.Date(required=True)
    accepted = Flag(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))


COMMAND_SCHEMAS = {
    "launch_campaign": LaunchCampaign,
    "add_action": AddAction,
    "submit_weekly_report": SubmitWeeklyReport,
    "mark_milestone": MarkMilestone,
    "record_problem": RecordProblem,
    "record_measures": RecordMeasures,
    "request_closure": RequestClosure,
    "verify_problem": VerifyProblem,
}


# --- queries: the gateway's query schemas extend these, and the service checks the same again ---
class ProblemFilters(Schema):
    unit_id = fields.String()
    township_id = fields.String()
    source = fields.String()
    status = fields.String(validate=validate.OneOf(PROBLEM_STATUSES))


class ScopedProblemFilters(ProblemFilters):
    """What the gateway adds for a scoped caller: its own problems and those found in its township."""

    party = fields.String()
    unit_ids = fields.List(fields.String())

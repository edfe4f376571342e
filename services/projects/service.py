"""The projects service: nameko entrypoints only; rules are in domain.py and bulk_import.py."""
import base64
import binascii
import uuid

from services.common.rpc import rpc

from services.common.chassis import CountySectionFollower, EventSourcedService
from services.common.events import history_item
from services.common.errors import NotFound, ValidationFailed
from services.common.pagination import decode_cursor, page, page_limit
from services.common.validation import arguments, validate, validate_filters

from . import bulk_import, domain, projections, schemas

STREAM = "project"


class ProjectsService(EventSourcedService, CountySectionFollower):
    name = "projects"
    projections = projections
    rules_class = domain.Rules  # this service's section of the county rulebook
    owners = {"project": (projections.projects, "project_id", ("department",))}

    def _run(self, command_name, data, context, decide):
        command = validate(schemas.COMMAND_SCHEMAS[command_name](), data)
        return self.handle(
            command_name, stream_type=STREAM, stream_id=command["project_id"], evolve=domain.evolve,
            decide=lambda state: decide(state, command),
            result=lambda state, stored: {**domain.project_view(state), "events": [e.type for e in stored]},
            context=context,
        )

    # --- commands -------------------------------------------------------------------------------
    @rpc
    def plan_project(self, data, context=None):
        """Plan a project; a department's own code as `project_id` makes the plan idempotent."""
        if isinstance(data, dict) and not data.get("project_id"):
            data = {**data, "project_id": str(uuid.uuid4())}
        rules = self.rules
        return self._run("plan_project", data, context,
                         lambda state, command: domain.decide_plan(state, command, rules))

    @rpc
    def start_project(self, data, context=None):
        return self._run("start_project", data, context, domain.decide_start)

    @rpc
    def report_progress(self, data, context=None):
        return self._run("report_progress", data, context, domain.decide_report_progress)

    @rpc
    def complete_project(self, data, context=None):
        return self._run("complete_project", data, context, domain.decide_complete)

    @rpc
    def accept_project(self, data, context=None):
        return self._run("accept_project", data, context, domain.decide_accept)

    @rpc
    def cancel_project(self, data, context=None):
        return self._run("cancel_project", data, context, domain.decide_cancel)

    @rpc
    def allocate_funds(self, data, context=None):
        return self._run("allocate_funds", data, context, domain.decide_allocate)

    @rpc
    def disburse_funds(self, data, context=None):
        return self._run("disburse_funds", data, context, domain.decide_disburse)

    @rpc
    def import_projects(self, data, context=None):
        """Apply every row of a CSV/XLSX of projects or progress rows in one transaction, or none:
        a bad row makes it a ValidationFailed whose details.rows list each bad row's reasons."""
        command = validate(schemas.ImportProjects(), data)
        try:
            content = base64.b64decode(command["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("content_base64 is not base64", {"content_base64": ["not valid base64"]}) from None
        rules, kind, department = self.rules, command["kind"], command["department"]
        rows = bulk_import.read_table(command["filename"], content, kind, rules)

        def work(streams):
            referenced = bulk_import.referenced_projects(rows)
            streams.lock(*((STREAM, project_id) for project_id in referenced))
            states = {project_id: streams.load(STREAM, project_id, domain.evolve) for project_id in referenced}
            plan = bulk_import.plan_import(kind, rows, states, rules, department)
            appended = sum(len(streams.append(STREAM, project_id, new_events))
                           for project_id, new_events in plan.streams.items())
            return {"kind": kind, "filename": command["filename"], "applied": len(plan.rows),
                    "unchanged": sum(1 for row in plan.rows if not row["events"]), "events": appended,
                    "rows": plan.rows}

        return self.handle_streams("import_projects", work, context)

    # --- queries --------------------------------------------------------------------------------
    @rpc
    def get_project(self, project_id):
        """One project with its history (its events, oldest first)."""
        with self.db.new_session() as session:
            row = projections.find_project(session, project_id)
            if row is None:
                raise NotFound(f"no project {project_id}", {"project_id": project_id})
            view = projections.row_view(row)
        view["history"] = [history_item(event) for event in self.stream_events(STREAM, project_id)]
        return view

    @rpc
    def list_projects(self, filters=None, limit=None, cursor=None):
        filters, limit = validate_filters(schemas.ProjectFilters(), filters), page_limit(limit)
        with self.db.new_session() as session:
            rows = projections.list_projects(session, filters, limit, decode_cursor(cursor))
            result = page([projections.row_view(row) for row in rows], limit, key=lambda item: item["project_id"])
        return result

    @rpc
    def department_statistics(self, department, plan_year, as_of):
        """Counts by status, overdue, on-time completion and funds of a department's projects of
        one plan year as of a date, with the disbursement target (95 % by 30 September)."""
        query = arguments(schemas.StatisticsQuery(), plan_year=plan_year, as_of=as_of)
        plan_year, as_of = query["plan_year"], query["as_of"]
        with self.db.new_session() as session:
            facts, movements = projections.department_facts(session, department, plan_year)
        return domain.department_statistics(department, plan_year, as_of, facts, movements, self.rules_on(as_of))

    @rpc
    def village_infrastructure(self, village_id):
        """The road, water and power projects serving a village, and their state."""
        with self.db.new_session() as session:
            return domain.village_infrastructure(village_id, projections.village_projects(session, village_id))

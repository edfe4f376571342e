"""Projects: departments post plans, progress, completion, acceptance and funds."""
from typing import Any

from ..app import ANY_SIGNED_IN, command, ListQuery, RequestContext, route
from ..contracts import projects
from ..scopes import department_of_project, require_department

DEPARTMENT_WRITERS = ("admin", "department")


def own_new_project(ctx: RequestContext, data: dict[str, Any]) -> None:
    require_department(ctx, data.get("department"))


def own_project(ctx: RequestContext, data: dict[str, Any]) -> None:
    if ctx.role == "department":  # the one role confined to its projects: no lookup for the others
        require_department(ctx, department_of_project(ctx, data["project_id"]))


command("POST", "/api/v1/projects", "projects", "plan_project", roles=DEPARTMENT_WRITERS, authorize=own_new_project)
for path, rpc_method, status in (
    ("start", "start_project", 200),
    ("progress", "report_progress", 201),
    ("complete", "complete_project", 200),
    ("accept", "accept_project", 200),
    ("cancel", "cancel_project", 200),
    ("allocations", "allocate_funds", 201),
    ("disbursements", "disburse_funds", 201),
):
    command("POST", f"/api/v1/projects/<project_id>/{path}", "projects", rpc_method,
            roles=DEPARTMENT_WRITERS, authorize=own_project, status=status)


@route("POST", "/api/v1/projects/import", roles=DEPARTMENT_WRITERS, body=("projects", "import_projects"), status=201,
       tag="projects")
def import_projects(ctx: RequestContext) -> Any:
    """Apply a CSV or XLSX of projects (or progress rows): every row, or none with each bad row's reason."""
    data = dict(ctx.raw_body)
    if ctx.role == "department":
        require_department(ctx, data.setdefault("department", ctx.scope("department")))
    return ctx.command("projects", "import_projects", data)


class ProjectQuery(ListQuery, projects.ProjectFilters):
    """Projects by department, status, plan year, township and village, a page at a time."""


@route("GET", "/api/v1/projects", roles=ANY_SIGNED_IN, query=ProjectQuery, tag="projects")
def list_projects(ctx: RequestContext) -> Any:
    """Projects by department, status, plan year, township and village."""
    filters = {k: ctx.query[k] for k in ("department", "status", "plan_year", "township_id", "village_id")
               if k in ctx.query}
    if ctx.role == "department":  # a department lists only its own projects
        require_department(ctx, filters.setdefault("department", ctx.scope("department")))
    return ctx.call("projects", "list_projects", filters, ctx.query["limit"], ctx.query["cursor"])


@route("GET", "/api/v1/projects/<project_id>", roles=ANY_SIGNED_IN, tag="projects")
def get_project(ctx: RequestContext) -> Any:
    """One project with its history."""
    project = ctx.call("projects", "get_project", ctx.path_values["project_id"])
    require_department(ctx, project["department"])
    return project


class DepartmentStatsQuery(ListQuery, projects.StatisticsQuery):
    pass


@route("GET", "/api/v1/departments/<department>/statistics", roles=ANY_SIGNED_IN, query=DepartmentStatsQuery,
       tag="projects")
def department_statistics(ctx: RequestContext) -> Any:
    """Counts by status, overdue, on-time completion, funds and the 95 %-by-30-September target."""
    require_department(ctx, ctx.path_values["department"])
    return ctx.call("projects", "department_statistics", ctx.path_values["department"],
                    ctx.query["plan_year"], ctx.query["as_of"].isoformat())


@route("GET", "/api/v1/villages/<village_id>/infrastructure", roles=ANY_SIGNED_IN, tag="projects")
def village_infrastructure(ctx: RequestContext) -> Any:
    """Which road, water and power projects serve the village, and their state."""
    return ctx.call("projects", "village_infrastructure", ctx.path_values["village_id"])

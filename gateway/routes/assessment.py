"""Assessment: scores, rankings, ratings, vetoes, the rulebook and the weekly bulletin."""
import base64
import re

from marshmallow import ValidationError, fields, validate as v
from werkzeug.wrappers import Response

from ..app import ANY_SIGNED_IN, ListQuery, command, route
from ..scopes import require_township, require_unit_of_cadre

SUBJECT_TYPES = ("unit", "cadre", "township")
JUDGES = ("admin", "leading_group")


def period(value):
    if not re.fullmatch(r"\d{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?", value):
        raise ValidationError("use 2023, 2023-Q3 or 2023-05")


class ScoreQuery(ListQuery):
    period = fields.String(required=True, validate=period)
    as_of = fields.Date(required=True)
    version = fields.Integer(metadata={"description": "rulebook version; default the newest"})


class BulletinQuery(ListQuery):
    week = fields.String(required=True, validate=v.Regexp(r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$",
                                                          error="use an ISO week like 2023-W18"))
    format = fields.String(load_default="json", validate=v.OneOf(("json", "csv", "xlsx")))


command("POST", "/api/v1/ratings", "assessment", "record_rating", roles=JUDGES)
command("POST", "/api/v1/vetoes", "assessment", "record_veto", roles=JUDGES)


def _subject_type(ctx):
    subject_type = ctx.path_values["subject_type"]
    if subject_type not in SUBJECT_TYPES:
        from services.common.errors import NotFound

        raise NotFound("no such subject type", {"subject_type": [f"one of {', '.join(SUBJECT_TYPES)}"]})
    return subject_type


@route("GET", "/api/v1/scores/<subject_type>", roles=ANY_SIGNED_IN, query=ScoreQuery, tag="assessment")
def rankings(ctx):
    """Scores of every subject of a type for a period as of a date, best first, vetoed last."""
    return ctx.call("assessment", "rankings", _subject_type(ctx), ctx.query["period"],
                    ctx.query["as_of"].isoformat(), ctx.query["limit"], ctx.query["cursor"], ctx.query.get("version"))


@route("GET", "/api/v1/scores/<subject_type>/<subject_id>", roles=ANY_SIGNED_IN, query=ScoreQuery, tag="assessment")
def subject_score(ctx):
    """One subject's score with every indicator and its evidence, and for cadres the pay."""
    subject_type, subject_id = _subject_type(ctx), ctx.path_values["subject_id"]
    if ctx.role not in ("admin", "leading_group", "inspector"):
        if subject_type == "cadre" and ctx.role in ("unit", "cadre"):
            require_unit_of_cadre(ctx, subject_id)
        elif subject_type == "unit" and ctx.role == "unit":
            ctx.require(subject_id == ctx.scope("unit_id"), "outside your scope: another unit")
        elif subject_type == "township" and ctx.role == "township":
            require_township(ctx, subject_id)
        else:
            ctx.require(False, "outside your scope")
    return ctx.call("assessment", "subject_score", subject_type, subject_id, ctx.query["period"],
                    ctx.query["as_of"].isoformat(), ctx.query.get("version"))


# GET /api/v1/rulebook (the whole county rulebook, this one included) is in routes/rulebook.py.


@route("PUT", "/api/v1/rulebook", roles=JUDGES, body=("assessment", "publish_rulebook"), tag="assessment")
def publish_rulebook(ctx):
    """Publish a new rulebook version; earlier periods can still be scored under any version."""
    return ctx.command("assessment", "publish_rulebook", dict(ctx.raw_body))


@route("GET", "/api/v1/bulletins/weekly", roles=("admin", "leading_group", "department", "township"),
       query=BulletinQuery, tag="assessment", response="file")
def weekly_bulletin(ctx):
    """The weekly bulletin (周通报) as JSON, CSV or XLSX."""
    result = ctx.call("assessment", "weekly_bulletin", ctx.query["week"], ctx.query["format"])
    if ctx.query["format"] == "json":
        return result
    return Response(base64.b64decode(result["content_base64"]), status=200, content_type=result["content_type"],
                    headers={"Content-Disposition": f'attachment; filename="{result["filename"]}"'})

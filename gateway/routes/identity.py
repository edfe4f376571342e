"""Tokens, users and the audit trail."""
from marshmallow import Schema, fields, validate as v
from sqlalchemy import select

from services.common.commands import run_in_transaction
from services.common.pagination import decode_cursor, page

from ..app import ListQuery, route
from ..auth import ROLES, authenticate, create_user, issue_token, users
from ..audit import audit_log, list_audit


class TokenRequest(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True)


class NewUser(Schema):
    username = fields.String(required=True, validate=v.Length(min=2, max=64))
    password = fields.String(required=True, validate=v.Length(min=8), load_only=True)
    role = fields.String(required=True, validate=v.OneOf(ROLES))
    scope = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class AuditQuery(ListQuery):
    actor_id = fields.String()
    path_prefix = fields.String()


@route("POST", "/api/v1/auth/token", roles=(), body=TokenRequest, public=True, tag="identity")
def token(ctx):
    """Exchange a username and password for a bearer token."""
    with ctx.db.new_session() as session:
        principal = authenticate(session, ctx.body["username"], ctx.body["password"])
    return issue_token(principal, ctx.config)


@route("POST", "/api/v1/users", roles=("admin",), body=NewUser, status=201, tag="identity")
def add_user(ctx):
    """Create a user with a role and, for scoped roles, its scope."""
    def work(store, metadata):
        return create_user(store.session, ctx.body["username"], ctx.body["password"], ctx.body["role"],
                           ctx.body["scope"])

    # the chassis' transaction: the Idempotency-Key is checked under its lock, like every command
    user = run_in_transaction(ctx.db.new_session, "gateway", "create_user", work, ctx.service_context())
    ctx.audit_resource = {"user_id": user["user_id"]}
    return user


@route("GET", "/api/v1/users", roles=("admin",), query=ListQuery, tag="identity")
def list_users(ctx):
    """Every user with role and scope."""
    statement = select(users).order_by(users.c.username).limit(ctx.query["limit"] + 1)
    after = decode_cursor(ctx.query["cursor"])
    if after is not None:
        statement = statement.where(users.c.username > after)
    with ctx.db.new_session() as session:
        rows = session.execute(statement).all()
    return page([{"user_id": r.user_id, "username": r.username, "role": r.role, "scope": r.scope,
                  "active": r.active} for r in rows], ctx.query["limit"], lambda user: user["username"])


@route("GET", "/api/v1/audit", roles=("admin",), query=AuditQuery, tag="identity")
def audit(ctx):
    """Who changed what: every write through the gateway, newest first."""
    with ctx.db.new_session() as session:
        return list_audit(session, ctx.query)


__all__ = ["audit_log"]

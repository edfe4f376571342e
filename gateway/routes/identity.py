"""Tokens, users and the audit trail."""
from typing import Any

from marshmallow import Schema, fields, validate as v, validates_schema
from sqlalchemy import select
from werkzeug.wrappers import Response

from services.common.commands import run_in_transaction
from services.common.validation import SAFE_TEXT_PATTERN, documented
from services.common.web import MEDIA_TYPES
from services.common.pagination import decode_cursor, page

from ..app import EVERY_ROLE, ListQuery, RequestContext, route
from ..auth import (ADMIN_MAY_CREATE, SCOPE_KEYS, AccountLocked, NewPassword, SecurityRules, TooManyAttempts,
                    Unauthorized, authenticate, change_password, check_scope, forget_live_tokens, create_user, issue_token, revoke, unlock,
                    users)
from ..audit import audit_log, export_audit, list_audit


class TokenRequest(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True)


class NewUser(Schema):
    username = fields.String(required=True, validate=v.Length(min=2, max=64))
    password = NewPassword(required=True, load_only=True)
    role = fields.String(required=True, validate=v.OneOf(ADMIN_MAY_CREATE))
    scope = fields.Dict(keys=fields.String(validate=v.OneOf(sorted(set(SCOPE_KEYS.values())))), values=fields.String(),
                        load_default=dict, metadata={"description": "the scope key of the role (SCOPE_KEYS)"})

    @validates_schema
    @documented({"anyOf": [
        {"required": ["scope"], "properties": {"role": {"enum": [role]}, "scope": {
            "type": "object", "required": [key], "properties": {key: {"type": "string", "minLength": 1, "pattern": SAFE_TEXT_PATTERN}}}}}
        for role, key in SCOPE_KEYS.items() if role in ADMIN_MAY_CREATE
    ] + [{"properties": {"role": {"enum": [role for role in ADMIN_MAY_CREATE if role not in SCOPE_KEYS]}}}]})
    def scope_of_role(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_scope(data["role"], data.get("scope"))  # a scoped role names its scope (SCOPE_KEYS)


class PasswordChange(Schema):
    old_password = fields.String(required=True, load_only=True)
    new_password = NewPassword(required=True, load_only=True)


class AuditQuery(ListQuery):
    actor_id = fields.String()
    path_prefix = fields.String()
    since = fields.DateTime()
    until = fields.DateTime()


class AuditExportQuery(Schema):
    format = fields.String(load_default="csv", validate=v.OneOf(("csv", "json")))
    actor_id = fields.String()
    path_prefix = fields.String()
    since = fields.DateTime()
    until = fields.DateTime()


@route("POST", "/api/v1/auth/token", roles=(), body=TokenRequest, public=True, tag="identity",
       errors=(Unauthorized, AccountLocked, TooManyAttempts))
def token(ctx: RequestContext) -> Any:
    """Exchange a username and password for a bearer token. Five wrong passwords within 15 minutes
    lock the account (423) for 30 minutes; too many failures from one address answer 429."""
    with ctx.db.new_session() as session:
        try:
            principal = authenticate(session, ctx.body["username"], ctx.body["password"], ctx.client_address,
                                     ctx.config)
        finally:
            session.commit()
    return issue_token(principal, ctx.config)


@route("POST", "/api/v1/auth/password", roles=EVERY_ROLE, body=PasswordChange, tag="identity")
def password(ctx: RequestContext) -> Any:
    """Change your own password (policy, no reuse of the last five); every earlier token stops
    working and a new one is returned."""
    with ctx.db.new_session() as session:
        principal = change_password(session, ctx.user, ctx.body["old_password"], ctx.body["new_password"],
                                    SecurityRules.from_config(ctx.config))
        session.commit()
    forget_live_tokens(principal.user_id)
    ctx.audit_resource = {"event": "password_changed", "user_id": principal.user_id}
    return issue_token(principal, ctx.config)


@route("POST", "/api/v1/auth/logout", roles=EVERY_ROLE, tag="identity")
def logout(ctx: RequestContext) -> Any:
    """Sign out: the token is revoked and refused from now on."""
    with ctx.db.new_session() as session:
        revoke(session, ctx.user)
        session.commit()
    forget_live_tokens(ctx.user.user_id)
    ctx.audit_resource = {"event": "logout", "jti": ctx.user.jti}
    return {"revoked": True}


@route("POST", "/api/v1/users/<user_id>/unlock", roles=("admin",), tag="identity")
def unlock_user(ctx: RequestContext) -> Any:
    """Unlock an account locked after wrong passwords (audited)."""
    with ctx.db.new_session() as session:
        result = unlock(session, ctx.path_values["user_id"])
        session.commit()
    ctx.audit_resource = {"event": "account_unlocked", "reason": "unlocked by the administrator", **result}
    return result


@route("POST", "/api/v1/users", roles=("admin",), body=NewUser, status=201, tag="identity")
def add_user(ctx: RequestContext) -> Any:
    """Create a user with a role and, for scoped roles, its scope."""
    def work(store: Any, metadata: Any) -> Any:
        return create_user(store.session, ctx.body["username"], ctx.body["password"], ctx.body["role"],
                           ctx.body["scope"], rules=SecurityRules.from_config(ctx.config))

    # the chassis' transaction: the Idempotency-Key is checked under its lock, like every command
    user = run_in_transaction(ctx.db.new_session, "gateway", "create_user", work, ctx.service_context())
    ctx.audit_resource = {"user_id": user["user_id"]}
    return user


@route("GET", "/api/v1/users", roles=("admin",), query=ListQuery, tag="identity")
def list_users(ctx: RequestContext) -> Any:
    """Every user with role and scope."""
    statement = select(users).order_by(users.c.username).limit(ctx.query["limit"] + 1)
    after = decode_cursor(ctx.query["cursor"])
    if after is not None:
        statement = statement.where(users.c.username > after)
    with ctx.db.new_session() as session:
        rows = session.execute(statement).all()
    return page([{"user_id": r.user_id, "username": r.username, "role": r.role, "scope": r.scope,
                  "active": r.active} for r in rows], ctx.query["limit"], lambda user: user["username"])


@route("GET", "/api/v1/audit", roles=("auditor",), query=AuditQuery, tag="identity")
def audit(ctx: RequestContext) -> Any:
    """Who changed what: every write through the gateway, newest first (the auditor only)."""
    with ctx.db.new_session() as session:
        return list_audit(session, ctx.query)


@route("GET", "/api/v1/audit/export", roles=("auditor",), query=AuditExportQuery, tag="identity", response="file")
def audit_export(ctx: RequestContext) -> Any:
    """The audit trail of a period as CSV or JSON, oldest first, with each row's hashes (the
    export itself is audited)."""
    with ctx.db.new_session() as session:
        body = export_audit(session, ctx.query, ctx.query["format"])
    ctx.audit_reads.append({"event": "audit_exported", "format": ctx.query["format"],
                            **{k: str(ctx.query[k]) for k in ("actor_id", "path_prefix", "since", "until")
                               if k in ctx.query}})
    mimetype = MEDIA_TYPES[ctx.query["format"]]
    return Response(body, status=200, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=audit.{ctx.query['format']}"})


__all__ = ["audit_log"]

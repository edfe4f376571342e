"""The audit trail: every write through the gateway, with its actor, kept in the gateway's DB.

The same actor also travels in each event's metadata, so the services' own history agrees."""
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB

from services.common.pagination import decode_cursor, encode_cursor

metadata = MetaData()
audit_log = Table(
    "audit_log", metadata,
    Column("audit_id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), server_default=func.now()),
    Column("actor_id", Text), Column("actor_username", Text), Column("actor_role", Text),
    Column("method", Text), Column("path", Text), Column("status", Integer),
    Column("idempotency_key", Text), Column("correlation_id", Text), Column("resource", JSONB),
)


def record(session, ctx, request, status):
    session.execute(audit_log.insert().values(
        actor_id=ctx.principal.user_id, actor_username=ctx.principal.username, actor_role=ctx.principal.role,
        method=request.method, path=request.path, status=status,
        idempotency_key=ctx.headers.get("idempotency-key"), correlation_id=ctx.correlation_id,
        resource=ctx.audit_resource,
    ))


def list_audit(session, query):
    limit = query.get("limit", 50)
    statement = select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit + 1)
    if query.get("actor_id"):
        statement = statement.where(audit_log.c.actor_id == query["actor_id"])
    if query.get("path_prefix"):
        statement = statement.where(audit_log.c.path.startswith(query["path_prefix"]))
    before = decode_cursor(query.get("cursor"))
    if before is not None:
        statement = statement.where(audit_log.c.audit_id < before)
    rows = session.execute(statement).all()
    items = [{"audit_id": r.audit_id, "at": r.at.isoformat(), "actor_id": r.actor_id,
              "actor_username": r.actor_username, "actor_role": r.actor_role, "method": r.method,
              "path": r.path, "status": r.status, "idempotency_key": r.idempotency_key,
              "correlation_id": r.correlation_id, "resource": r.resource} for r in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].audit_id) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}

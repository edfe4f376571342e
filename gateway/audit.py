"""The audit trail: every write through the gateway, with its actor, kept in the gateway's DB.

The same actor also travels in each event's metadata, so the services' own history agrees.

Append-only and tamper-evident (issue 22, 等保 2.0 安全审计): a trigger refuses UPDATE, TRUNCATE
and any DELETE inside the 180-day retention (migration 0002), and each row carries
`row_hash = sha256(prev_hash + canonical row)`, chained in insertion order under an advisory lock,
so an edited, removed or inserted row breaks the chain at that row (`fupin audit verify`)."""
import csv
import hashlib
import io
import json
import logging
from datetime import datetime, timezone
from typing import Any

import eventlet
import eventlet.event
import eventlet.queue
from nameko.extensions import DependencyProvider
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request

from services.common.pagination import decode_cursor, encode_cursor

from .app import RequestContext


log = logging.getLogger(__name__)
metadata = MetaData()
audit_log = Table(
    "audit_log", metadata,
    Column("audit_id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_id", Text, nullable=False), Column("actor_username", Text, nullable=False),
    Column("actor_role", Text, nullable=False), Column("method", Text, nullable=False),
    Column("path", Text, nullable=False), Column("status", Integer, nullable=False),
    Column("idempotency_key", Text), Column("correlation_id", Text, nullable=False), Column("resource", JSONB),
    Column("prev_hash", Text, nullable=False), Column("row_hash", Text, nullable=False),
    Index("ix_audit_log_actor", "actor_id", "at"),
)
GENESIS = "0" * 64
HASHED = ("at", "actor_id", "actor_username", "actor_role", "method", "path", "status", "idempotency_key",
          "correlation_id", "resource")
CHAIN_LOCK = 72_022_001  # pg_advisory_xact_lock key: one writer extends the chain at a time
RETENTION_DAYS = 180
SYSTEM_ACTOR = {"actor_id": "-", "actor_role": "anonymous"}


def _canonical(row: Any) -> Any:
    values = {}
    for name in HASHED:
        value = row.get(name)
        if name == "at":
            value = value.astimezone(timezone.utc).isoformat()
        values[name] = value
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def chain_hash(previous: Any, row: Any) -> Any:
    return hashlib.sha256((previous + _canonical(row)).encode("utf-8")).hexdigest()


def append_audit(conn: Any, rows: Any) -> None:
    """Insert rows at the end of the chain, in this transaction (the lock ends with it)."""
    if not rows:
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    previous = conn.execute(select(audit_log.c.row_hash).order_by(audit_log.c.audit_id.desc()).limit(1)).scalar()
    previous = previous or GENESIS
    chained = []
    for row in rows:
        row = {**row, "at": row.get("at") or datetime.now(timezone.utc)}
        digest = chain_hash(previous, row)
        chained.append({**row, "prev_hash": previous, "row_hash": digest})
        previous = digest
    conn.execute(audit_log.insert(), chained)


def verify_chain(conn: Any, batch: int = 5000) -> Any:
    """Walk the chain oldest first. Returns (rows checked, None) or (rows checked, first broken
    link as {"audit_id", "reason"}). The first remaining row may follow pruned ones (after the
    retention): its prev_hash is taken as given."""
    checked, previous, after = 0, None, None
    while True:
        statement = select(audit_log).order_by(audit_log.c.audit_id).limit(batch)
        if after is not None:
            statement = statement.where(audit_log.c.audit_id > after)
        rows = conn.execute(statement).mappings().all()
        if not rows:
            return checked, None
        for row in rows:
            if previous is not None and row["prev_hash"] != previous:
                return checked, {"audit_id": row["audit_id"],
                                 "reason": "prev_hash does not match the previous row's hash (a row was removed, "
                                           "inserted or re-chained before this one)"}
            if chain_hash(row["prev_hash"] or "", dict(row)) != row["row_hash"]:
                return checked, {"audit_id": row["audit_id"],
                                 "reason": "the row's content does not match its hash (the row was edited)"}
            previous, after = row["row_hash"], row["audit_id"]
            checked += 1


def audit_row(ctx: RequestContext, request: Request, status: int) -> Any:
    return dict(
        at=datetime.now(timezone.utc), actor_id=ctx.user.user_id, actor_username=ctx.user.username,
        actor_role=ctx.user.role,
        method=request.method, path=request.path, status=status,
        idempotency_key=ctx.headers.get("idempotency-key"), correlation_id=ctx.correlation_id,
        resource=ctx.audit_resource,
    )


class AuditTrail(DependencyProvider):
    """Writes a request's audit rows before its response leaves (`record`), in group commits.

    A request hands its rows to one writer green thread and waits until they are committed, so a
    crash after the answer loses no row (before, rows waited up to 0.2 s in memory). Rows that
    arrive while a batch is being written go together in the next one: concurrent writes share
    one insert and one commit (inline, one transaction per request cost a quarter of the
    gateway's CPU per write). If the database refuses, the batch is retried every RETRY_SECONDS;
    a request waits at most WAIT_SECONDS and then answers anyway (its command has taken effect,
    and an error answer would invite a retry that does it again), with the rows kept for the
    retries (up to MAX_PENDING, then the oldest are dropped with an error log). stop() writes
    whatever is left. The actor also travels in every event's metadata."""

    WAIT_SECONDS = 5.0
    RETRY_SECONDS = 1.0
    MAX_PENDING = 100_000
    _STOP = object()

    def setup(self) -> None:
        self.queue: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self.gt: Any = None

    def start(self) -> None:
        self.gt = self.container.spawn_managed_thread(self._run)

    def stop(self) -> None:
        if self.gt is not None:
            self.queue.put(self._STOP)
            self.gt.wait()  # the writer writes what is queued (one try if the database refuses) and ends
            self.gt = None

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Append `rows` to the trail; returns once they are committed (or WAIT_SECONDS passed)."""
        if not rows:
            return
        written = eventlet.event.Event()
        self.queue.put((rows, written))
        if written.wait(self.WAIT_SECONDS) is None:
            log.error("%d audit rows not written within %.0f s; answering anyway, the writer keeps retrying",
                      len(rows), self.WAIT_SECONDS)

    def _engine(self) -> Any:
        from services.common.db import Database

        return next(ext for ext in self.container.dependencies if isinstance(ext, Database)).engine

    def _write(self, batch: list[Any]) -> bool:
        try:
            with self._engine().begin() as conn:
                append_audit(conn, [row for rows, _ in batch for row in rows])
        except Exception:  # noqa: BLE001 - keep the rows for the next try
            log.exception("could not write %d audit rows; will retry", sum(len(rows) for rows, _ in batch))
            return False
        for _, written in batch:
            written.send(True)
        return True

    def _take_queued(self, batch: list[Any]) -> bool:
        """Move what is queued into `batch`; True once the stop sentinel was among it."""
        stopping = False
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is self._STOP:
                stopping = True
            else:
                batch.append(item)
        return stopping

    def _run(self) -> None:
        batch: list[Any] = []
        while True:
            if not batch:
                first = self.queue.get()
                if first is self._STOP:
                    self._take_queued(batch)
                    if batch:
                        self._write(batch)
                    return
                batch.append(first)
            stopping = self._take_queued(batch)
            if self._write(batch):
                batch = []
            else:
                pending = sum(len(rows) for rows, _ in batch)
                while pending > self.MAX_PENDING and len(batch) > 1:
                    rows, _ = batch.pop(0)
                    pending -= len(rows)
                    log.error("dropped %d audit rows: more than %d waiting for the database", len(rows),
                              self.MAX_PENDING)
                if not stopping:
                    eventlet.sleep(self.RETRY_SECONDS)
            if stopping:
                return


def _filtered(statement: Any, query: Any) -> Any:
    if query.get("actor_id"):
        statement = statement.where(audit_log.c.actor_id == query["actor_id"])
    if query.get("path_prefix"):
        statement = statement.where(audit_log.c.path.startswith(query["path_prefix"]))
    if query.get("since"):
        statement = statement.where(audit_log.c.at >= query["since"])
    if query.get("until"):
        statement = statement.where(audit_log.c.at < query["until"])
    return statement


def _item(r: Any) -> Any:
    return {"audit_id": r.audit_id, "at": r.at.isoformat(), "actor_id": r.actor_id,
            "actor_username": r.actor_username, "actor_role": r.actor_role, "method": r.method,
            "path": r.path, "status": r.status, "idempotency_key": r.idempotency_key,
            "correlation_id": r.correlation_id, "resource": r.resource,
            "prev_hash": r.prev_hash, "row_hash": r.row_hash}


EXPORT_COLUMNS = ("audit_id", "at", "actor_id", "actor_username", "actor_role", "method", "path", "status",
                  "idempotency_key", "correlation_id", "resource", "prev_hash", "row_hash")


def export_audit(session: Session, query: Any, file_format: Any) -> Any:
    """Every row in the period, oldest first, with its hashes (so the export can be re-verified)."""
    rows = session.execute(_filtered(select(audit_log).order_by(audit_log.c.audit_id), query)).all()
    items = [_item(r) for r in rows]
    if file_format == "json":
        return json.dumps({"items": items, "head_hash": items[-1]["row_hash"] if items else None},
                          ensure_ascii=False)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for item in items:
        writer.writerow([json.dumps(item[c], ensure_ascii=False, sort_keys=True) if c == "resource" else item[c]
                         for c in EXPORT_COLUMNS])
    return out.getvalue()


def list_audit(session: Session, query: Any) -> Any:
    limit = query.get("limit", 50)
    statement = _filtered(select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit + 1), query)
    before = decode_cursor(query.get("cursor"))
    if before is not None:
        statement = statement.where(audit_log.c.audit_id < before)
    rows = session.execute(statement).all()
    items = [_item(r) for r in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].audit_id) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}

"""What every Fupin service has in common, as a base class for its nameko service.

A service subclasses `EventSourcedService`, sets `name` and `projections` (its projections
module) and adds its own `@rpc` entrypoints, which call `self.handle(...)` for commands.
"""
import json
import logging
from collections.abc import Callable
from typing import Any

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.timer import timer
from sqlalchemy import Table, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from . import commands, retention
from .commands import Decide, Evolve
from .clock import clock_from_config
from .config import rules_from_config
from .db import Database
from .errors import NotFound
from .metrics import exposition
from .relay import RelayDoorbell, relay_loop, relay_pending
from .rpc import rpc
from .store import EventStore
from .web import http

log = logging.getLogger(__name__)
PRUNE_INTERVAL_SECONDS = 3600


def json_response(status: int, body: Any) -> Any:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_broker(amqp_uri: Any) -> None:
    with Connection(amqp_uri, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


class HealthEndpoints:
    """/healthz (the process answers), /readyz (database and broker reachable), /metrics."""

    name: str  # set by the service class
    db: Database
    config: Any

    @http("GET", "/healthz")
    def healthz(self, request: Request) -> Any:
        return json_response(200, {"status": "ok", "service": self.name})

    @http("GET", "/readyz")
    def readyz(self, request: Request) -> Any:
        problems = {}
        try:
            check_database(self.db.engine)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            problems["database"] = str(exc).splitlines()[0]
        try:
            check_broker(self.config["AMQP_URI"])
        except Exception as exc:  # noqa: BLE001
            problems["broker"] = str(exc).splitlines()[0]
        if problems:
            return json_response(503, {"status": "not ready", "service": self.name, "problems": problems})
        return json_response(200, {"status": "ready", "service": self.name})

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Any:
        body, content_type = exposition()
        return Response(body, status=200, content_type=content_type)


class EventSourcedService(HealthEndpoints):
    projections: Any = None  # module with READ_MODEL_TABLES and project(session, event)

    config = Config()
    db = Database()
    dispatch = EventDispatcher()
    nudge = RelayDoorbell()

    county_timezone = None  # the rulebook's `timezone`; None = the county default (clock.DEFAULT_TIMEZONE)
    rules_class: type | None = None  # the domain's `Rules` dataclass; config RULES overrides its defaults
    # kind -> (read-model table, its key column, the columns a gateway scope check reads); see `owner`
    owners: dict[str, tuple[Table, str, tuple[str, ...]]] = {}

    @property
    def rules(self) -> Any:
        """The service's rules: `rules_class` with the config's RULES applied."""
        return rules_from_config(self.config, self.rules_class)

    @property
    def clock(self) -> Any:
        """The county's clock (config NOW freezes it): `self.clock.today()` is the business date."""
        return clock_from_config(self.config, self.county_timezone)

    # --- commands -------------------------------------------------------------------------
    def handle(self, command_type: str, *, stream_type: str, stream_id: str, evolve: Evolve, decide: Decide,
               result: Any = None, initial: Any = None, expected_version: int | None = None,
               context: dict[str, Any] | None = None) -> Any:
        """Run one single-stream command in one transaction (see commands.run_command)."""
        return commands.run_command(
            self.db.new_session, self.name, command_type,
            stream_type=stream_type, stream_id=stream_id, evolve=evolve, decide=decide,
            project=self.projections.project, result=result, initial=initial,
            expected_version=expected_version, context=context, nudge=self.nudge,
        )

    def handle_streams(self, command_type: str, work: Callable[[commands.Streams], Any], context: Any = None) -> Any:
        """Run `work(streams)` over several streams in one transaction (see commands.Streams:
        lock order, versions and projection; idempotency and retries in run_in_transaction)."""
        return commands.run_streams(
            self.db.new_session, self.name, command_type, work,
            project=self.projections.project, context=context, nudge=self.nudge,
        )

    def handle_many(self, command_type: str, work: Any, context: Any = None) -> Any:
        """Run `work(store, metadata)` in one transaction (prefer handle_streams)."""
        return commands.run_in_transaction(
            self.db.new_session, self.name, command_type, work, context, self.nudge
        )

    def load_stream(self, stream_type: str, stream_id: str, evolve: Any, initial: Any = None) -> Any:
        with self.db.new_session() as session:
            return commands.fold(evolve, initial, EventStore(session).load(stream_type, stream_id))

    @rpc
    def owner(self, kind: str, key: str) -> dict[str, Any]:
        """Who an aggregate belongs to (its township, department, unit...): the few columns of
        its read-model row a scope check reads, instead of the whole aggregate replayed from its
        stream. The read model is written in the command's transaction, so it is never behind."""
        table, key_column, columns = self.owners[kind]
        with self.db.new_session() as session:
            row = session.execute(select(*(table.c[name] for name in columns))
                                  .where(table.c[key_column] == key)).first()
        if row is None:
            raise NotFound(f"no {kind} {key}", {key_column: key})
        return {key_column: key, **row._asdict()}

    # --- the event store, read by consumers -----------------------------------------------
    @rpc
    def events_since(self, position: int, limit: int = 500) -> Any:
        limit = max(1, min(int(limit), 5000))
        with self.db.new_session() as session:
            return [event.as_dict() for event in EventStore(session).events_since(int(position), limit)]

    @rpc
    def stream_events(self, stream_type: str, stream_id: str) -> Any:
        with self.db.new_session() as session:
            return [event.as_dict() for event in EventStore(session).load(stream_type, stream_id)]

    @relay_loop(interval=1.0)
    def relay(self) -> None:
        try:
            relay_pending(self.db.new_session, self.name, self.dispatch)
        except Exception:  # the next tick retries; events stay in the store
            log.exception("relay of %s events failed; will retry", self.name)

    @timer(interval=PRUNE_INTERVAL_SECONDS)
    def prune_old_rows(self) -> None:
        """Hourly: idempotency keys and inbox rows past their retention (services/common/retention.py)."""
        try:
            kept = retention.retention_from_config(self.config)
            deleted = retention.prune(self.db.engine, kept["idempotency_days"], kept["inbox_days"])
            if any(deleted.values()):
                log.info("%s pruned %s", self.name, deleted)
        except Exception:  # the next hour tries again
            log.exception("pruning of %s failed; will retry", self.name)

    # --- read models ----------------------------------------------------------------------
    @rpc
    def rebuild_read_models(self) -> Any:
        """Drop every read model and replay all events into them, in one transaction."""
        with self.db.new_session() as session:
            rebuild(session, self.projections)
            session.commit()
            return {"service": self.name, "events_replayed": session.info.get("replayed", 0)}


def rebuild(session: Session, projections: Any, batch_size: int = 2000) -> Any:
    tables = ", ".join(f'"{name}"' for name in projections.READ_MODEL_TABLES)
    if tables:
        session.execute(text(f"TRUNCATE {tables}"))
    store = EventStore(session)
    position, replayed = 0, 0
    while True:
        batch = store.events_since(position, batch_size)
        for event in batch:
            projections.project(session, event)
        replayed += len(batch)
        if len(batch) < batch_size:
            break
        position = batch[-1].global_position
    session.info["replayed"] = replayed
    return replayed

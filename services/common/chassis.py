"""What every Fupin service has in common, as a base class for its nameko service.

A service subclasses `EventSourcedService`, sets `name` and `projections` (its projections
module) and adds its own `@rpc` entrypoints, which call `self.handle(...)` for commands.
"""
import json
import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import eventlet

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.events import BROADCAST, event_handler
from nameko.timer import timer
from sqlalchemy import Table, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from . import commands, retention, rulebook
from .clock import DEFAULT_TIMEZONE, clock_from_config
from .commands import Decide, Evolve
from .db import Database
from .errors import NotFound, ValidationFailed
from .events import StoredEvent
from .metrics import exposition
from .rebuild import rebuild
from .relay import EventBatchPublishing, RelayDoorbell, relay_loop, relay_pending
from .rpc import rpc
from .store import EventStore
from .web import http

log = logging.getLogger(__name__)
PRUNE_INTERVAL_SECONDS = 3600

# The county section of the rulebook: values every service reads, owned by the registry.
COUNTY_KEYS = ("timezone", "departments")
COUNTY_SECTION = "county"
COUNTY_OWNER = "registry"
COUNTY_REFRESH_SECONDS = 60  # the backstop poll; changes themselves arrive as events


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


class RulebookDefaults(DependencyProvider):
    """At start, the code's defaults of each of the service's rulebook sections go on record as a
    `rules_defaults_declared` event when they differ from the last on record: the first start, or
    a release that changed a default. Consumers (the assessment) read a section's every value,
    version 0 included, from the owner's events and keep no copy of their own. If the database
    does not answer at start, the relay's loop tries again (`declare_if_pending`)."""

    def setup(self) -> None:
        self.pending = True

    def start(self) -> None:
        self.declare_if_pending()

    def declare_if_pending(self) -> None:
        if not self.pending:
            return
        service_cls = self.container.service_cls
        database = next(ext for ext in self.container.dependencies if isinstance(ext, Database))
        try:
            for section, defaults in service_cls.rulebook_sections().items():
                declare_defaults(lambda: Session(database.engine, future=True), service_cls.name,
                                 service_cls.projections.project, section, defaults)
            self.pending = False
        except Exception:  # noqa: BLE001 - the relay's next tick tries again
            log.exception("%s: could not put the rulebook's defaults on record yet", service_cls.name)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self


def declare_defaults(session_factory: Callable[[], Session], service: str, project: Any, section: str,
                     defaults: dict[str, Any]) -> Any:
    return commands.run_command(
        session_factory, service, "declare_rulebook_defaults", stream_type=rulebook.STREAM_TYPE, stream_id=section,
        evolve=rulebook.evolve, initial=rulebook.Section(section, defaults),
        decide=lambda state: rulebook.decide_declare(state, defaults), project=project,
    )


def section_defaults_of(rules_class: Any) -> dict[str, Any]:
    """A service's own section: its `Rules` fields but the county section's (the registry's)."""
    if rules_class is None:
        return {}
    return rulebook.defaults_of(rules_class, [f for f in rules_class.__dataclass_fields__ if f not in COUNTY_KEYS])


class CountySectionFollower:
    """For a service that reads the county section but does not own it (every one but the
    registry): the registry's changes of that section reach each of its processes as they happen.
    A mixin, named in the class line, so deploy/validate.py grants the broadcast queue it needs
    (`evt-registry-rules_changed--<service>.on_county_rules_changed-<id>`)."""

    name: str
    config: Any

    @event_handler(COUNTY_OWNER, rulebook.CHANGED, handler_type=BROADCAST, reliable_delivery=False)
    def on_county_rules_changed(self, envelope: dict[str, Any]) -> None:
        """The registry changed a section of the rulebook: if it is the county section, every
        process of every service (a broadcast: each has its own queue) takes the change in now,
        so the next command uses it, instead of the minute the backstop poll would take."""
        if envelope["payload"].get("section") != COUNTY_SECTION:
            return
        section = _county_sections.get(self.name)
        if section is None:  # nothing read yet: read the whole section, the change included
            fetch_county_values(self)
            return
        section.apply(StoredEvent.from_dict(envelope))


class EventSourcedService(HealthEndpoints):
    projections: Any = None  # module with READ_MODEL_TABLES and project(session, event)

    @property
    def project_reads_store(self) -> bool:
        """Whether `projections.project` reads the event store (READS_EVENT_STORE): then a
        command's events are written before they are projected (commands.Streams)."""
        return bool(getattr(self.projections, "READS_EVENT_STORE", False))

    config = Config()
    db = Database()
    publish_events = EventBatchPublishing()
    nudge = RelayDoorbell()
    rulebook_defaults = RulebookDefaults()

    # The service's section of the county rulebook (services/common/rulebook.py, docs/rulebook.md):
    # the domain's `Rules` dataclass; its fields named in COUNTY_KEYS are the county section's (the
    # registry owns them), every other field is this service's own, kept as `rules_changed` events.
    rules_class: Any = None
    # kind -> (read-model table, its key column, the columns a gateway scope check reads); see `owner`
    owners: dict[str, tuple[Table, str, tuple[str, ...]]] = {}

    def refresh_county_rules(self) -> None:
        """A backstop for the county section (timezone, departments): a change reaches every
        process at once as the registry's `rules_changed` event (CountySectionFollower); the
        relay's loop calls this every second and it reads the whole section from the registry at
        start and then once a minute, for a change whose broadcast this process missed (it was
        reconnecting to the broker). In a green thread of its own, so the relay never waits."""
        if getattr(self, "owns_county_section", False):
            return
        now = time.monotonic()
        if now - _county_asked.get(self.name, -COUNTY_REFRESH_SECONDS) < COUNTY_REFRESH_SECONDS:
            return
        _county_asked[self.name] = now

        def ask() -> None:
            try:
                fetch_county_values(self)
            except Exception:  # noqa: BLE001 - the last values (or the defaults) hold until the next try
                log.info("%s: the county rulebook section could not be read from the registry yet", self.name)

        eventlet.spawn_n(ask)

    @rpc
    def reload_county_rules(self) -> Any:
        """Read the county section from the registry now (a repair: changes arrive as events)."""
        if getattr(self, "owns_county_section", False):
            return self.county_section_values()  # type: ignore[attr-defined]
        return fetch_county_values(self)

    @property
    def county_timezone(self) -> str:
        """The rulebook's `timezone` (county section, owned by the registry)."""
        return county_values(self).get("timezone") or DEFAULT_TIMEZONE

    @property
    def clock(self) -> Any:
        """The county's clock (config NOW freezes it): `self.clock.today()` is the business date."""
        return clock_from_config(self.config, self.county_timezone)

    # --- the rulebook: this service's section --------------------------------------------
    def section_defaults(self) -> dict[str, Any]:
        return section_defaults_of(self.rules_class)

    @classmethod
    def rulebook_sections(cls) -> dict[str, dict[str, Any]]:
        """The rulebook sections this service owns and their code's defaults (version 0)."""
        return {cls.name: section_defaults_of(cls.rules_class)} if cls.rules_class is not None else {}

    def rulebook_section_state(self, session: Session | None = None, heads: Any = None) -> rulebook.Section:
        """This service's section. With `heads` (a command's Streams.heads, holding the section's
        last event id as read in its first statement: `rulebook_heads`) a section read before is
        reused while that id is unchanged."""
        if heads is not None:
            return self.cached_section(self.name, self.section_defaults, session, heads)
        if session is not None:
            return rulebook.Section(self.name, self.section_defaults(),
                                    EventStore(session).load(rulebook.STREAM_TYPE, self.name))
        with self.db.new_session() as own:
            return self.rulebook_section_state(own)

    def rulebook_heads(self) -> list[tuple[str, str]]:
        """The rulebook streams a command's rules come from, for `Streams.load(heads=...)`."""
        heads = [(rulebook.STREAM_TYPE, self.name)]
        if getattr(self, "owns_county_section", False):
            heads.append((rulebook.STREAM_TYPE, COUNTY_SECTION))
        return heads

    def cached_section(self, section: str, defaults: Callable[[], dict[str, Any]], session: Session | None,
                       heads: dict[tuple[str, str], str | None]) -> rulebook.Section:
        """The section `section` (`defaults()`: its code's defaults) as of its last event id in
        `heads`: from the process's cache when it was folded at that same event, else read (in
        `session`) and kept. Reading every
        command's sections anew in sessions of their own was a third of a command's time
        (issue 17's profile); event ids are unique, so no other database's section can match."""
        head = heads[(rulebook.STREAM_TYPE, section)]
        cache_key = (str(self.db.engine.url), section)
        cached = _sections.get(cache_key)
        if cached is not None and cached[0] == head:
            return cached[1]
        if head is None:
            events: list[Any] = []
        elif session is not None:
            events = EventStore(session).load(rulebook.STREAM_TYPE, section)
        else:
            with self.db.new_session() as own:
                events = EventStore(own).load(rulebook.STREAM_TYPE, section)
        folded = rulebook.Section(section, defaults(), events)
        if (events[-1].event_id if events else None) == head:
            _sections[cache_key] = (head, folded)
        return folded

    def _county_part(self, heads: Any = None) -> dict[str, Any]:
        county = county_values(self, heads)
        return {key: county[key] for key in self.rules_class.__dataclass_fields__
                if key in COUNTY_KEYS and key in county}

    def rules_on(self, day: date, session: Session | None = None, heads: Any = None) -> Any:
        """The domain's Rules in force on the business date `day` (a command's own date); `heads`
        as for rulebook_section_state."""
        values = self.rulebook_section_state(session, heads).in_force(day).values
        if self.rules_class is None:
            return values
        return self.rules_class(**values, **self._county_part(heads))

    @property
    def rules(self) -> Any:
        """The rules in force today (county time): for reads without a business date of their own."""
        return self.rules_on(self.clock.today())

    @rpc
    def rulebook_section(self, as_of: Any = None) -> Any:
        """This service's section: values in force on `as_of` (default today) and every version."""
        day = _date_arg(as_of, "as_of") if as_of else self.clock.today()
        return self.rulebook_section_state().view(day)

    @rpc
    def change_rules(self, data: Any, context: dict[str, Any] | None = None) -> Any:
        """A new version of this service's section: {effective_from, changes: {key: value}, reason}."""
        command = change_command(data)
        if self.rules_class is None:
            raise ValidationFailed(f"the {self.name} service has no rulebook section of this kind",
                                   {"section": ["no such section"]})
        rules_class, county_part = self.rules_class, self._county_part()

        def build(values: dict[str, Any]) -> Any:
            return rules_class(**values, **county_part)

        return self.handle(
            "change_rules", stream_type=rulebook.STREAM_TYPE, stream_id=self.name,
            evolve=rulebook.evolve, initial=rulebook.Section(self.name, self.section_defaults()),
            decide=lambda section: rulebook.decide_change(section, command, build),
            result=lambda section, stored: section.view(command["effective_from"]),
            context=context,
        )

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
            project_reads_store=self.project_reads_store,
        )

    def handle_streams(self, command_type: str, work: Callable[[commands.Streams], Any], context: Any = None) -> Any:
        """Run `work(streams)` over several streams in one transaction (see commands.Streams:
        lock order, versions and projection; idempotency and retries in run_in_transaction)."""
        return commands.run_streams(
            self.db.new_session, self.name, command_type, work,
            project=self.projections.project, context=context, nudge=self.nudge,
            project_reads_store=self.project_reads_store,
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
        self.refresh_county_rules()
        self.rulebook_defaults.declare_if_pending()
        try:
            relay_pending(self.db.new_session, self.name, self.publish_events)
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
        """Replay every event into shadow copies of the read models and swap them in at the end
        (services/common/rebuild.py): meanwhile the service answers from the old tables."""
        with self.db.new_session() as session:
            replayed = rebuild(session, self.projections)
            session.commit()
            return {"service": self.name, "events_replayed": replayed}


# --- the county section: values every service reads, owned by the registry ---------------------
_county_asked: dict[str, float] = {}  # service name -> when it last asked (time.monotonic)
# service name -> the county section (every version) as last read from the registry, kept
# current by the registry's `rules_changed` events
_county_sections: dict[str, rulebook.Section] = {}


# (database URL, section) -> (the section's last event id, the section folded up to it)
_sections: dict[tuple[str, str], tuple[str | None, rulebook.Section]] = {}


def county_values(service: Any, heads: Any = None) -> dict[str, Any]:
    """The county section in force today ({timezone, departments}). The registry owns it and reads
    its own store (or its cache, given a command's `heads`); every other service keeps the whole
    section (every version) as last read from the registry, with the changes announced since, and
    takes the values in force today from it (until the first answer, the code's defaults:
    Asia/Shanghai and DOMAIN.md's departments)."""
    if getattr(service, "owns_county_section", False):
        return dict(service.county_section_values(heads))
    section = _county_sections.get(service.name)
    if section is None:
        return {}
    return dict(section.in_force(county_section_day(service.config)).values)


def county_section_day(config: Any) -> date:
    """The day whose county-section version holds: decided on the default zone's date, since the
    zone itself is one of the section's values (a change of the county's own time zone is too rare
    for the few hours of difference to matter)."""
    return clock_from_config(config).today()


def fetch_county_values(service: Any) -> dict[str, Any]:
    """Read the whole county section from the registry over a connection of its own (a standalone
    proxy, so a slow or absent registry never disturbs the service's own connections)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": service.config["AMQP_URI"]}, timeout=5) as cluster:
        view = getattr(cluster, COUNTY_OWNER).county_rulebook_section()
    section = rulebook.Section.from_view(view)
    # a change announced while this read was on its way is kept, even if the read missed it
    for version in getattr(_county_sections.get(service.name), "versions", [])[1:]:
        section.add(version)
    _county_sections[service.name] = section
    return dict(section.in_force(county_section_day(service.config)).values)


def _date_arg(value: Any, name: str) -> date:
    from .validation import parse_date

    return parse_date(value, name)


def change_command(data: Any) -> dict[str, Any]:
    """A rulebook change as the API sends it, checked: {effective_from, changes, reason}."""
    if not isinstance(data, dict):
        raise ValidationFailed("a rulebook change is {effective_from, changes, reason}", {"body": ["not an object"]})
    unknown = sorted(set(data) - {"effective_from", "changes", "reason"})
    if unknown:
        raise ValidationFailed("unknown fields", {name: ["unknown field"] for name in unknown})
    problems: dict[str, list[str]] = {}
    effective_from = data.get("effective_from")
    if effective_from is None:
        problems["effective_from"] = ["required: the first day the new values hold"]
    elif not isinstance(effective_from, date):
        try:
            effective_from = date.fromisoformat(str(effective_from))
        except ValueError:
            problems["effective_from"] = ["not a date YYYY-MM-DD"]
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        problems["reason"] = ["text of at most 2000 characters"]
    if not isinstance(data.get("changes"), dict) or not data.get("changes"):
        problems["changes"] = ["give {key: new value}, at least one"]
    if problems:
        raise ValidationFailed("the rulebook change is not valid", problems)
    return {"effective_from": effective_from, "changes": data["changes"], "reason": reason}

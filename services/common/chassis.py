"""What every Fupin service has in common, as a base class for its nameko service.

A service subclasses `EventSourcedService`, sets `name` and `projections` (its projections
module) and adds its own `@rpc` entrypoints, which call `self.handle(...)` for commands.
"""
import json
import logging
import time

import eventlet

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.rpc import rpc
from sqlalchemy import text
from werkzeug.wrappers import Response

from . import commands, rulebook
from .clock import DEFAULT_TIMEZONE, clock_from_config
from .db import Database
from .errors import ValidationFailed
from .metrics import exposition
from .relay import RelayDoorbell, relay_loop, relay_pending
from .store import EventStore
from .web import http

log = logging.getLogger(__name__)

# The county section of the rulebook: values every service reads, owned by the registry.
COUNTY_KEYS = ("timezone", "departments")
COUNTY_SECTION = "county"
COUNTY_REFRESH_SECONDS = 60


def json_response(status, body):
    return Response(json.dumps(body), status=status, mimetype="application/json")


def check_database(engine):
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_broker(amqp_uri):
    with Connection(amqp_uri, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


class HealthEndpoints:
    """/healthz (the process answers), /readyz (database and broker reachable), /metrics."""

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response(200, {"status": "ok", "service": self.name})

    @http("GET", "/readyz")
    def readyz(self, request):
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
    def metrics(self, request):
        body, content_type = exposition()
        return Response(body, status=200, content_type=content_type)


class EventSourcedService(HealthEndpoints):
    name = None
    projections = None  # module with READ_MODEL_TABLES and project(session, event)

    config = Config()
    db = Database()
    dispatch = EventDispatcher()
    nudge = RelayDoorbell()

    # The service's section of the county rulebook (services/common/rulebook.py): the domain's
    # `Rules` dataclass; its fields named in COUNTY_KEYS are the county section's (the registry
    # owns them), every other field is this service's own.
    rules_class = None

    def refresh_county_rules(self):
        """Keep the county section (timezone, departments) as the registry has it in force: the
        relay's loop calls this every second; it asks the registry once a minute, in a green
        thread of its own so the relay never waits for it."""
        if getattr(self, "owns_county_section", False):
            return
        now = time.monotonic()
        if now - _county_asked.get(self.name, -COUNTY_REFRESH_SECONDS) < COUNTY_REFRESH_SECONDS:
            return
        _county_asked[self.name] = now

        def ask():
            try:
                fetch_county_values(self)
            except Exception:  # noqa: BLE001 - the last values (or the defaults) hold until the next try
                log.info("%s: the county rulebook section could not be read from the registry yet", self.name)

        eventlet.spawn_n(ask)

    @rpc
    def reload_county_rules(self):
        """Read the county section from the registry now (after a change, instead of waiting a minute)."""
        if getattr(self, "owns_county_section", False):
            return self.county_section_values()
        return fetch_county_values(self)

    @property
    def county_timezone(self):
        """The rulebook's `timezone` (county section, owned by the registry)."""
        return county_values(self).get("timezone") or DEFAULT_TIMEZONE

    @property
    def clock(self):
        """The county's clock (config NOW freezes it): `self.clock.today()` is the business date."""
        return clock_from_config(self.config, self.county_timezone)

    # --- the rulebook: this service's section --------------------------------------------
    def section_defaults(self):
        if self.rules_class is None:
            return {}
        keys = [f for f in self.rules_class.__dataclass_fields__ if f not in COUNTY_KEYS]
        return rulebook.defaults_of(self.rules_class, keys)

    def rulebook_section_state(self, session=None):
        if session is not None:
            return rulebook.Section(self.name, self.section_defaults(),
                                    EventStore(session).load(rulebook.STREAM_TYPE, self.name))
        with self.db.new_session() as own:
            return self.rulebook_section_state(own)

    def rules_on(self, day, session=None):
        """The domain's Rules in force on the business date `day` (a command's own date)."""
        values = self.rulebook_section_state(session).in_force(day).values
        if self.rules_class is None:
            return values
        county = county_values(self)
        values.update({key: county[key] for key in self.rules_class.__dataclass_fields__
                       if key in COUNTY_KEYS and key in county})
        return self.rules_class(**values)

    @property
    def rules(self):
        """The rules in force today (county time): for reads without a business date of their own."""
        return self.rules_on(self.clock.today())

    @rpc
    def rulebook_section(self, as_of=None):
        """This service's section: values in force on `as_of` (default today) and every version."""
        day = _date_arg(as_of, "as_of") if as_of else self.clock.today()
        return self.rulebook_section_state().view(day)

    @rpc
    def change_rules(self, data, context=None):
        """A new version of this service's section: {effective_from, changes: {key: value}, reason}."""
        command = _change_command(data)
        if self.rules_class is None:
            raise ValidationFailed(f"the {self.name} service has no rulebook section of this kind",
                                   {"section": ["no such section"]})
        county = county_values(self)
        county_part = {key: county[key] for key in self.rules_class.__dataclass_fields__
                       if key in COUNTY_KEYS and key in county}
        rules_class = self.rules_class

        def build(values):
            return rules_class(**values, **county_part)

        return self.handle(
            "change_rules", stream_type=rulebook.STREAM_TYPE, stream_id=self.name,
            evolve=lambda state, event: (state.apply(event), state)[1],
            initial=rulebook.Section(self.name, self.section_defaults()),
            decide=lambda section: rulebook.decide_change(section, command, build),
            result=lambda section, stored: section.view(command["effective_from"]),
            context=context,
        )

    # --- commands -------------------------------------------------------------------------
    def handle(self, command_type, *, stream_type, stream_id, evolve, decide, result=None,
               initial=None, expected_version=None, context=None):
        """Run one single-stream command in one transaction (see commands.run_command)."""
        return commands.run_command(
            self.db.new_session, self.name, command_type,
            stream_type=stream_type, stream_id=stream_id, evolve=evolve, decide=decide,
            project=self.projections.project, result=result, initial=initial,
            expected_version=expected_version, context=context, nudge=self.nudge,
        )

    def handle_many(self, command_type, work, context=None):
        """Run `work(store, metadata)` touching several streams in one transaction."""
        return commands.run_in_transaction(
            self.db.new_session, self.name, command_type, work, context, self.nudge
        )

    def load_stream(self, stream_type, stream_id, evolve, initial=None):
        with self.db.new_session() as session:
            return commands.fold(evolve, initial, EventStore(session).load(stream_type, stream_id))

    # --- the event store, read by consumers -----------------------------------------------
    @rpc
    def events_since(self, position, limit=500):
        limit = max(1, min(int(limit), 5000))
        with self.db.new_session() as session:
            return [event.as_dict() for event in EventStore(session).events_since(int(position), limit)]

    @rpc
    def stream_events(self, stream_type, stream_id):
        with self.db.new_session() as session:
            return [event.as_dict() for event in EventStore(session).load(stream_type, stream_id)]

    @relay_loop(interval=1.0)
    def relay(self):
        self.refresh_county_rules()
        try:
            relay_pending(self.db.new_session, self.name, self.dispatch)
        except Exception:  # the next tick retries; events stay in the store
            log.exception("relay of %s events failed; will retry", self.name)

    # --- read models ----------------------------------------------------------------------
    @rpc
    def rebuild_read_models(self):
        """Drop every read model and replay all events into them, in one transaction."""
        with self.db.new_session() as session:
            rebuild(session, self.projections)
            session.commit()
            return {"service": self.name, "events_replayed": session.info.get("replayed", 0)}


def rebuild(session, projections, batch_size=2000):
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


# --- the county section: values every service reads, owned by the registry ---------------------
_county_asked: dict = {}  # service name -> when it last asked (time.monotonic)
_county_cache: dict = {}  # service name -> the county section's values in force, as last read


def county_values(service):
    """The county section in force today ({timezone, departments}). The registry owns it and reads
    its own store; every other service keeps the values its `refresh_county_rules` timer last read
    from the registry (until the first answer, the code's defaults: Asia/Shanghai)."""
    if getattr(service, "owns_county_section", False):
        return service.county_section_values()
    return _county_cache.get(service.name, {})


def fetch_county_values(service):
    """Ask the registry for the county section over a connection of its own (a standalone proxy,
    so a slow or absent registry never disturbs the service's own connections)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": service.config["AMQP_URI"]}, timeout=5) as cluster:
        values = cluster.registry.county_rules()
    _county_cache[service.name] = values
    return values


def _date_arg(value, name):
    from .validation import parse_date

    return parse_date(value, name)


def _change_command(data):
    from datetime import date

    if not isinstance(data, dict):
        raise ValidationFailed("a rulebook change is {effective_from, changes, reason}", {"body": ["not an object"]})
    unknown = sorted(set(data) - {"effective_from", "changes", "reason"})
    if unknown:
        raise ValidationFailed("unknown fields", {name: ["unknown field"] for name in unknown})
    problems = {}
    try:
        effective_from = data["effective_from"]
        effective_from = effective_from if isinstance(effective_from, date) else date.fromisoformat(effective_from)
    except KeyError:
        problems["effective_from"] = ["required: the first day the new values hold"]
    except (TypeError, ValueError):
        problems["effective_from"] = ["not a date YYYY-MM-DD"]
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        problems["reason"] = ["text of at most 2000 characters"]
    if not isinstance(data.get("changes"), dict) or not data.get("changes"):
        problems["changes"] = ["give {key: new value}, at least one"]
    if problems:
        raise ValidationFailed("the rulebook change is not valid", problems)
    return {"effective_from": effective_from, "changes": data["changes"], "reason": reason}

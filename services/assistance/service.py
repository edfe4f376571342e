"""The assistance service: nameko entrypoints only; rules are in domain.py.

Households and villages belong to the registry: before a pairing, an assignment, a stationing,
a village visit, an inspection or a spot check, the service asks the registry over RPC that
they exist (NotFound naming the id when not).
"""
import uuid
from datetime import date

from nameko.rpc import RpcProxy

from services.common.chassis import CountySectionFollower, EventSourcedService
from services.common.rpc import rpc
from services.common.errors import NotFound, ValidationFailed, call_service
from services.common.pagination import decode_cursor, page, page_limit
from services.common.validation import arguments, validate

from . import domain, projections, schemas

UNIT, CADRE, HOUSEHOLD = "unit", "cadre", "household_pairing"


def _created(stored, **extra):
    """The answer of a command that appends one fact: its payload and the event types."""
    payload = dict(stored[0].payload) if stored else {}
    return {**payload, **extra, "events": [event.type for event in stored]}


class AssistanceService(EventSourcedService, CountySectionFollower):
    name = "assistance"
    projections = projections
    owners = {"unit": (projections.units, "unit_id", ("department",)),
              "cadre": (projections.cadres, "cadre_id", ("unit_id", "rank")),
              "pairing": (projections.pairings, "pairing_id", ("cadre_id",))}
    registry = RpcProxy("registry")

    rules_class = domain.Rules  # this service's section of the county rulebook

    def today(self):
        """The business date in the county's time zone (config NOW freezes it)."""
        return self.clock.today()

    # --- the registry's facts ---------------------------------------------------------------------
    def _require_household(self, household_id):
        try:
            return call_service(self.registry, "registry", "get_household", household_id)
        except NotFound:
            raise NotFound(f"household {household_id} is not in the registry",
                           {"household_id": household_id}) from None

    def _require_village(self, village_id):
        try:
            return call_service(self.registry, "registry", "get_village", village_id)
        except NotFound:
            raise NotFound(f"village {village_id} is not in the registry", {"village_id": village_id}) from None

    # --- one transaction over one written stream and any read ones ----------------------------
    def _write(self, command_name, context, stream_type, stream_id, evolve, decide, result, reads=()):
        """Lock and load the written stream, fold the `reads` ((stream_type, id, evolve) each),
        decide, append, project: one transaction. `decide(state, *read_states)`."""

        def work(streams):
            state = streams.load(stream_type, stream_id, evolve, lock=True)
            others = [streams.read(other_type, other_id, other_evolve) if other_id is not None else None
                      for other_type, other_id, other_evolve in reads]
            stored = streams.append(stream_type, stream_id, decide(state, *others))
            return result(streams.state(stream_type, stream_id), stored)

        return self.handle_streams(command_name, work, context)

    def _command(self, command_name, data):
        return validate(schemas.COMMAND_SCHEMAS[command_name](), data)

    # --- units and cadres -----------------------------------------------------------------------
    @rpc
    def register_unit(self, data, context=None):
        command, rules = self._command("register_unit", data), self.rules
        return self._write(
            "register_unit", context, UNIT, command["unit_id"], domain.evolve_unit,
            lambda state, parent: domain.decide_register_unit(state, command, rules, parent),
            lambda state, stored: {**domain.unit_view(state), "events": [e.type for e in stored]},
            reads=[(UNIT, command.get("parent_unit_id"), domain.evolve_unit)],
        )

    @rpc
    def register_cadre(self, data, context=None):
        command = self._command("register_cadre", data)
        return self._write(
            "register_cadre", context, CADRE, command["cadre_id"], domain.evolve_cadre,
            lambda state, unit: domain.decide_register_cadre(state, command, unit),
            lambda state, stored: {**domain.cadre_view(state), "events": [e.type for e in stored]},
            reads=[(UNIT, command["unit_id"], domain.evolve_unit)],
        )

    @rpc
    def assign_village(self, data, context=None):
        command = self._command("assign_village", data)
        self._require_village(command["village_id"])
        return self._write(
            "assign_village", context, UNIT, command["unit_id"], domain.evolve_unit,
            lambda unit: domain.decide_assign_village(unit, command),
            lambda state, stored: {"unit_id": command["unit_id"], "village_id": command["village_id"],
                                   "from": command["from"].isoformat(),
                                   "until": command["until"].isoformat() if command["until"] else None,
                                   "events": [e.type for e in stored]},
        )

    # --- pairings and visits (one stream per household) -------------------------------------------
    @rpc
    def pair_household(self, data, context=None):
        """干部包户 → `{pairing_id, ...}`; the household must be in the registry."""
        command = self._command("pair_household", data)
        self._require_household(command["household_id"])
        pairing_id = str(uuid.uuid4())
        return self._write(
            "pair_household", context, HOUSEHOLD, command["household_id"], domain.evolve_household,
            lambda state, cadre: domain.decide_pair(state, command, cadre, pairing_id),
            lambda state, stored: _created(stored),
            reads=[(CADRE, command["cadre_id"], domain.evolve_cadre)],
        )

    @rpc
    def end_pairing(self, data, context=None):
        command = self._command("end_pairing", data)
        with self.db.new_session() as session:
            row = projections.find(session, projections.pairings, "pairing_id", command["pairing_id"])
        if row is None:
            raise NotFound(f"no pairing {command['pairing_id']}", {"pairing_id": command["pairing_id"]})
        return self._write(
            "end_pairing", context, HOUSEHOLD, row.household_id, domain.evolve_household,
            lambda state: domain.decide_end_pairing(state, command),
            lambda state, stored: _pairing_dict(state.pairing(command["pairing_id"]), stored),
        )

    @rpc
    def record_visit(self, data, context=None):
        command, today = self._command("record_visit", data), self.today()
        visit_id = str(uuid.uuid4())
        return self._write(
            "record_visit", context, HOUSEHOLD, command["household_id"], domain.evolve_household,
            lambda state: domain.decide_visit(state, command, today, visit_id),
            lambda state, stored: _created(stored),
        )

    @rpc
    def record_visits(self, data, context=None):
        """One cadre's visits synced at once (recorded offline in the villages): every visit is
        checked by the same rules as record_visit, and either all are recorded or none is; a
        refusal lists each refused visit by its index with the reason."""
        command, today = self._command("record_visits", data), self.today()
        visits = [{**visit, "cadre_id": command["cadre_id"]} for visit in command["visits"]]

        def work(streams):
            households = sorted({visit["household_id"] for visit in visits})
            streams.lock(*((HOUSEHOLD, household_id) for household_id in households))
            states = {household_id: streams.load(HOUSEHOLD, household_id, domain.evolve_household)
                      for household_id in households}
            new_events = domain.decide_visits(states, visits, today, lambda: str(uuid.uuid4()))
            recorded = [event.payload for household_id in households
                        for event in streams.append(HOUSEHOLD, household_id, new_events[household_id])]
            recorded.sort(key=lambda payload: (payload["visited_on"], payload["household_id"]))
            return {"cadre_id": command["cadre_id"], "recorded": len(recorded), "visits": recorded}

        return self.handle_streams("record_visits", work, context)

    @rpc
    def record_awareness_check(self, data, context=None):
        command, today = self._command("record_awareness_check", data), self.today()
        self._require_household(command["household_id"])
        check_id = str(uuid.uuid4())
        return self._write(
            "record_awareness_check", context, HOUSEHOLD, command["household_id"], domain.evolve_household,
            lambda state: domain.decide_awareness_check(state, command, today, check_id),
            lambda state, stored: _created(stored),
        )

    # --- a cadre's own work ---------------------------------------------------------------------------
    @rpc
    def record_village_visit(self, data, context=None):
        command, today = self._command("record_village_visit", data), self.today()
        self._require_village(command["village_id"])
        visit_id = str(uuid.uuid4())
        return self._write(
            "record_village_visit", context, CADRE, command["cadre_id"], domain.evolve_cadre,
            lambda cadre: domain.decide_village_visit(cadre, command, today, visit_id),
            lambda state, stored: _created(stored),
        )

    @rpc
    def record_inspection(self, data, context=None):
        command, today = self._command("record_inspection", data), self.today()
        self._require_village(command["village_id"])
        inspection_id = str(uuid.uuid4())
        return self._write(
            "record_inspection", context, CADRE, command["cadre_id"], domain.evolve_cadre,
            lambda cadre: domain.decide_inspection(cadre, command, today, inspection_id),
            lambda state, stored: _created(stored),
        )

    @rpc
    def record_exam_score(self, data, context=None):
        command, today = self._command("record_exam_score", data), self.today()
        rules = self.rules_on(command["taken_on"])
        return self._write(
            "record_exam_score", context, CADRE, command["cadre_id"], domain.evolve_cadre,
            lambda cadre: domain.decide_exam_score(cadre, command, today, rules),
            lambda state, stored: _created(stored),
        )

    @rpc
    def station_cadre(self, data, context=None):
        command = self._command("station_cadre", data)
        self._require_village(command["village_id"])
        stationing_id = str(uuid.uuid4())
        return self._write(
            "station_cadre", context, CADRE, command["cadre_id"], domain.evolve_cadre,
            lambda cadre: domain.decide_station(cadre, command, stationing_id),
            lambda state, stored: _created(stored),
        )

    @rpc
    def report_residency(self, data, context=None):
        command, today = self._command("report_residency", data), self.today()
        rules = self.rules_on(date.fromisoformat(command["month"] + "-01"))
        return self._write(
            "report_residency", context, CADRE, command["cadre_id"], domain.evolve_cadre,
            lambda cadre: domain.decide_residency(cadre, command, today),
            lambda state, stored: _created(
                stored, meets_minimum=command["days"] >= rules.residency_min_days),
        )

    # --- queries --------------------------------------------------------------------------------------
    @rpc
    def get_unit(self, unit_id):
        """A unit with its assigned villages and its cadres."""
        with self.db.new_session() as session:
            row = projections.find(session, projections.units, "unit_id", unit_id)
            if row is None:
                raise NotFound(f"no unit {unit_id}", {"unit_id": unit_id})
            return {**domain.unit_view(row),
                    "villages": [projections.village_view(v) for v in projections.unit_villages_of(session, unit_id)],
                    "cadres": [domain.cadre_view(c) for c in projections.cadres_of_unit(session, unit_id)]}

    @rpc
    def get_cadre(self, cadre_id):
        """A cadre (incl. unit_id) with stationings, exam scores and residency reports."""
        rules = self.rules
        with self.db.new_session() as session:
            row = projections.find(session, projections.cadres, "cadre_id", cadre_id)
            if row is None:
                raise NotFound(f"no cadre {cadre_id}", {"cadre_id": cadre_id})
            stationings = projections.rows_where(session, projections.stationings, "cadre_id", cadre_id,
                                                 [projections.stationings.c.start_on])
            exams = projections.rows_where(session, projections.exam_scores, "cadre_id", cadre_id,
                                           [projections.exam_scores.c.taken_on])
            reports = projections.rows_where(session, projections.residency_reports, "cadre_id", cadre_id,
                                             [projections.residency_reports.c.month])
            return {**domain.cadre_view(row),
                    "stationings": [projections.stationing_view(s) for s in stationings],
                    "exam_scores": [{"exam_id": e.exam_id, "score": domain.score_value(e.score),
                                     "taken_on": e.taken_on.isoformat()} for e in exams],
                    "residency": domain.residency_months([(r.month, r.days) for r in reports], rules)}

    @rpc
    def get_pairing(self, pairing_id):
        with self.db.new_session() as session:
            row = projections.find(session, projections.pairings, "pairing_id", pairing_id)
            if row is None:
                raise NotFound(f"no pairing {pairing_id}", {"pairing_id": pairing_id})
            return projections.pairing_view(row)

    @rpc
    def cadre_pairings(self, cadre_id):
        """Every pairing of the cadre, oldest first (ended ones too, `active` says which)."""
        with self.db.new_session() as session:
            return [projections.pairing_view(row) for row in projections.pairings_where(session, "cadre_id", cadre_id)]

    @rpc
    def cadre_visits(self, cadre_id, limit=None, cursor=None):
        """The cadre's visits, newest first."""
        limit = page_limit(limit)
        after = decode_cursor(cursor)
        if after is not None and not (isinstance(after, list) and len(after) == 2):
            raise ValidationFailed("the cursor is not one this API gave out", {"cursor": ["invalid"]})
        with self.db.new_session() as session:
            rows = [projections.visit_view(row) for row in projections.cadre_visits(session, cadre_id, limit, after)]
        return page(rows, limit, key=lambda item: [item["visited_on"], item["visit_id"]])

    @rpc
    def overdue_visits(self, cadre_id, as_of):
        """Each (pairing, month) from the pairing's start through the as-of month in which the
        cadre's paired household still lacks its visit."""
        as_of = arguments(schemas.AsOfQuery(), as_of=as_of)["as_of"]
        rules = self.rules_on(as_of)
        with self.db.new_session() as session:
            if projections.find(session, projections.cadres, "cadre_id", cadre_id) is None:
                raise NotFound(f"no cadre {cadre_id}", {"cadre_id": cadre_id})
            pairings = [projections.as_domain_pairing(r) for r in projections.pairings_where(session, "cadre_id", cadre_id)]
            days = projections.visit_days(session, "cadre_id", cadre_id, as_of)
        return {"cadre_id": cadre_id, "as_of": as_of.isoformat(),
                "items": domain.overdue_visits(pairings, days, as_of, rules)}

    @rpc
    def unit_summary(self, unit_id, as_of):
        """A unit's cadres (pairings, leaders' village visits, inspections), its villages, and the
        monthly visit compliance of its pairings in the as-of year."""
        as_of = arguments(schemas.AsOfQuery(), as_of=as_of)["as_of"]
        rules = self.rules_on(as_of)
        year_start = date(as_of.year, 1, 1)
        with self.db.new_session() as session:
            row = projections.find(session, projections.units, "unit_id", unit_id)
            if row is None:
                raise NotFound(f"no unit {unit_id}", {"unit_id": unit_id})
            villages = projections.unit_villages_of(session, unit_id)
            cadre_rows = projections.cadres_of_unit(session, unit_id)
            pairing_rows = projections.pairings_where(session, "unit_id", unit_id)
            days = projections.visit_days(session, "unit_id", unit_id, as_of)
            village_visits = projections.village_visit_counts(session, unit_id, year_start, as_of)
            inspected = projections.last_inspections(session, unit_id, as_of)
        assigned = [v for v in villages if v.start_on <= as_of and (v.until_on is None or as_of <= v.until_on)]
        complete_months = as_of.month if as_of == domain.month_bounds(as_of.year, as_of.month)[1] else as_of.month - 1
        cadres = []
        for cadre_row in cadre_rows:
            cadre = domain.Cadre(cadre_row.cadre_id, cadre_row.unit_id, cadre_row.name, cadre_row.rank,
                                 cadre_row.deputy_section_or_above)
            per_year = rules.village_visits_required(cadre.rank)
            cadres.append({
                **domain.cadre_view(cadre_row),
                "active_pairings": sum(1 for p in pairing_rows if p.cadre_id == cadre.cadre_id
                                       and p.start_on <= as_of and (p.until_on is None or as_of <= p.until_on)),
                "village_visits": [{"village_id": v.village_id, "visits": village_visits.get((cadre.cadre_id, v.village_id), 0),
                                    "required_per_year": per_year,
                                    "required_to_date": per_year * complete_months // 12} for v in assigned]
                if per_year else [],
                "inspection": domain.inspection_status(cadre, inspected.get(cadre.cadre_id), as_of, rules),
            })
        months = domain.monthly_compliance([projections.as_domain_pairing(p) for p in pairing_rows], days, as_of, rules)
        due = sum(m["pairs_due"] for m in months if m["complete"])
        visited = sum(m["pairs_visited"] for m in months if m["complete"])
        return {**domain.unit_view(row), "as_of": as_of.isoformat(),
                "villages": [{**projections.village_view(v), "active": v in assigned} for v in villages],
                "cadres": cadres,
                "visit_compliance": {"months": months, "year_to_date": {
                    "pairs_due": due, "pairs_visited": visited, "rate": round(visited / due, 4) if due else None}}}

    @rpc
    def household_help_history(self, household_id):
        """Who was paired with the household, and every visit and spot check, oldest first."""
        with self.db.new_session() as session:
            pairings = projections.pairings_where(session, "household_id", household_id)
            visits = projections.rows_where(session, projections.visits, "household_id", household_id,
                                            [projections.visits.c.visited_on, projections.visits.c.visit_id])
            checks = projections.rows_where(session, projections.awareness_checks, "household_id", household_id,
                                            [projections.awareness_checks.c.checked_on,
                                             projections.awareness_checks.c.check_id])
            return {"household_id": household_id,
                    "pairings": [projections.pairing_view(p) for p in pairings],
                    "visits": [projections.visit_view(v) for v in visits],
                    "awareness_checks": [projections.check_view(c) for c in checks]}


def _pairing_dict(pairing, stored):
    return {"pairing_id": pairing.pairing_id, "cadre_id": pairing.cadre_id, "unit_id": pairing.unit_id,
            "household_id": pairing.household_id, "from": pairing.start.isoformat(),
            "until": pairing.until.isoformat() if pairing.until else None, "end_reason": pairing.reason,
            "active": pairing.until is None, "events": [e.type for e in stored]}

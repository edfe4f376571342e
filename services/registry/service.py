"""The registry service: nameko entrypoints only; rules are in domain.py."""
import logging
import uuid

from nameko.extensions import DependencyProvider
from sqlalchemy import text

from services.common import rulebook
from services.common.chassis import COUNTY_SECTION, EventSourcedService, change_command, county_section_day
from services.common.rebuild import rebuild
from services.common.rpc import rpc
from services.common.db import Database
from services.common.events import NewEvent, history_item
from services.common.errors import NotFound
from services.common.pagination import decode_cursor, page, page_limit
from services.common.store import EventStore
from services.common.validation import arguments, parse_date, validate, validate_filters

from . import domain, personal_data, projections, schemas

log = logging.getLogger(__name__)
HOUSEHOLD = "household"


def _member_result(state, person_id, stored):
    """A member command answers with the member (masked) and its household id."""
    member = state.members[person_id]
    view = domain.mask_member(domain.member_view(member))
    if not member["alive"]:
        view.update(removed_on=member.get("removed_on"), removed_reason=member.get("removed_reason"))
    return {"household_id": state.household_id, **view, "events": [event.type for event in stored]}


class PersonalDataKeys(DependencyProvider):
    """At setup: the household codec from FUPIN_PII_KEK (refusing to start without it outside
    development). At start: seal the personal fields of events written before encryption and,
    if any were (or the ID-number read model still holds numbers), rebuild the read models."""

    def setup(self):
        personal_data.install(self.container.config)

    def start(self):
        db = next(ext for ext in self.container.dependencies if isinstance(ext, Database))
        from sqlalchemy.orm import Session

        with Session(db.engine, future=True) as session:
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext('fupin.registry.seal_legacy'))"))
            sealed = personal_data.seal_legacy_events(session, personal_data.codec())
            legacy_rows = session.execute(text(
                "SELECT 1 FROM living_id_numbers WHERE id_hash NOT LIKE 'hmac:%' LIMIT 1")).first()
            if sealed or legacy_rows:
                replayed = rebuild(session, projections)
                log.info("sealed the personal data of %d older events; rebuilt the read models from %d events",
                         sealed, replayed)
            session.commit()


class RegistryService(EventSourcedService):
    name = "registry"
    projections = projections
    rules_class = domain.Rules
    owns_county_section = True  # timezone and departments: the county section of the rulebook

    # --- the county section of the rulebook ------------------------------------------------------
    @classmethod
    def rulebook_sections(cls):
        return {**super().rulebook_sections(), COUNTY_SECTION: rulebook.defaults_of(domain.CountyRules)}

    def _county_section(self, heads=None):
        if heads is not None:
            return self.cached_section(COUNTY_SECTION, lambda: rulebook.defaults_of(domain.CountyRules), None, heads)
        with self.db.new_session() as session:
            events = EventStore(session).load(rulebook.STREAM_TYPE, COUNTY_SECTION)
        return rulebook.Section(COUNTY_SECTION, rulebook.defaults_of(domain.CountyRules), events)

    def county_section_values(self, heads=None):
        return self._county_section(heads).in_force(county_section_day(self.config)).values

    @rpc
    def county_rules(self):
        """The county section in force today (timezone, departments): every service's clock and
        department list come from here."""
        return self.county_section_values()

    @rpc
    def county_rulebook_section(self, as_of=None):
        day = parse_date(as_of, "as_of") if as_of else self.clock.today()
        return self._county_section().view(day)

    @rpc
    def change_county_rules(self, data, context=None):
        command = change_command(data)
        return self.handle(
            "change_rules", stream_type=rulebook.STREAM_TYPE, stream_id=COUNTY_SECTION,
            evolve=rulebook.evolve,
            initial=rulebook.Section(COUNTY_SECTION, rulebook.defaults_of(domain.CountyRules)),
            decide=lambda section: rulebook.decide_change(section, command,
                                                          lambda values: domain.CountyRules(**values)),
            result=lambda section, stored: section.view(command["effective_from"]),
            context=context,
        )

    owners = {"household": (projections.households, "household_id", ("township_id",)),
              "village": (projections.villages, "village_id", ("township_id",))}
    personal_data_keys = PersonalDataKeys()

    # --- townships and villages ------------------------------------------------------------------
    @rpc
    def register_township(self, data, context=None):
        command = validate(schemas.RegisterTownship(), data)
        return self.handle(
            "register_township", stream_type="township", stream_id=command["township_id"],
            evolve=domain.evolve_place, decide=lambda state: domain.decide_register_township(state, command),
            result=lambda state, stored: dict(state), context=context,
        )

    @rpc
    def register_village(self, data, context=None):
        command = validate(schemas.RegisterVillage(), data)

        def work(streams):
            village_id = command["village_id"]
            state = streams.load("village", village_id, domain.evolve_place, lock=True)
            township = streams.read("township", command["township_id"], domain.evolve_place)
            streams.append("village", village_id, domain.decide_register_village(state, command, township))
            return dict(streams.state("village", village_id))

        return self.handle_streams("register_village", work, context)

    # --- households ------------------------------------------------------------------------------
    @rpc
    def register_household(self, data, context=None):
        """Register a household (建档立卡) in a known village; its township comes from the village."""
        command = validate(schemas.RegisterHousehold(), data)
        command["household_id"] = str(uuid.uuid4())

        def work(streams):
            household_id = command["household_id"]
            streams.lock(("household_no", command["household_no"]), (HOUSEHOLD, household_id))
            village = projections.find_village(streams.session, command["village_id"])
            holder = projections.household_with_number(streams.session, command["household_no"])
            state = streams.load(HOUSEHOLD, household_id, domain.evolve_in_place)
            new_events = domain.decide_register_household(state, command, village, holder)
            return self._append(streams, household_id, new_events)

        return self.handle_streams("register_household", work, context)

    def _append(self, streams, household_id, new_events, extra=None):
        # evolve_in_place: this command's own fold, no copy needed
        stored = streams.append(HOUSEHOLD, household_id, new_events, project_with_state=True)
        state = streams.state(HOUSEHOLD, household_id)
        result = {**domain.household_view(state, reveal_personal_data=False),
                  "events": [event.type for event in stored]}
        return extra(state, stored, result) if extra else result

    def _household_command(self, command_name, data, context, decide, extra=None, id_number_of=None,
                           rules_date=None):
        """Run one household command in one transaction. `decide(state, command, holder, rules)`;
        `holder` is the living member holding the command's ID number (locked too), if any;
        `rules` the registry's rules in force on the command's `rules_date` field (None without
        one), checked against the rulebook in the command's first statement (Streams.heads)."""
        command = validate(schemas.COMMAND_SCHEMAS[command_name](), data)

        def work(streams):
            household_id = command["household_id"]
            id_number = id_number_of(command) if id_number_of else None
            heads = self.rulebook_heads() if rules_date else ()
            if id_number:  # two locks, taken in the one global order
                streams.lock((HOUSEHOLD, household_id), ("id_number", id_number))
                holder = projections.id_number_holder(streams.session, id_number)
                state = streams.load(HOUSEHOLD, household_id, domain.evolve_in_place, heads=heads)
            else:  # lock, snapshot and events in one round trip
                holder = None
                state = streams.load(HOUSEHOLD, household_id, domain.evolve_in_place, lock=True, heads=heads)
            rules = self.rules_on(command[rules_date], streams.session, streams.heads) if rules_date else None
            new_events = decide(state, command, holder, rules)
            return self._append(streams, household_id, new_events,
                                extra=(lambda s, stored, view: extra(s, stored, command, view, rules)) if extra else None)

        return self.handle_streams(command_name, work, context)

    @rpc
    def add_member(self, data, context=None):
        person_id = str(uuid.uuid4())

        def decide(state, command, holder, rules):
            return domain.decide_add_member(state, {**command, "person_id": person_id}, holder)

        def member(state, stored, command, view, rules):
            return _member_result(state, person_id, stored)

        return self._household_command("add_member", data, context, decide, extra=member,
                                       id_number_of=lambda c: c["id_number"].upper())

    @rpc
    def update_member(self, data, context=None):
        def member(state, stored, command, view, rules):
            return _member_result(state, command["person_id"], stored)

        return self._household_command(
            "update_member", data, context, lambda s, c, holder, rules: domain.decide_update_member(s, c, holder),
            extra=member, id_number_of=lambda c: c["id_number"].upper() if c.get("id_number") else None)

    @rpc
    def remove_member(self, data, context=None):
        return self._household_command("remove_member", data, context,
                                       lambda s, c, holder, rules: domain.decide_remove_member(s, c),
                                       extra=lambda s, stored, c, view, rules: _member_result(s, c["person_id"], stored))

    @rpc
    def assess_income(self, data, context=None):
        """Record the year's per-capita income; below the monitoring line an exited household is
        flagged for monitoring in the same transaction (`monitoring_flagged`). The poverty line and
        monitoring factor are those in force on `assessed_on`."""
        def extra(state, stored, command, view, rules):
            return {**view, "year": command["year"], "per_capita_income": domain.money(command["per_capita_income"]),
                    "assessed_on": command["assessed_on"].isoformat(),
                    "poverty_line": domain.money(rules.poverty_line_for(command["year"])),
                    "monitoring_line": domain.money(rules.monitoring_line_for(command["year"])),
                    "monitoring_flagged": any(event.type == "monitoring_flagged" for event in stored)}

        return self._household_command("assess_income", data, context,
                                       lambda s, c, holder, rules: domain.decide_assess_income(s, c, rules), extra=extra,
                                       rules_date="assessed_on")

    @rpc
    def assess_assurances(self, data, context=None):
        return self._household_command("assess_assurances", data, context,
                                       lambda s, c, holder, rules: domain.decide_assess_assurances(s, c))

    @rpc
    def exit_household(self, data, context=None):
        return self._household_command("exit_household", data, context,
                                       lambda s, c, holder, rules: domain.decide_exit(s, c, rules),
                                       rules_date="exited_on")

    @rpc
    def flag_monitoring(self, data, context=None):
        return self._household_command("flag_monitoring", data, context,
                                       lambda s, c, holder, rules: domain.decide_flag_monitoring(s, c))

    @rpc
    def clear_monitoring(self, data, context=None):
        return self._household_command("clear_monitoring", data, context,
                                       lambda s, c, holder, rules: domain.decide_clear_monitoring(s, c, rules),
                                       rules_date="cleared_on")

    @rpc
    def return_to_poverty(self, data, context=None):
        return self._household_command("return_to_poverty", data, context,
                                       lambda s, c, holder, rules: domain.decide_return_to_poverty(s, c))

    @rpc
    def name_policy_informant(self, data, context=None):
        return self._household_command("name_policy_informant", data, context,
                                       lambda s, c, holder, rules: domain.decide_name_policy_informant(s, c))

    # --- personal data (PIPL) -----------------------------------------------------------------------
    @rpc
    def erase_personal_data(self, data, context=None):
        """PIPL deletion: destroy the household's data key. Its events stay; their ID and phone
        numbers read as null from now on, everywhere; a `personal_data_erased` event records it."""
        command = validate(personal_data.ErasePersonalData(), data)
        actor = (context or {}).get("actor")

        def work(streams):
            household_id = command["household_id"]
            streams.load(HOUSEHOLD, household_id, domain.evolve_in_place, lock=True)
            if streams.version(HOUSEHOLD, household_id) == 0:
                raise NotFound(f"no household {household_id}", {"household_id": household_id})
            personal_data.erase(streams.session, household_id, actor, command["reason"])
            erased = NewEvent("personal_data_erased", {"household_id": household_id, "reason": command["reason"],
                                                       "fields": list(personal_data.PERSONAL_FIELDS)})
            stored = streams.append(HOUSEHOLD, household_id, [erased])  # projects: refolds, numbers now null
            state = streams.read(HOUSEHOLD, household_id, domain.evolve_in_place)
            return {**domain.household_view(state, reveal_personal_data=False), "personal_data_erased": True,
                    "events": [event.type for event in stored]}

        return self.handle_streams("erase_personal_data", work, context)

    @rpc
    def rewrap_household_keys(self):
        """After a KEK rotation: wrap every live household data key with the current KEK."""
        codec = personal_data.codec()
        with self.db.new_session() as session:
            count = personal_data.rewrap_keys(session, codec.ring)
            session.commit()
        return {"rewrapped": count, "kek_id": codec.ring.current_id}

    # --- queries ---------------------------------------------------------------------------------
    @rpc
    def get_household(self, household_id, reveal_personal_data=False):
        """Members (living only, with labor_capacity and health), status, monitoring, latest
        assurances and income, policy informant, five_guarantees. ID and phone numbers masked
        unless reveal_personal_data."""
        with self.db.new_session() as session:
            detail = projections.household_detail(session, household_id)
        if detail is None:
            raise NotFound(f"no household {household_id}", {"household_id": household_id})
        return detail if reveal_personal_data else domain.mask_household(detail)

    @rpc
    def list_households(self, filters=None, limit=None, cursor=None, reveal_personal_data=False):
        filters, limit = validate_filters(schemas.HouseholdFilters(), filters), page_limit(limit)
        with self.db.new_session() as session:
            rows = projections.list_households(session, filters, limit, decode_cursor(cursor))
        if not reveal_personal_data:
            rows = [domain.mask_household(row) for row in rows]
        return page(rows, limit, key=lambda item: item["household_id"])

    @rpc
    def household_history(self, household_id):
        """The household's events, oldest first (ID and phone numbers masked)."""
        events = self.stream_events(HOUSEHOLD, household_id)
        if not events:
            raise NotFound(f"no household {household_id}", {"household_id": household_id})
        return [history_item(event, domain.mask_payload) for event in events]

    @rpc
    def get_village(self, village_id):
        with self.db.new_session() as session:
            village = projections.find_village(session, village_id)
        if village is None:
            raise NotFound(f"no village {village_id}", {"village_id": village_id})
        return village

    @rpc
    def get_township(self, township_id):
        with self.db.new_session() as session:
            township = projections.find_township(session, township_id)
            if township is None:
                raise NotFound(f"no township {township_id}", {"township_id": township_id})
            township["villages"] = projections.township_villages(session, township_id)
        return township

    @rpc
    def village_statistics(self, village_id, year):
        year = arguments(schemas.YearQuery(), year=year)["year"]
        village = self.get_village(village_id)
        with self.db.new_session() as session:
            facts, exits, compliant = projections.statistics_facts(session, "village_id", village_id, year)
        return domain.statistics({"village_id": village_id, "township_id": village["township_id"]},
                                 year, facts, exits, compliant)

    @rpc
    def township_statistics(self, township_id, year):
        year = arguments(schemas.YearQuery(), year=year)["year"]
        self.get_township(township_id)
        with self.db.new_session() as session:
            facts, exits, compliant = projections.statistics_facts(session, "township_id", township_id, year)
        return domain.statistics({"township_id": township_id}, year, facts, exits, compliant)

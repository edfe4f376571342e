"""The supervision service: nameko entrypoints only; rules are in domain.py."""
import uuid
from datetime import datetime

from services.common.rpc import rpc

from services.common.chassis import CountySectionFollower, EventSourcedService
from services.common.commands import fold
from services.common.errors import NotFound, ValidationFailed
from services.common.events import history_item
from services.common.pagination import decode_cursor, page, page_limit
from services.common.store import EventStore
from services.common.validation import validate, validate_filters

from . import domain, projections, schemas

CAMPAIGN, REPORT, PROBLEM = "campaign", "weekly_report", "problem"


class SupervisionService(EventSourcedService, CountySectionFollower):
    name = "supervision"
    projections = projections
    rules_class = domain.Rules  # this service's section of the county rulebook
    owners = {"problem": (projections.problems, "problem_id", ("unit_id", "township_id"))}

    def now(self):
        """County time now (services/common/clock.py; the rulebook's county `timezone`): config NOW
        freezes it (tests, replays)."""
        return self.clock.now()

    def _as_of(self, as_of):
        """A query's as-of moment: a date means the end of that county day; default now."""
        rules = self.rules
        if as_of in (None, ""):
            return self.now()
        try:
            moment = datetime.fromisoformat(str(as_of))
        except ValueError:
            raise ValidationFailed("as_of must be a date or a date-time", {"as_of": ["not a date"]}) from None
        if len(str(as_of)) == 10:
            moment = moment.replace(hour=23, minute=59, second=59)
        return domain.county_time(moment, rules)

    def _command(self, name, data):
        return validate(schemas.COMMAND_SCHEMAS[name](), data)

    def _campaign_command(self, name, data, context, decide):
        command = self._command(name, data)
        return self.handle(
            name, stream_type=CAMPAIGN, stream_id=command["campaign_id"], evolve=domain.evolve_campaign,
            decide=lambda state: decide(state, command),
            result=lambda state, stored: {**self._campaign_summary(state), "events": [e.type for e in stored]},
            context=context,
        )

    @staticmethod
    def _campaign_summary(campaign):
        return {"campaign_id": campaign.campaign_id, "name": campaign.name,
                "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat(),
                "phases": list(campaign.phases), "actions": sorted(campaign.actions)}

    # --- campaigns ------------------------------------------------------------------------------
    @rpc
    def launch_campaign(self, data, context=None):
        return self._campaign_command("launch_campaign", data, context, domain.decide_launch)

    @rpc
    def add_action(self, data, context=None):
        rules = self.rules
        command = self._command("add_action", data)
        return self.handle(
            "add_action", stream_type=CAMPAIGN, stream_id=command["campaign_id"], evolve=domain.evolve_campaign,
            decide=lambda state: domain.decide_add_action(state, command, rules),
            result=lambda state, stored: {**state.actions[command["action_id"]], "events": [e.type for e in stored]},
            context=context,
        )

    @rpc
    def mark_milestone(self, data, context=None):
        return self._campaign_command("mark_milestone", data, context, domain.decide_mark_milestone)

    @rpc
    def submit_weekly_report(self, data, context=None):
        """A responsible unit's report for one week: on time or late (Friday 12:00 county time)."""
        rules, now = self.rules, self.now()
        command = self._command("submit_weekly_report", data)
        stream_id = domain.report_stream_id(command["campaign_id"], command["unit_id"], command["week"])

        def work(streams):
            campaign = streams.read(CAMPAIGN, command["campaign_id"], domain.evolve_campaign)
            previous = streams.load(REPORT, stream_id, domain.evolve_report, lock=True)
            stored = streams.append(REPORT, stream_id, domain.decide_weekly_report(campaign, previous, command, rules, now))
            report = streams.state(REPORT, stream_id)
            return {**report, "on_time": not report["late"], "events": [e.type for e in stored]}

        return self.handle_streams("submit_weekly_report", work, context)

    # --- the rectification ledger ---------------------------------------------------------------
    def _problem_command(self, name, data, context, decide):
        command = self._command(name, data)
        return self.handle(
            name, stream_type=PROBLEM, stream_id=command["problem_id"], evolve=domain.evolve_problem,
            decide=lambda state: decide(state, command),
            result=lambda state, stored: self._problem_result(state, stored),
            context=context,
        )

    def _problem_result(self, problem, stored):
        view = domain.problem_view(problem)
        return {**view, "status": domain.problem_status(view, self.now().date()), "events": [e.type for e in stored]}

    @rpc
    def record_problem(self, data, context=None):
        if isinstance(data, dict) and not data.get("problem_id"):
            data = {**data, "problem_id": str(uuid.uuid4())}
        return self._problem_command("record_problem", data, context, domain.decide_record_problem)

    @rpc
    def record_measures(self, data, context=None):
        return self._problem_command("record_measures", data, context, domain.decide_record_measures)

    @rpc
    def request_closure(self, data, context=None):
        return self._problem_command("request_closure", data, context, domain.decide_request_closure)

    @rpc
    def verify_problem(self, data, context=None):
        return self._problem_command("verify_problem", data, context, domain.decide_verify)

    # --- queries --------------------------------------------------------------------------------
    @rpc
    def list_campaigns(self):
        with self.db.new_session() as session:
            return {"items": projections.list_campaigns(session)}

    @rpc
    def get_campaign(self, campaign_id, as_of=None):
        """Progress per action and township, milestones met or missed, late and missing reports."""
        as_of = self._as_of(as_of)
        with self.db.new_session() as session:
            campaign = fold(domain.evolve_campaign, None, EventStore(session).load(CAMPAIGN, campaign_id))
            if campaign is None:
                raise NotFound(f"no campaign {campaign_id}", {"campaign_id": campaign_id})
            reports = projections.campaign_reports(session, campaign_id)
        return domain.campaign_view(campaign, reports, as_of, self.rules)

    @rpc
    def get_problem(self, problem_id):
        with self.db.new_session() as session:
            view = projections.find_problem(session, problem_id)
        if view is None:
            raise NotFound(f"no problem {problem_id}", {"problem_id": problem_id})
        view = {**view, "status": domain.problem_status(view, self.now().date())}
        view["history"] = [history_item(event) for event in self.stream_events(PROBLEM, problem_id)]
        return view

    @rpc
    def list_problems(self, filters=None, limit=None, cursor=None, as_of=None):
        filters = validate_filters(schemas.ScopedProblemFilters(), filters)
        as_of, limit = self._as_of(as_of).date(), page_limit(limit)
        with self.db.new_session() as session:
            rows = projections.list_problems(session, filters, as_of, limit, decode_cursor(cursor))
        items = [{**row, "status": domain.problem_status(row, as_of)} for row in rows]
        return page(items, limit, key=lambda item: item["problem_id"])

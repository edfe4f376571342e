"""The credit service: nameko entrypoints only; the rules are in domain.py."""
import logging
import uuid
from decimal import Decimal

from nameko.rpc import RpcProxy
from nameko.timer import timer

from services.common.chassis import CountySectionFollower, EventSourcedService
from services.common.rpc import rpc
from services.common.events import history_item
from services.common.commands import fold
from services.common.errors import NotFound, call_service
from services.common.events import StoredEvent
from services.common.pagination import decode_cursor, page, page_limit
from services.common.validation import arguments, parse_date, validate, validate_filters
from services.common.values import month_bounds

from . import domain, projections, schemas

log = logging.getLogger(__name__)

LOAN = "loan"
QUOTA = "quota"
BORROWER = "borrower"  # a lock name only: one application per household at a time
OVERDUE_CHECK_SECONDS = 3600


class CreditService(EventSourcedService, CountySectionFollower):
    name = "credit"
    projections = projections
    owners = {"loan": (projections.loans, "loan_id", ("township_id",))}

    registry = RpcProxy("registry")

    rules_class = domain.Rules  # this service's section of the county rulebook

    def _loan_command(self, command_name, data, context, decide):
        command = validate(schemas.COMMAND_SCHEMAS[command_name](), data)
        rules = self.rules_on(command["on"])  # the rulebook version in force on the step's date
        return self.handle(
            command_name, stream_type=LOAN, stream_id=command["loan_id"], evolve=domain.evolve,
            decide=lambda state: decide(state, command, rules),
            result=lambda state, stored: {**domain.loan_view(state, rules), "events": [e.type for e in stored]},
            context=context,
        )

    # --- commands -------------------------------------------------------------------------------
    @rpc
    def allocate_quota(self, data, context=None):
        """Add a tranche to a township's loan plan (贷款计划) for a year."""
        command = validate(schemas.AllocateQuota(), data)
        township_id, year = command["township_id"], command["year"]
        return self.handle(
            "allocate_quota", stream_type=QUOTA, stream_id=domain.quota_stream_id(township_id, year),
            evolve=domain.evolve_quota, decide=lambda state: domain.decide_allocate_quota(state, command),
            result=lambda total, stored: {"township_id": township_id, "year": year,
                                          "amount": domain.money(command["amount"]),
                                          "allocated": domain.money(total)},
            context=context,
        )

    @rpc
    def apply_loan(self, data, context=None):
        """A household's (or an agricultural enterprise's) application; the borrower rules of 第五条
        are checked against the registry and the household's other loans."""
        if isinstance(data, dict):
            data = {key: value for key, value in data.items() if key != "loan_id"}
        command = validate(schemas.ApplyLoan(), data)
        command["loan_id"] = str(uuid.uuid4())
        rules = self.rules_on(command["applied_on"])
        household = self._household(command["household_id"]) if command["household_id"] else None

        def work(streams):
            if household is not None:
                streams.lock((BORROWER, command["household_id"]))
            others = projections.household_loans(streams.session, command["household_id"]) if household else []
            new_events = domain.decide_apply(None, command, rules, household, others)
            streams.load(LOAN, command["loan_id"], domain.evolve)
            stored = streams.append(LOAN, command["loan_id"], new_events)
            return {**domain.loan_view(streams.state(LOAN, command["loan_id"]), rules),
                    "events": [e.type for e in stored]}

        return self.handle_streams("apply_loan", work, context)

    def _household(self, household_id):
        try:
            return call_service(self.registry, "registry", "get_household", household_id)
        except NotFound:
            raise NotFound(f"no household {household_id} in the registry", {"household_id": household_id}) from None

    @rpc
    def village_review(self, data, context=None):
        return self._loan_command("village_review", data, context, domain.decide_village_review)

    @rpc
    def township_recommendation(self, data, context=None):
        return self._loan_command("township_recommendation", data, context, domain.decide_township_recommendation)

    @rpc
    def county_approval(self, data, context=None):
        return self._loan_command("county_approval", data, context, domain.decide_county_approval)

    @rpc
    def decide_loan(self, data, context=None):
        """The credit union's decision. An approval takes the township-year quota lock so that
        concurrent approvals can never together exceed the quota."""
        command = validate(schemas.DecideLoan(), data)
        rules = self.rules_on(command["on"])
        borrower = None
        if command["approved"]:  # the borrower's standing is checked again on the decision day
            loan = self.load_stream(LOAN, command["loan_id"], domain.evolve)
            if loan is not None and loan.household_id:
                borrower = self._household(loan.household_id)

        def work(streams):
            state = streams.load(LOAN, command["loan_id"], domain.evolve, lock=True)
            remaining = 0
            if state is not None and command["approved"] and not state.enterprise:
                year = command["on"].year
                streams.lock((QUOTA, domain.quota_stream_id(state.township_id, year)))
                remaining = projections.remaining_quota(streams.session, state.township_id, year)
            new_events = domain.decide_decision(state, command, rules, remaining, borrower)
            stored = streams.append(LOAN, command["loan_id"], new_events)
            return {**domain.loan_view(streams.state(LOAN, command["loan_id"]), rules),
                    "events": [e.type for e in stored]}

        return self.handle_streams("decide_loan", work, context)

    @rpc
    def disburse_loan(self, data, context=None):
        return self._loan_command("disburse_loan", data, context, domain.decide_disbursement)

    @rpc
    def record_repayment(self, data, context=None):
        return self._loan_command("record_repayment", data, context, domain.decide_repayment)

    @rpc
    def detect_overdue(self, as_of):
        """Mark every disbursed loan whose maturity has passed on `as_of` without full repayment
        as overdue (once). The timer calls it daily with today's date; tests call it with any date."""
        as_of = parse_date(as_of, "as_of")
        with self.db.new_session() as session:
            candidates = projections.overdue_candidates(session, as_of)
        marked = []
        for loan_id in candidates:
            result = self.handle(
                "detect_overdue", stream_type=LOAN, stream_id=loan_id, evolve=domain.evolve,
                decide=lambda state: domain.decide_overdue(state, as_of),
                result=lambda state, stored: [e.payload for e in stored],
                context={"actor": {"id": "overdue-timer", "role": "system"}},
            )
            marked.extend(result)
        return {"as_of": as_of.isoformat(), "overdue": marked}

    @timer(interval=OVERDUE_CHECK_SECONDS)
    def check_overdue(self):
        try:
            self.detect_overdue(self.clock.today().isoformat())
        except Exception:  # the next tick tries again
            log.exception("overdue detection failed; will retry")

    @rpc
    def settle_subsidies(self, data, context=None):
        """Pay the subsidy (贴息) of every loan settled on time in the quarter that was not paid yet."""
        command = validate(schemas.SettleSubsidies(), data)
        quarter, settled_on = command["quarter"], command["settled_on"]
        domain.check_settlement_date(quarter, settled_on)
        rules = self.rules_on(settled_on)
        first, last = domain.quarter_bounds(quarter)

        def work(streams):
            candidates = projections.subsidy_candidates(streams.session, first, min(last, settled_on),
                                                        rules.no_subsidy_industries)
            # every loan locked before the first append (the append lock comes last, for everyone)
            streams.lock(*((LOAN, loan_id) for loan_id in candidates))
            payments = []
            for loan_id in candidates:
                state = streams.load(LOAN, loan_id, domain.evolve)
                for event in streams.append(LOAN, loan_id, domain.decide_subsidy(state, quarter, settled_on, rules)):
                    payments.append({**event.payload, "household_id": state.household_id,
                                     "enterprise_name": state.enterprise_name})
            total = sum((Decimal(p["amount"]) for p in payments), Decimal(0))
            return {"quarter": quarter, "settled_on": settled_on.isoformat(), "payments": payments,
                    "total": domain.money(total)}

        return self.handle_streams("settle_subsidies", work, context)

    # --- queries --------------------------------------------------------------------------------
    @rpc
    def get_loan(self, loan_id):
        """One loan with its steps, repayments, subsidy and history (its events, oldest first)."""
        history = self.stream_events(LOAN, loan_id)
        if not history:
            raise NotFound(f"no loan {loan_id}", {"loan_id": loan_id})
        state = fold(domain.evolve, None, [StoredEvent.from_dict(event) for event in history])
        return {**domain.loan_view(state, self.rules), "history": [history_item(event) for event in history]}

    @rpc
    def list_loans(self, filters=None, limit=None, cursor=None):
        filters, limit = validate_filters(schemas.LoanFilters(), filters), page_limit(limit)
        with self.db.new_session() as session:
            rows = projections.list_loans(session, filters, limit, decode_cursor(cursor))
            return page([projections.row_view(row) for row in rows], limit, key=lambda item: item["loan_id"])

    @rpc
    def township_recovery(self, township_id, year, as_of=None):
        """Recovery rate (回收率) of the loans maturing in the year on or before `as_of` (default
        today, county time: a loan maturing later in the year is not due yet), with the 第九条
        recommendation."""
        year = arguments(schemas.YearQuery(), year=year)["year"]
        as_of = parse_date(as_of, "as_of") if as_of else self.clock.today()
        with self.db.new_session() as session:
            maturing = projections.maturing(session, township_id, year, as_of)
        return {**domain.recovery(township_id, year, maturing, self.rules_on(as_of)), "as_of": as_of.isoformat()}

    @rpc
    def quota_use(self, township_id, year):
        year = arguments(schemas.YearQuery(), year=year)["year"]
        with self.db.new_session() as session:
            return projections.quota_view(session, township_id, year)

    @rpc
    def public_notice(self, township_id, month):
        """The loans approved in the township in the month, for the month-end notice (公示, 第十二条3)."""
        month = arguments(schemas.MonthQuery(), month=month)["month"]
        first, last = month_bounds(int(month[:4]), int(month[5:]))
        with self.db.new_session() as session:
            rows = projections.approved_in_month(session, township_id, first, last)
            items = [projections.row_view(row) for row in rows]
        total = sum((Decimal(item["amount"]) for item in items), Decimal(0))
        return {"township_id": township_id, "month": first.strftime("%Y-%m"), "items": items,
                "count": len(items), "total_amount": domain.money(total)}

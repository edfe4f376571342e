"""Registry: townships, villages and the household registry (建档立卡). Pure: no I/O, no clock.

Streams: "township" (id = township_id), "village" (id = village_id), "household" (id =
household_id). Each `decide_*` takes the stream's state (None when it does not exist), a
command dict already typed by marshmallow (dates are `date`, money `Decimal`), the county's
`Rules`, and — where a rule needs a fact outside the stream — that fact, looked up by the
service inside the same transaction (e.g. which household holds an ID number). It returns the
new events or raises an error of services.common.errors.
"""
import copy
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.common.events import NewEvent
from services.common.values import CENT, add_months, money, day as _day, iso as _iso

from .schemas import STATUSES

RATE_PLACES = Decimal("0.0001")
RISK_TYPES = ("unstable", "marginal", "sudden_hardship")
MONITORING_ONLY_RISKS = ("marginal", "sudden_hardship")  # a never-poor household is not an unstable exited one
ASSURANCE_ITEMS = ("food", "clothing", "education", "medical", "housing", "drinking_water")
SAFE_HOUSING = ("A", "B")
MEMBER_FIELDS = ("name", "id_number", "relation", "birth_date", "sex", "labor_capacity", "health", "schooling",
                 "phone")


@dataclass(frozen=True)
class Rules:
    """The county rulebook's numbers for the registry (DOMAIN.md defaults)."""

    poverty_line: Decimal = Decimal("4000")  # yuan per capita per year, when the year has no own line
    poverty_lines: dict = field(default_factory=dict)  # {year: yuan}: a line per year overrides the default
    monitoring_factor: Decimal = Decimal("1.5")  # monitoring line = factor × poverty line of the year
    monitoring_min_months: int = 6  # months under monitoring before the risk may be cleared

    def __post_init__(self):
        object.__setattr__(self, "poverty_line", Decimal(str(self.poverty_line)))
        object.__setattr__(self, "poverty_lines",
                           {int(year): Decimal(str(amount)) for year, amount in (self.poverty_lines or {}).items()})
        object.__setattr__(self, "monitoring_factor", Decimal(str(self.monitoring_factor)))
        object.__setattr__(self, "monitoring_min_months", int(self.monitoring_min_months))

    def poverty_line_for(self, year):
        return self.poverty_lines.get(int(year), self.poverty_line)

    def monitoring_line_for(self, year):
        return (self.poverty_line_for(year) * self.monitoring_factor).quantize(CENT, rounding=ROUND_HALF_UP)


DEFAULT_DEPARTMENTS = ("transport", "water", "power", "health", "housing", "education", "agriculture",
                       "civil_affairs", "finance", "poverty_office", "other")


@dataclass(frozen=True)
class CountyRules:
    """The county section of the rulebook: values every service reads. The registry owns it (the
    county's own register); the other services ask the registry for it (services/common/chassis)."""

    timezone: str = "Asia/Shanghai"  # the county's clock: business dates are dates in this zone
    departments: tuple = DEFAULT_DEPARTMENTS  # the county's departments (DOMAIN.md "Codes")

    def __post_init__(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}: an IANA name such as Asia/Shanghai") from None
        if isinstance(self.departments, str) or not all(isinstance(d, str) and d for d in self.departments):
            raise ValueError("departments must be a list of codes")
        object.__setattr__(self, "departments", tuple(self.departments))


# --- formatting and personal data ------------------------------------------------------------------

def rate_text(numerator, denominator):
    if not denominator:
        return None
    return f"{(Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP):.4f}"


ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def id_number_problem(id_number):
    """Why an ID-card number is not a valid GB 11643 number, or None when it is."""
    if not isinstance(id_number, str) or len(id_number) != 18:
        return "must be 18 characters"
    body, check = id_number[:17], id_number[17].upper()
    if not body.isdigit() or not (check.isdigit() or check == "X"):
        return "must be 17 digits and a digit or X"
    try:
        date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return "the birth date in the number does not exist"
    expected = ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]
    if check != expected:
        return "the check digit is wrong (GB 11643)"
    return None


def id_number_disagreements(id_number, birth_date, sex):
    """Where a valid ID number contradicts the member's fields: digits 7–14 are the birth date
    (YYYYMMDD), the 17th digit is odd for a man and even for a woman. {field: [why]}; empty
    when they agree (or when a field is not known)."""
    problems = {}
    birth_date = _day(birth_date)
    in_number = id_number[6:14]
    if birth_date is not None and in_number != f"{birth_date:%Y%m%d}":
        written = f"{in_number[:4]}-{in_number[4:6]}-{in_number[6:]}"
        problems["birth_date"] = [f"{birth_date.isoformat()} disagrees with the ID number's birth date {written}"]
    if sex in ("male", "female"):
        in_number_sex = "male" if int(id_number[16]) % 2 else "female"
        if sex != in_number_sex:
            problems["sex"] = [f"{sex} disagrees with the ID number's 17th digit ({in_number_sex})"]
    if problems:
        problems["id_number"] = ["disagrees with " + " and ".join(name for name in ("birth_date", "sex")
                                                                  if name in problems)]
    return problems


def normalise_id_number(id_number):
    return id_number[:17] + id_number[17].upper()


def mask_id_number(id_number):
    if not id_number:
        return id_number
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:] if len(id_number) > 8 else "*" * len(id_number)


def mask_phone(phone):
    if not phone:
        return phone
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


def mask_member(member):
    return {**member, "id_number": mask_id_number(member.get("id_number")), "phone": mask_phone(member.get("phone"))}


def mask_payload(payload):
    """An event payload with its personal data masked (history for every role)."""
    masked = dict(payload)
    if "id_number" in masked:
        masked["id_number"] = mask_id_number(masked["id_number"])
    if "phone" in masked:
        masked["phone"] = mask_phone(masked["phone"])
    if isinstance(masked.get("changes"), dict):
        masked["changes"] = mask_payload(masked["changes"])
    return masked


# --- townships and villages ------------------------------------------------------------------------

def evolve_place(state, event):
    if event.type in ("township_registered", "village_registered"):
        return dict(event.payload)
    return state


def _register_once(state, payload, kind, id_field):
    if state is None:
        return [NewEvent(f"{kind}_registered", payload)]
    if state == payload:
        return []  # the same registration again changes nothing
    raise Conflict(f"{kind} {payload[id_field]} is already registered",
                   {id_field: payload[id_field],
                    "differences": {k: {"recorded": state.get(k), "given": v}
                                    for k, v in payload.items() if state.get(k) != v}})


def decide_register_township(state, command):
    return _register_once(state, {"township_id": command["township_id"], "name": command["name"]},
                          "township", "township_id")


def decide_register_village(state, command, township):
    """`township` is the township's state (None when it is not registered)."""
    if township is None:
        raise NotFound(f"no township {command['township_id']}", {"township_id": command["township_id"]})
    payload = {"village_id": command["village_id"], "township_id": command["township_id"], "name": command["name"],
               "poor_village": bool(command.get("poor_village", False))}
    return _register_once(state, payload, "village", "village_id")


# --- households: state -----------------------------------------------------------------------------

@dataclass
class Household:
    household_id: str
    household_no: str
    village_id: str
    township_id: str
    head_name: str
    poverty_causes: list
    registered_on: date
    five_guarantees: bool = False
    status: str = "poor"
    members: dict = field(default_factory=dict)  # person_id -> member dict (+ alive, removed_on, removed_reason)
    incomes: list = field(default_factory=list)  # [(year, Decimal, assessed_on)] in recording order
    assurances: list = field(default_factory=list)  # [assurances_assessed payload] in recording order
    monitoring: dict | None = None  # the open monitoring period: risk_type, reason, flagged_on, automatic
    monitoring_history: list = field(default_factory=list)  # closed periods, with cleared_on
    exits: list = field(default_factory=list)  # [(year, exited_on)]
    returns: list = field(default_factory=list)  # [(returned_on, reason)]
    policy_informant: dict | None = None  # person_id, named_on
    version: int = 0

    @property
    def monitored(self):
        return self.monitoring is not None

    def living_members(self):
        return [m for m in self.members.values() if m["alive"]]

    def latest_income(self, year=None):
        """The latest assessment (of `year` when given) by assessed_on; a later record wins a tie."""
        chosen = None
        for item in self.incomes:
            if year is not None and item[0] != year:
                continue
            if chosen is None or item[2] >= chosen[2]:
                chosen = item
        return chosen

    def latest_assurances(self, year=None):
        chosen = None
        for item in self.assurances:
            if year is not None and _day(item["assessed_on"]).year != year:
                continue
            if chosen is None or _day(item["assessed_on"]) >= _day(chosen["assessed_on"]):
                chosen = item
        return chosen


def failing_assurances(assessment):
    """The 两不愁三保障 items that do not hold in one assessment (housing must be grade A or B)."""
    failing = [name for name in ("food", "clothing", "education", "medical") if not assessment[name]]
    if assessment["housing_grade"] not in SAFE_HOUSING:
        failing.append("housing")
    if not assessment["drinking_water"]:
        failing.append("drinking_water")
    return failing


def evolve(state, event):
    """Fold one household event (stored or new) into the state; never mutates the old state."""
    if state is not None and event.type != "household_registered":
        state = copy.deepcopy(state)
    return evolve_in_place(state, event)


def evolve_in_place(state, event):
    """`evolve` without the copy: mutates `state`, so only for a state the caller owns (a fold
    from the stored events inside one command). Copying per event made a command's cost grow
    with the square of the stream's length."""
    p, kind = event.payload, event.type
    if kind == "household_registered":
        # events written before monitoring-only households have no status: they registered poor
        return Household(household_id=p["household_id"], household_no=p["household_no"], village_id=p["village_id"],
                         township_id=p["township_id"], head_name=p["head_name"],
                         poverty_causes=list(p["poverty_causes"]), registered_on=_day(p["registered_on"]),
                         five_guarantees=bool(p.get("five_guarantees", False)), status=p.get("status", "poor"),
                         version=1)
    if state is None:
        return None
    state.version += 1
    if kind == "member_added":
        state.members[p["person_id"]] = {**{name: p.get(name) for name in MEMBER_FIELDS},
                                         "person_id": p["person_id"], "alive": True}
    elif kind == "member_updated":
        state.members[p["person_id"]].update(p["changes"])
    elif kind == "member_removed":
        state.members[p["person_id"]].update(alive=False, removed_reason=p["reason"], removed_on=p["removed_on"])
        if state.policy_informant and state.policy_informant["person_id"] == p["person_id"]:
            state.policy_informant = None
    elif kind == "income_assessed":
        state.incomes.append((int(p["year"]), Decimal(p["per_capita_income"]), _day(p["assessed_on"])))
    elif kind == "assurances_assessed":
        state.assurances.append(dict(p))
    elif kind == "household_exited":
        state.status = "exited"
        state.exits.append((int(p["year"]), _day(p["exited_on"])))
    elif kind == "monitoring_flagged":
        state.monitoring = {name: p[name] for name in ("risk_type", "reason", "flagged_on", "automatic")}
    elif kind == "monitoring_cleared":
        state.monitoring_history.append({**state.monitoring, "cleared_on": p["cleared_on"]})
        state.monitoring = None
    elif kind == "returned_to_poverty":
        state.status = "poor"
        state.returns.append((_day(p["returned_on"]), p["reason"]))
    elif kind == "policy_informant_named":
        state.policy_informant = {"person_id": p["person_id"], "named_on": p["named_on"]}
    return state


# --- households: views ------------------------------------------------------------------------------

def member_view(member):
    view = {name: _iso(member.get(name)) for name in MEMBER_FIELDS}
    return {"person_id": member["person_id"], **view, "alive": member["alive"]}


def assurances_view(assessment):
    if assessment is None:
        return None
    failing = failing_assurances(assessment)
    return {**{k: v for k, v in assessment.items() if k != "household_id"}, "compliant": not failing,
            "failing": failing}


def income_view(item):
    if item is None:
        return None
    year, amount, assessed_on = item
    return {"year": year, "per_capita_income": money(amount), "assessed_on": assessed_on.isoformat()}


def household_view(state, reveal_personal_data=True):
    """A household as the API shows it. Members removed (death, moving out) are not listed."""
    members = [member_view(m) for m in state.members.values() if m["alive"]]
    if not reveal_personal_data:
        members = [mask_member(m) for m in members]
    informant = None
    if state.policy_informant:
        person = state.members.get(state.policy_informant["person_id"], {})
        informant = {**state.policy_informant, "name": person.get("name")}
    last_exit = state.exits[-1] if state.exits else None
    return {
        "household_id": state.household_id, "household_no": state.household_no, "village_id": state.village_id,
        "township_id": state.township_id, "head_name": state.head_name, "poverty_causes": list(state.poverty_causes),
        "registered_on": state.registered_on.isoformat(), "five_guarantees": state.five_guarantees,
        "status": state.status, "monitored": state.monitored,
        "monitoring": dict(state.monitoring) if state.monitoring else None,
        "monitoring_history": [dict(item) for item in state.monitoring_history],
        "members": members, "people": len(members),
        "latest_assurances": assurances_view(state.latest_assurances()),
        "latest_income": income_view(state.latest_income()),
        "exited_on": last_exit[1].isoformat() if last_exit else None,
        "exit_year": last_exit[0] if last_exit else None,
        "policy_informant": informant, "version": state.version,
    }


def mask_household(view):
    return {**view, "members": [mask_member(m) for m in view["members"]]}


# --- households: decisions ---------------------------------------------------------------------------

def _existing(state, command):
    if state is None:
        raise NotFound(f"no household {command['household_id']}", {"household_id": command["household_id"]})
    return state


def decide_register_household(state, command, village, holder_of_number):
    """`village` is the village's state (None when unknown); `holder_of_number` the household id
    already registered under this household number, or None."""
    if village is None:
        raise NotFound(f"no village {command['village_id']}", {"village_id": command["village_id"]})
    if holder_of_number is not None:
        raise Conflict(f"household number {command['household_no']} is already registered",
                       {"household_no": command["household_no"], "household_id": holder_of_number})
    if state is not None:
        raise Conflict(f"household {command['household_id']} already exists", {"household_id": command["household_id"]})
    status = command.get("status") or "poor"
    day = command["registered_on"]
    registered = NewEvent("household_registered", {
        "household_id": command["household_id"], "household_no": command["household_no"],
        "village_id": village["village_id"], "township_id": village["township_id"],
        "head_name": command["head_name"], "poverty_causes": list(command["poverty_causes"]),
        "registered_on": day.isoformat(), "five_guarantees": bool(command.get("five_guarantees", False)),
        "status": status,
    }, day.isoformat())
    if status == "poor":
        if command.get("risk_type"):
            raise ValidationFailed("a poor household is registered without a risk type; flag monitoring instead",
                                   {"risk_type": ["only for status monitored"]})
        return [registered]
    # 边缘易致贫户: never poor, registered straight into monitoring with its risk
    risk_type = command.get("risk_type")
    if risk_type not in MONITORING_ONLY_RISKS:
        raise ValidationFailed("a monitoring-only household needs its risk type",
                               {"risk_type": [f"one of {', '.join(MONITORING_ONLY_RISKS)} for status monitored"]})
    household = evolve_in_place(None, registered)
    return [registered, _flag(household, risk_type, command.get("reason") or "registered for monitoring (边缘易致贫户)",
                              day, False)]


def _check_id_number(id_number, holder, household_id, person_id=None, member=None):
    """GB 11643 validity, agreement with the member's birth date and sex (`member`: the fields
    the member will have), then one living member county-wide. `holder` = (household_id,
    person_id) of the living member that has this number, or None."""
    problem = id_number_problem(id_number)
    if problem:
        raise ValidationFailed("the ID number is not valid", {"id_number": [problem]})
    if member is not None:
        _check_agreement(id_number, member)
    if holder is not None and tuple(holder)[1] != person_id:
        raise Conflict(f"ID number {mask_id_number(id_number)} already belongs to a living member of household "
                       f"{holder[0]}", {"rule": "id_number_unique", "id_number": mask_id_number(id_number),
                                        "household_id": holder[0], "same_household": holder[0] == household_id})


def _check_agreement(id_number, member):
    disagreements = id_number_disagreements(id_number, member.get("birth_date"), member.get("sex"))
    if disagreements:
        fields_named = " and ".join(name for name in ("birth_date", "sex") if name in disagreements)
        raise ValidationFailed(f"the ID number disagrees with the member's {fields_named}", disagreements)


def _living_member(state, person_id):
    member = state.members.get(person_id)
    if member is None or not member["alive"]:
        raise NotFound(f"no living member {person_id} in household {state.household_id}",
                       {"household_id": state.household_id, "person_id": person_id})
    return member


def decide_add_member(state, command, holder):
    household = _existing(state, command)
    id_number = normalise_id_number(command["id_number"]) if len(command["id_number"]) == 18 else command["id_number"]
    _check_id_number(id_number, holder, household.household_id, member=command)
    payload = {"household_id": household.household_id, "person_id": command["person_id"]}
    for name in MEMBER_FIELDS:
        payload[name] = _iso(command.get(name))
    payload["id_number"] = id_number
    return [NewEvent("member_added", payload)]


def decide_update_member(state, command, holder):
    household = _existing(state, command)
    member = _living_member(household, command["person_id"])
    changes = {}
    for name in MEMBER_FIELDS:
        if name in command:
            value = _iso(command[name])
            if name == "id_number" and isinstance(value, str) and len(value) == 18:
                value = normalise_id_number(value)
            if member.get(name) != value:
                changes[name] = value
    after = {**member, **changes}
    if "id_number" in changes:
        _check_id_number(changes["id_number"], holder, household.household_id, command["person_id"], member=after)
    elif {"birth_date", "sex"} & set(changes) and after.get("id_number") and len(after["id_number"]) == 18:
        _check_agreement(after["id_number"], after)
    if not changes:
        return []
    return [NewEvent("member_updated", {"household_id": household.household_id, "person_id": command["person_id"],
                                        "changes": changes})]


def decide_remove_member(state, command):
    household = _existing(state, command)
    _living_member(household, command["person_id"])
    day = command["removed_on"].isoformat()
    return [NewEvent("member_removed", {"household_id": household.household_id, "person_id": command["person_id"],
                                        "reason": command["reason"], "removed_on": day}, day)]


def _flag(household, risk_type, reason, day, automatic):
    return NewEvent("monitoring_flagged", {
        "household_id": household.household_id, "village_id": household.village_id,
        "township_id": household.township_id, "risk_type": risk_type, "reason": reason,
        "flagged_on": day.isoformat(), "automatic": automatic}, day.isoformat())


def decide_assess_income(state, command, rules):
    """Record the year's per-capita income. Below the monitoring line (factor × poverty line of
    that year), an exited household not yet monitored is flagged automatically, in the same
    command. (A poor household is under assistance already, so it is not flagged.)"""
    household = _existing(state, command)
    year, amount, day = command["year"], command["per_capita_income"], command["assessed_on"]
    events = [NewEvent("income_assessed", {"household_id": household.household_id, "year": year,
                                           "per_capita_income": money(amount), "assessed_on": day.isoformat()},
                       day.isoformat())]
    line = rules.monitoring_line_for(year)
    if household.status != "poor" and not household.monitored and amount < line:
        events.append(_flag(household, "unstable" if household.status == "exited" else "marginal",
                            f"per-capita income {money(amount)} yuan for {year} is below the monitoring line "
                            f"{money(line)} yuan", day, True))
    return events


def decide_assess_assurances(state, command):
    household = _existing(state, command)
    day = command["assessed_on"].isoformat()
    return [NewEvent("assurances_assessed", {
        "household_id": household.household_id, "assessed_on": day,
        **{name: bool(command[name]) for name in ("food", "clothing", "education", "medical")},
        "housing_grade": command["housing_grade"], "drinking_water": bool(command["drinking_water"]),
    }, day)]


def exit_failing_items(state, year, rules):
    """What stops the household from exiting in `year`: {item: why}; empty when it may exit."""
    failing = {}
    income = state.latest_income(year)
    line = rules.poverty_line_for(year)
    if income is None:
        failing["income"] = f"no income assessed for {year}"
    elif income[1] < line:
        failing["income"] = f"per-capita income {money(income[1])} yuan is below the poverty line {money(line)} yuan"
    assessment = state.latest_assurances(year)  # an assessment from an earlier year does not count
    if assessment is None:
        for name in ASSURANCE_ITEMS:
            failing[name] = f"两不愁三保障 not assessed in {year}"
    else:
        for name in failing_assurances(assessment):
            failing[name] = (f"housing grade {assessment['housing_grade']} is not safe (A or B)" if name == "housing"
                             else f"{name} does not hold (assessed {assessment['assessed_on']})")
    return failing


def decide_exit(state, command, rules):
    household = _existing(state, command)
    if household.status == "exited":
        raise RuleRefused(f"household {household.household_id} has already exited poverty",
                          {"rule": "exit_once", "status": household.status, "failing": ["status"]})
    if household.status != "poor":
        raise RuleRefused(f"household {household.household_id} was never registered poor, so it cannot exit poverty",
                          {"rule": "exit_only_poor", "status": household.status, "failing": ["status"]})
    year, day = command["year"], command["exited_on"]
    failing = exit_failing_items(household, year, rules)
    if failing:
        raise RuleRefused(f"household {household.household_id} cannot exit poverty: {', '.join(failing)} failing",
                          {"rule": "exit_conditions", "failing": list(failing), "reasons": failing,
                           "poverty_line": money(rules.poverty_line_for(year))})
    return [NewEvent("household_exited", {
        "household_id": household.household_id, "village_id": household.village_id,
        "township_id": household.township_id, "year": year, "exited_on": day.isoformat()}, day.isoformat())]


def decide_flag_monitoring(state, command):
    household = _existing(state, command)
    if household.monitored:
        raise RuleRefused(f"household {household.household_id} is already under monitoring since "
                          f"{household.monitoring['flagged_on']}",
                          {"rule": "flag_once", "monitoring": dict(household.monitoring)})
    return [_flag(household, command["risk_type"], command["reason"], command["flagged_on"], False)]


def decide_clear_monitoring(state, command, rules):
    """Risk cleared (风险消除): the latest income ≥ the monitoring line of its year and at least
    `monitoring_min_months` months under monitoring; otherwise refused with the failing items."""
    household = _existing(state, command)
    if not household.monitored:
        raise RuleRefused(f"household {household.household_id} is not under monitoring",
                          {"rule": "clear_only_monitored", "failing": ["monitored"]})
    day = command["cleared_on"]
    flagged_on = _day(household.monitoring["flagged_on"])
    failing = {}
    earliest = add_months(flagged_on, rules.monitoring_min_months)
    if day < earliest:
        failing["months_monitored"] = (f"monitored since {flagged_on}; at least {rules.monitoring_min_months} "
                                       f"months are needed, so not before {earliest}")
    income = household.latest_income()
    if income is None:
        failing["income"] = "no income assessed"
    elif income[1] < rules.monitoring_line_for(income[0]):
        failing["income"] = (f"per-capita income {money(income[1])} yuan for {income[0]} is below the monitoring "
                             f"line {money(rules.monitoring_line_for(income[0]))} yuan")
    if failing:
        raise RuleRefused(f"the risk of household {household.household_id} cannot be cleared: "
                          f"{', '.join(failing)} failing",
                          {"rule": "clear_conditions", "failing": list(failing), "reasons": failing,
                           "earliest_clearing": earliest.isoformat()})
    return [NewEvent("monitoring_cleared", {"household_id": household.household_id, "cleared_on": day.isoformat()},
                     day.isoformat())]


def decide_return_to_poverty(state, command):
    household = _existing(state, command)
    if household.status != "exited":
        raise RuleRefused(f"household {household.household_id} has not exited poverty, so it cannot return to it",
                          {"rule": "return_only_after_exit", "status": household.status})
    day = command["returned_on"].isoformat()
    return [NewEvent("returned_to_poverty", {"household_id": household.household_id, "returned_on": day,
                                             "reason": command["reason"]}, day)]


def decide_name_policy_informant(state, command):
    household = _existing(state, command)
    _living_member(household, command["person_id"])
    if household.policy_informant and household.policy_informant["person_id"] == command["person_id"]:
        return []
    day = command["named_on"].isoformat()
    return [NewEvent("policy_informant_named", {"household_id": household.household_id,
                                                "person_id": command["person_id"], "named_on": day}, day)]


# --- statistics (pure; the service feeds them from its read models) ---------------------------------

def statistics(scope, year, households, exits, assurance_years):
    """Households and people by status, exits in `year`, monitored households, and the
    两不愁三保障 compliance rate among the households assessed in `year` (latest assessment).

    households: dicts with status, monitored, risk_type, people; exits: [exited_on dates];
    assurance_years: [compliant bools], one per household assessed in the year."""
    by_status = {status: 0 for status in STATUSES}
    people = {status: 0 for status in STATUSES}
    by_risk = {risk: 0 for risk in RISK_TYPES}
    monitored = 0
    for item in households:
        by_status[item["status"]] += 1
        people[item["status"]] += item["people"]
        if item["monitored"]:
            monitored += 1
            if item.get("risk_type") in by_risk:
                by_risk[item["risk_type"]] += 1
    compliant = sum(1 for ok in assurance_years if ok)
    return {
        **scope, "year": year,
        "households": {"total": len(households), **by_status},
        "people": {"total": sum(people.values()), **people},
        "exits_this_year": sum(1 for day in exits if _day(day).year == year),
        "monitored": monitored, "monitored_by_risk": by_risk,
        "assurances": {"assessed": len(assurance_years), "compliant": compliant,
                       "compliance_rate": rate_text(compliant, len(assurance_years))},
    }

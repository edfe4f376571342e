"""Read models of the registry, updated in the append's transaction and rebuildable.

A household event refreshes the household's rows from its stream folded up to that event, so a
row always says what the events say (live and after a rebuild). `living_id_numbers` has the keyed
hash of the ID number as primary key: two living members with one number cannot both commit, and
the number itself is not stored there. ID and phone numbers in `households.detail` are encrypted
with the household's data key (personal_data.py); the readers below decrypt them.
"""
from datetime import date

from sqlalchemy import (
    Boolean, Column, Date, Index, Integer, MetaData, Table, Text, bindparam, delete, func, select, text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.commands import fold
from services.common.store import EventStore

from . import domain, personal_data

READ_MODEL_TABLES = ("townships", "villages", "households", "living_id_numbers", "household_exits",
                     "household_assurance_years")

metadata = MetaData()

townships = Table(
    "townships", metadata,
    Column("township_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
)

villages = Table(
    "villages", metadata,
    Column("village_id", Text, primary_key=True),
    Column("township_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("poor_village", Boolean, nullable=False),
    Index("ix_villages_township", "township_id"),
)

households = Table(
    "households", metadata,
    Column("household_id", Text, primary_key=True),
    Column("household_no", Text, nullable=False, unique=True),
    Column("village_id", Text, nullable=False),
    Column("township_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("monitored", Boolean, nullable=False),
    Column("risk_type", Text),
    Column("people", Integer, nullable=False),
    Column("detail", JSONB, nullable=False),  # domain.household_view, ID and phone numbers encrypted
    Index("ix_households_village", "village_id"),
    Index("ix_households_township", "township_id"),
)

living_id_numbers = Table(
    "living_id_numbers", metadata,
    Column("id_hash", Text, primary_key=True),  # personal_data: HMAC of the ID number
    Column("household_id", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Index("ix_living_id_numbers_household", "household_id"),
)

household_exits = Table(
    "household_exits", metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("household_id", Text, nullable=False),
    Column("village_id", Text, nullable=False),
    Column("township_id", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("exited_on", Date, nullable=False),
)

household_assurance_years = Table(
    "household_assurance_years", metadata,
    Column("household_id", Text, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("village_id", Text, nullable=False),
    Column("township_id", Text, nullable=False),
    Column("assessed_on", Date, nullable=False),
    Column("compliant", Boolean, nullable=False),
)

HOUSEHOLD_EVENTS = ("household_registered", "member_added", "member_updated", "member_removed", "income_assessed",
                    "assurances_assessed", "household_exited", "monitoring_flagged", "monitoring_cleared",
                    "returned_to_poverty", "policy_informant_named", "personal_data_erased")
# Only these change who is living or their ID numbers (erasure makes the numbers unreadable).
MEMBER_EVENTS = ("household_registered", "member_added", "member_updated", "member_removed", "personal_data_erased")


# Written out once: SQLAlchemy does not cache the compiled form of an ON CONFLICT insert, and
# compiling it again was a tenth of a command's time (issue 17's profile).
_HOUSEHOLD_COLUMNS = ("household_id", "household_no", "village_id", "township_id", "status", "monitored",
                      "risk_type", "people", "detail")
_UPSERT_HOUSEHOLD = text(
    f"INSERT INTO households ({', '.join(_HOUSEHOLD_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _HOUSEHOLD_COLUMNS)}) ON CONFLICT (household_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _HOUSEHOLD_COLUMNS[1:])
).bindparams(bindparam("detail", type_=JSONB))


# A household event projected without its folded state (a rebuild, the erasure) refolds the
# stream from the event store (commands.Streams writes the events first).
READS_EVENT_STORE = True


def _refresh_household(session, event, state=None):
    """`state`: the household right after `event`, when the command has it already folded;
    without it (a rebuild) the stream is folded again up to the event."""
    if state is None or state.version != event.version:
        history = [e for e in EventStore(session).load("household", event.stream_id) if e.version <= event.version]
        state = fold(domain.evolve_in_place, None, history)
    view = domain.household_view(state)
    codec = personal_data.codec()
    row = {"household_no": state.household_no, "village_id": state.village_id, "township_id": state.township_id,
           "status": state.status, "monitored": state.monitored,
           "risk_type": state.monitoring["risk_type"] if state.monitoring else None,
           "people": view["people"], "detail": codec.seal_view(session, view)}
    session.execute(_UPSERT_HOUSEHOLD, {"household_id": state.household_id, **row})
    hid = state.household_id
    if event.type in MEMBER_EVENTS:
        session.execute(delete(living_id_numbers).where(living_id_numbers.c.household_id == hid))
        for member in state.living_members():
            if member.get("id_number"):  # none once the household's personal data was erased
                session.execute(pg_insert(living_id_numbers).values(id_hash=codec.id_hash(member["id_number"]),
                                                                    household_id=hid, person_id=member["person_id"]))
    if event.type == "household_exited":
        p = event.payload
        session.execute(pg_insert(household_exits).values(
            event_id=event.event_id, household_id=hid, village_id=p["village_id"], township_id=p["township_id"],
            year=int(p["year"]), exited_on=date.fromisoformat(p["exited_on"])))
    if event.type == "assurances_assessed":
        year = date.fromisoformat(event.payload["assessed_on"]).year
        latest = state.latest_assurances(year)
        values = {"village_id": state.village_id, "township_id": state.township_id,
                  "assessed_on": date.fromisoformat(latest["assessed_on"]),
                  "compliant": not domain.failing_assurances(latest)}
        session.execute(pg_insert(household_assurance_years).values(household_id=hid, year=year, **values)
                        .on_conflict_do_update(index_elements=[household_assurance_years.c.household_id,
                                                               household_assurance_years.c.year], set_=values))


def project(session, event, state=None):
    """`state`: the household after `event`, when the caller folded it (the command path)."""
    payload, kind = event.payload, event.type
    if kind == "township_registered":
        session.execute(pg_insert(townships).values(township_id=payload["township_id"], name=payload["name"]))
    elif kind == "village_registered":
        session.execute(pg_insert(villages).values(
            village_id=payload["village_id"], township_id=payload["township_id"], name=payload["name"],
            poor_village=bool(payload["poor_village"])))
    elif kind in HOUSEHOLD_EVENTS:
        _refresh_household(session, event, state)


# --- reading --------------------------------------------------------------------------------------

def find_township(session, township_id):
    row = session.execute(select(townships).where(townships.c.township_id == township_id)).first()
    return None if row is None else {"township_id": row.township_id, "name": row.name}


def village_view(row):
    return {"village_id": row.village_id, "township_id": row.township_id, "name": row.name,
            "poor_village": row.poor_village}


def find_village(session, village_id):
    row = session.execute(select(villages).where(villages.c.village_id == village_id)).first()
    return None if row is None else village_view(row)


def township_villages(session, township_id):
    rows = session.execute(select(villages).where(villages.c.township_id == township_id)
                           .order_by(villages.c.village_id))
    return [village_view(row) for row in rows]


def household_detail(session, household_id):
    detail = session.execute(select(households.c.detail).where(households.c.household_id == household_id)).scalar()
    return None if detail is None else personal_data.codec().open_views(session, [detail])[0]


def household_with_number(session, household_no):
    return session.execute(select(households.c.household_id)
                           .where(households.c.household_no == household_no)).scalar()


def id_number_holder(session, id_number):
    """(household_id, person_id) of the living member with this ID number, or None."""
    id_hash = personal_data.codec().id_hash(id_number)
    row = session.execute(select(living_id_numbers).where(living_id_numbers.c.id_hash == id_hash)).first()
    return None if row is None else (row.household_id, row.person_id)


def list_households(session, filters, limit, after):
    """Up to limit+1 household details after the household id `after`, in household id order."""
    query = select(households.c.household_id, households.c.detail).order_by(households.c.household_id) \
        .limit(limit + 1)
    for name in ("village_id", "township_id", "status", "monitored"):
        if filters.get(name) is not None:
            query = query.where(households.c[name] == filters[name])
    if after is not None:
        query = query.where(households.c.household_id > after)
    return personal_data.codec().open_views(session, [row.detail for row in session.execute(query)])


def statistics_facts(session, column, value, year):
    """What domain.statistics needs for the households whose `column` (village_id or
    township_id) is `value`."""
    rows = session.execute(select(households.c.status, households.c.monitored, households.c.risk_type,
                                  households.c.people).where(households.c[column] == value))
    facts = [{"status": r.status, "monitored": r.monitored, "risk_type": r.risk_type, "people": r.people}
             for r in rows]
    exits = [r.exited_on for r in session.execute(
        select(household_exits.c.exited_on).where(household_exits.c[column] == value,
                                                  func.extract("year", household_exits.c.exited_on) == year))]
    compliant = [r.compliant for r in session.execute(
        select(household_assurance_years.c.compliant).where(household_assurance_years.c[column] == value,
                                                            household_assurance_years.c.year == year))]
    return facts, exits, compliant

"""Assessment: consumes every service's events and answers scores, rankings and the bulletin."""
import base64
import time
import uuid
from decimal import Decimal

from nameko.events import event_handler
from services.common.rpc import rpc
from nameko.timer import timer
from sqlalchemy import event as sqlalchemy_event, text

from services.common.chassis import CountySectionFollower, EventSourcedService, change_command
from services.common.consumer import EventConsumer
from services.common.errors import NotFound, ServiceUnavailable, ValidationFailed
from services.common.pagination import decode_cursor, encode_cursor, page_limit
from services.common.validation import arguments, parse_date, validate
from services.common.web import MEDIA_TYPES

from . import bulletin, domain, evidence, incremental, periods, projections, schemas, scoring
from .facts import ScoringRulebook, evolve_scoring_rulebook

CATCH_UP_INTERVAL = 10


_RANKINGS = {}  # (facts version, subject type, period, as_of, rulebook version) -> ranked cards
_RANKINGS_KEPT = 64  # the oldest is forgotten first: under a stream of visits, each makes a new facts version
_LATEST = {}  # (subject type, period, as_of, rulebook version) -> (facts identity, change number, ranked)


def _kept_ranking(subject_type, facts, period, as_of, version):
    """Scores are a pure function of the facts: a ranking is computed once per facts version
    (what load_facts built them from), rulebook version, period and as_of, and kept; a read
    while no new event arrived never ranks again. After new events, the last ranking of the same
    query is brought up to date by scoring only the subjects they changed, when that is known
    (incremental.py); otherwise it is computed whole. Callers must not mutate the cards."""
    loaded = getattr(facts, "loaded_version", None) or id(facts)
    key = (loaded, subject_type, repr(period), as_of, version)
    ranked = _RANKINGS.get(key)
    if ranked is not None:
        return ranked
    changes = getattr(facts, "changes", None)
    identity = loaded[:2] if isinstance(loaded, tuple) else loaded
    latest = _LATEST.get(key[1:])
    restored = getattr(facts, "restored_rankings", {}).get(key[1:])
    if latest is None and restored is not None:  # persisted with the facts: current at change 0
        latest = (identity, 0, restored)
    if changes is not None and latest is not None and latest[0] == identity:
        changed = changes.since(latest[1])
        if changed is not None:
            ranked = incremental.rerank(latest[2], subject_type, changed, facts, period, as_of, version)
    if ranked is None:
        ranked = scoring.rank_all(subject_type, facts, period, as_of, version)
    _RANKINGS[key] = ranked
    if changes is not None:
        _LATEST.pop(key[1:], None)  # re-inserted: the most recently ranked query is forgotten last
        _LATEST[key[1:]] = (identity, changes.count, ranked)
    # Forgetting the oldest (dicts keep insertion order), never all at once: clearing _LATEST
    # too would make the next read after the 64th new facts version rank everyone whole again.
    for kept in (_RANKINGS, _LATEST):
        while len(kept) > _RANKINGS_KEPT:
            del kept[next(iter(kept))]
    return ranked


def _current_rankings(facts):
    """The kept rankings that are current for exactly these facts, to persist with them."""
    loaded, changes = getattr(facts, "loaded_version", None), getattr(facts, "changes", None)
    if not isinstance(loaded, tuple) or changes is None:
        return {}
    return {query: ranked for query, (identity, number, ranked) in _LATEST.items()
            if identity == loaded[:2] and number == changes.count}


# A burst of score reads shares one look at the database: the freshness statement and its session
# were a third of the assessment's CPU per read under 300 reads/s. What this process writes itself
# (applied events, its own commands) is seen at once, because each write here starts a new look;
# only another replica's writes can wait up to READ_RECHECK_SECONDS to be seen.
READ_RECHECK_SECONDS = 0.05
_writes_here = {}  # database url -> writes committed by this process
_last_look = {}  # database url -> (monotonic time, writes here then, facts, months)


def _wrote_here(url):
    _writes_here[url] = _writes_here.get(url, 0) + 1


class AssessmentService(EventSourcedService, CountySectionFollower, EventConsumer):
    name = "assessment"
    projections = projections
    sources = ("registry", "assistance", "projects", "credit", "supervision")

    # --- consuming -------------------------------------------------------------------------
    def apply_events(self, session, source, events):
        projections.record_source_events(session, source, events)
        url = str(self.db.engine.url)
        sqlalchemy_event.listen(session, "after_commit", lambda _session: _wrote_here(url), once=True)

    def handle(self, *args, **kwargs):
        """A command (a rulebook, a month closed or re-opened): the next read looks again."""
        try:
            return super().handle(*args, **kwargs)
        finally:
            _wrote_here(str(self.db.engine.url))

    @event_handler("registry", "#")
    def on_registry(self, envelope):
        self.receive("registry", envelope)

    @event_handler("assistance", "#")
    def on_assistance(self, envelope):
        self.receive("assistance", envelope)

    @event_handler("projects", "#")
    def on_projects(self, envelope):
        self.receive("projects", envelope)

    @event_handler("credit", "#")
    def on_credit(self, envelope):
        self.receive("credit", envelope)

    @event_handler("supervision", "#")
    def on_supervision(self, envelope):
        self.receive("supervision", envelope)

    @timer(interval=CATCH_UP_INTERVAL, eager=True)
    def catch_up(self):
        self.catch_up_all()
        # Keep the facts cache warm here, so no request pays for loading a large history
        # (a full load of a million events takes tens of seconds; an up-to-date check, a few ms),
        # and persist them now and then, so a restart starts from them (projections.FACTS_SNAPSHOT).
        with self.db.new_session() as session:
            facts = projections.load_facts(session)
            if projections.save_facts_snapshot_if_due(session, _current_rankings(facts)) is not None:
                session.commit()

    @rpc
    def rebuild_read_models(self):
        """Forget every source event and replay every source from the start."""
        started = time.monotonic()
        # Until the replay is complete no score is answered (503 with Retry-After, from every
        # replica): a ranking over half the events would be a wrong ranking, not a slow one.
        # A transaction lock, held by a transaction of its own kept open for the whole rebuild
        # (production pools connections per transaction: no session locks); a crashed rebuild's
        # connection closes and releases it.
        guard = self.db.engine.connect()
        try:
            guard.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            guard.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": projections.REBUILD_LOCK})
            with self.db.new_session() as session:
                projections.forget_source_events(session)
                session.commit()
            _wrote_here(str(self.db.engine.url))  # reads answer 503 from now on, not the last look
            applied = self.catch_up_all(wait=True)
            replayed_at = time.monotonic()
            # Counted from the inbox: the timer's catch-up may have replayed a batch beside us.
            with self.db.new_session() as session:
                replayed = projections.replayed_counts(session)
                projections.load_facts(session)  # warm again, before the first ranking asks
                projections.save_facts_snapshot(session)  # and what a restart will start from
                session.commit()
        finally:
            guard.rollback()  # ends the guard's transaction, and with it the lock
            guard.close()
        sources = {source: (replayed.get(source, 0) if applied[source] is not None else None)
                   for source in self.sources}
        return {"service": self.name, "events_replayed": sum(n or 0 for n in sources.values()), "sources": sources,
                "replay_seconds": round(replayed_at - started, 1),
                "facts_load_seconds": round(time.monotonic() - replayed_at, 1)}

    # --- own facts ---------------------------------------------------------------------------
    @rpc
    def record_rating(self, data, context=None):
        command = validate(schemas.RecordRating(), data)
        rating_id = str(uuid.uuid4())
        return self.handle(
            "record_rating", stream_type="rating", stream_id=rating_id, evolve=lambda s, e: e.payload,
            decide=lambda state: domain.decide_rating(command, rating_id), context=context,
            result=lambda state, stored: state,
        )

    @rpc
    def record_veto(self, data, context=None):
        command = validate(schemas.RecordVeto(), data)
        veto_id = str(uuid.uuid4())
        return self.handle(
            "record_veto", stream_type="veto", stream_id=veto_id, evolve=lambda s, e: e.payload,
            decide=lambda state: domain.decide_veto(command, veto_id), context=context,
            result=lambda state, stored: state,
        )

    @rpc
    def get_rulebook(self, version=None, as_of=None):
        """The scoring rulebook in force on `as_of` (default today, county time), or as `version` made it."""
        day = None if version is not None else (parse_date(as_of, "as_of") if as_of else self.clock.today())
        with self.db.new_session() as session:
            version, rules = projections.load_facts(session).rulebook(version, day)
        return {"version": version, "rules": rules}

    @rpc
    def rulebook_section(self, as_of=None):
        """The scoring rulebook as every section shows: values in force on `as_of`, every version."""
        day = parse_date(as_of, "as_of") if as_of else self.clock.today()
        with self.db.new_session() as session:
            return projections.load_facts(session).scoring_rulebook.view(day)

    @rpc
    def publish_rulebook(self, data, context=None):
        """PUT /api/v1/rulebook: parts of the scoring rulebook, `published_on`, and the day they
        take effect (`effective_from`, default `published_on`)."""
        command = validate(schemas.PublishRulebook(), data)
        published_on, effective_from = command.pop("published_on"), command.pop("effective_from", None)
        reason = command.pop("reason", None)
        return self._publish(_json_ready(command), published_on, effective_from, reason, context)

    @rpc
    def change_rules(self, data, context=None):
        """PUT /api/v1/rulebook/assessment, as for every section: {effective_from, changes, reason}."""
        change = change_command(data)
        command = validate(schemas.PublishRulebook(), {**change["changes"], "published_on": self.clock.today()})
        command.pop("published_on")
        return self._publish(_json_ready(command), self.clock.today(), change["effective_from"], change["reason"],
                             context, answer=lambda book: book.view(change["effective_from"]))

    def _publish(self, changes, published_on, effective_from, reason, context, answer=None):
        def result(book, stored):
            if answer is not None:
                return answer(book)
            version, rules = book.rules(day=effective_from or published_on)
            return {"version": book.latest_version, "effective_from": (effective_from or published_on).isoformat(),
                    "in_force_then": version, "rules": rules}

        return self.handle(
            "publish_rulebook", stream_type="rulebook", stream_id="county", evolve=evolve_scoring_rulebook,
            initial=ScoringRulebook(),
            decide=lambda book: domain.decide_rulebook(book, changes, published_on, effective_from, reason),
            context=context, result=result,
        )

    # --- scores ------------------------------------------------------------------------------
    def _facts(self):
        return self._facts_and_months()[0]

    def _facts_and_months(self):
        """The facts and the months' closings, in one session (every score read needs both), or
        those of a look taken less than READ_RECHECK_SECONDS ago with nothing written here since."""
        url = str(self.db.engine.url)
        now, writes = time.monotonic(), _writes_here.get(url, 0)
        last = _last_look.get(url)
        if last is not None and now - last[0] < READ_RECHECK_SECONDS and last[1] == writes:
            return last[2], last[3]
        with self.db.new_session() as session:
            fresh = projections.freshness(session, rebuild_lock=True)
            if not fresh.not_rebuilding:
                raise ServiceUnavailable("the assessment is rebuilding its facts from every source; scores are "
                                         "answered again when it is done", {"retry_after": 30})
            facts, months = projections.load_facts(session, fresh), projections.month_streams(session, fresh)
        _last_look[url] = (now, writes, facts, months)
        return facts, months

    @rpc
    def subject_score(self, subject_type, subject_id, period, as_of, version=None, mask_names=False):
        """One card with its evidence named (households by number and head, cadres, villages,
        projects); `mask_names` masks the heads' names for a role that must not see them."""
        card = self._subject_card(subject_type, subject_id, period, as_of, version)
        return evidence.masked(card) if mask_names else card

    def _subject_card(self, subject_type, subject_id, period, as_of, version=None):
        facts, months = self._facts_and_months()
        if subject_id not in facts.subject_ids(subject_type):
            raise NotFound(f"no {subject_type} {subject_id!r} is known to the assessment",
                           {"subject_type": subject_type, "subject_id": subject_id})
        query = arguments(schemas.ScoreQuery(), period=period, as_of=as_of, version=version)
        period, as_of, version = scoring.parse_period(query["period"]), query["as_of"], query.get("version")
        state, status = self._period_status(period, months)
        if _answers_frozen(state, version):
            card = next((c for c in periods.frozen_cards(state, subject_type) if c["subject_id"] == subject_id), None)
            if card is None:
                raise NotFound(f"{subject_id!r} was not scored when {period.label} was closed",
                               {"subject_id": subject_id, "closed_on": status["closed_on"]})
            return {**card, "period_status": status}
        ranked = _kept_ranking(subject_type, facts, period, as_of, version)
        card = next(card for card in ranked if card["subject_id"] == subject_id)
        return {**evidence.describe(card, facts), "period_status": status}

    @rpc
    def rankings(self, subject_type, period, as_of, limit=None, cursor=None, version=None):
        if subject_type not in scoring.SUBJECT_TYPES:
            raise ValidationFailed("unknown subject type", {"subject_type": ["invalid"]})
        query = arguments(schemas.ScoreQuery(), period=period, as_of=as_of, version=version)
        (facts, months), version = self._facts_and_months(), query.get("version")
        period_, as_of_ = scoring.parse_period(query["period"]), query["as_of"]
        # the version the cards name: the one asked for, or the one in force on the scoring date
        version_, _ = facts.rulebook(version, None if version is not None else min(period_.end, as_of_))
        state, status = self._period_status(period_, months)
        if _answers_frozen(state, version):
            ranked = periods.frozen_cards(state, subject_type)
            version_, as_of_ = state.closing["rulebook_version"], parse_date(state.closing["as_of"], "as_of")
        else:
            ranked = _kept_ranking(subject_type, facts, period_, as_of_, version)
        limit, offset = page_limit(limit), int(decode_cursor(cursor) or 0)
        items = [{**{k: card[k] for k in ("subject_id", "name", "score", "grade", "rank", "vetoed", "veto_reasons")},
                  # structured, for the pages to word in their language (frozen cards carry their own)
                  "vetoes": card.get("vetoes", evidence.vetoes(card, facts) if card["vetoed"] else [])}
                 for card in ranked[offset:offset + limit]]
        more = offset + limit < len(ranked)
        return {"period": period, "as_of": as_of_.isoformat(), "rulebook_version": version_, "items": items,
                "period_status": status, "next_cursor": encode_cursor(offset + limit) if more else None}

    # --- closing a month (月度考核定格) ----------------------------------------------------------
    def _months(self):
        with self.db.new_session() as session:
            return projections.month_streams(session)

    def _period_status(self, period, months=None):
        """(the month's state if the period is a month, what the score endpoints say about it)."""
        months = self._months() if months is None else months
        if period.is_month:
            state = months.get(period.label)
            return state, periods.status_of(state)
        closed = sorted(m for m in (scoring.month_label(d) for d in period.months())
                        if m in months and months[m].status == "closed")
        return None, {"status": "open", "closed_on": None, "closed_months": closed}

    @rpc
    def close_month(self, data, context=None):
        """Freeze the month: every unit's, cadre's and township's score card as of the closing date,
        under the newest rulebook, with the watermark of the facts it was made of."""
        command = validate(schemas.CloseMonth(), data)
        month, today = command["month"], self.clock.today()
        period = periods.month_period(month)
        state = self.load_stream(periods.STREAM_TYPE, month, periods.evolve_month)
        periods.decide_close(state, month, command, today, {}, {}, None)  # refuse early, before scoring
        # Whatever the sources hold now belongs in the month: catch up first, and refuse to close
        # on a partial picture when a source does not answer.
        missing = list(self.sources)
        for _ in range(3):  # a source slow to answer once (a busy machine) is asked again
            caught_up = self.catch_up_all(wait=True)
            missing = sorted(source for source, applied in caught_up.items() if applied is None)
            if not missing:
                break
        if missing:
            raise ServiceUnavailable(f"cannot close {month}: {', '.join(missing)} did not answer, its events "
                                     "would be missing from the frozen results", {"sources": missing})
        with self.db.new_session() as session:
            projections.lock_source_events(session)
            watermark = projections.source_watermark(session)
            facts = projections.load_facts(session)
            watermark[periods.OWN] = facts.own_position
            version, _ = facts.rulebook(day=min(period.end, command["on"]))  # in force on the scoring date
            # Scored while the lock is held and without yielding: nothing is applied meanwhile.
            results = periods.freeze(facts, {t: [evidence.describe(card, facts) for card in
                                                 _kept_ranking(t, facts, period, command["on"], None)]
                                             for t in scoring.SUBJECT_TYPES})
            session.rollback()
        return self.handle(
            "close_month", stream_type=periods.STREAM_TYPE, stream_id=month, evolve=periods.evolve_month,
            decide=lambda state: periods.decide_close(state, month, command, today, results, watermark, version),
            context=context, result=lambda state, stored: _month_answer(state),
        )

    @rpc
    def reopen_month(self, data, context=None):
        command = validate(schemas.ReopenMonth(), data)
        month, today = command["month"], self.clock.today()
        return self.handle(
            "reopen_month", stream_type=periods.STREAM_TYPE, stream_id=month, evolve=periods.evolve_month,
            decide=lambda state: periods.decide_reopen(state, month, command, today),
            context=context, result=lambda state, stored: _month_answer(state),
        )

    @rpc
    def period_report(self, month):
        """A month's status, its closings and re-openings, and the late corrections against it."""
        month = arguments(schemas.MonthArgument(), month=month)["month"]
        period = periods.month_period(month)
        with self.db.new_session() as session:
            state = projections.month_streams(session).get(month)
            late = (projections.late_corrections(session, state.closing, period.start, period.end)
                    if state is not None and state.status == "closed" else [])
        answer = _month_answer(state, month)
        answer.update(late_corrections=late, late_correction_count=len(late))
        return answer

    @rpc
    def list_periods(self, year):
        """Each month of a year: open or closed, when, and how many late corrections it has."""
        year = arguments(schemas.PeriodsQuery(), year=year)["year"]
        items = []
        with self.db.new_session() as session:
            months = projections.month_streams(session)
            for number in range(1, 13):
                month = f"{year}-{number:02d}"
                state = months.get(month)
                item = _month_answer(state, month)
                if state is not None and state.status == "closed":
                    period = scoring.parse_period(month)
                    item["late_correction_count"] = len(
                        projections.late_corrections(session, state.closing, period.start, period.end))
                else:
                    item["late_correction_count"] = 0
                items.append(item)
        return {"year": year, "items": items}

    @rpc
    def pay_sheet(self, month, format="json"):
        query = arguments(schemas.PaySheetQuery(), month=month, format=format)
        month = query["month"]
        sheet = periods.pay_sheet(self._months().get(month), month)
        return _in_format(sheet, f"pay-sheet-{month}", query["format"], periods.pay_sheet_csv, periods.pay_sheet_xlsx)

    @rpc
    def weekly_bulletin(self, week, format="json"):
        query = arguments(schemas.BulletinQuery(), week=week, format=format)
        report = bulletin.weekly_bulletin(self._facts(), query["week"])
        return _in_format(report, f"bulletin-{query['week']}", query["format"], bulletin.as_csv, bulletin.as_xlsx)


def _in_format(report, name, format, as_csv, as_xlsx):
    """A report as JSON, or as a CSV/XLSX download the gateway passes on (base64 over RPC);
    `format` is one of schemas.FORMATS (checked with the query)."""
    if format == "json":
        return report
    if format == "csv":
        content, content_type = as_csv(report), f"{MEDIA_TYPES['csv']}; charset=utf-8"
    else:
        content, content_type = as_xlsx(report), MEDIA_TYPES["xlsx"]
    return {"filename": f"{name}.{format}", "content_type": content_type,
            "content_base64": base64.b64encode(content).decode()}


def _answers_frozen(state, version):
    """A closed month answers its frozen results, unless another rulebook version is asked for
    (any past period can be recomputed under any version; that is not the closed result)."""
    return (state is not None and state.status == "closed"
            and (version is None or int(version) == int(state.closing["rulebook_version"])))


def _month_answer(state, month=None):
    if state is None:
        return {"month": month, "status": "open", "closed_on": None, "history": []}
    answer = {"month": state.month, "status": state.status, "closed_on": None, "history": state.history}
    if state.status == "closed":
        closing = state.closing
        answer.update(closed_on=closing["on"], note=closing.get("note", ""), as_of=closing["as_of"],
                      rulebook_version=closing["rulebook_version"], summary=closing["summary"],
                      closed_by=closing.get("by"), watermark=closing["watermark"])
    return answer


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    return value

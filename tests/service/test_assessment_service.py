"""The assessment service on real PostgreSQL and RabbitMQ, fed by the real registry,
assistance, projects, credit and supervision services: catch-up after downtime, live updates over the bus,
rebuild equal to live, own facts (ratings, vetoes, rulebooks) and the bulletin downloads."""
import base64
import io

import pytest
from openpyxl import load_workbook

from services.assessment.service import AssessmentService
from services.assistance.service import AssistanceService
from services.common.errors import NotFound, ServiceUnavailable, ValidationFailed
from services.credit.service import CreditService
from services.projects.service import ProjectsService
from services.registry.service import RegistryService
from services.supervision.service import SupervisionService
from tests import support

ADMIN = {"actor": {"id": "office", "role": "leading_group"}}
SOURCES = (RegistryService, AssistanceService, ProjectsService, CreditService, SupervisionService)
Q1 = ("2023-Q1", "2023-04-10")


@pytest.fixture(scope="module")
def databases(infra):
    return {name: support.fresh_database(name, f"assessment_svc_{name}")
            for name in ("registry", "assistance", "projects", "credit", "supervision", "assessment")}


@pytest.fixture
def sources(amqp_uri, databases):
    with support.running_services(amqp_uri, databases, *SOURCES) as cluster:
        yield cluster


def assessment(amqp_uri, databases):
    return support.running(AssessmentService,
                           support.service_config("assessment", amqp_uri, databases["assessment"]))


def seed_county(rpc):
    """One township, village and household; a transport unit with one cadre paired from
    1 January 2023 who visits in January and February but not March; one county-level road
    due 31 August 2023 and completed on time."""
    rpc.registry.register_township({"township_id": "T1", "name": "长岭乡"}, ADMIN)
    rpc.registry.register_village({"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True},
                                  ADMIN)
    household = rpc.registry.register_household(
        {"household_no": "HH-001", "village_id": "V1", "head_name": "张三", "poverty_causes": ["illness"],
         "registered_on": "2022-12-01"}, ADMIN)["household_id"]
    rpc.assistance.register_unit({"unit_id": "U1", "name": "县交通运输局", "department": "transport",
                                  "parent_unit_id": None}, ADMIN)
    rpc.assistance.register_cadre({"cadre_id": "C1", "unit_id": "U1", "name": "李四", "rank": "staff",
                                   "deputy_section_or_above": False}, ADMIN)
    rpc.assistance.pair_household({"cadre_id": "C1", "household_id": household, "from": "2023-01-01"}, ADMIN)
    for day in ("2023-01-12", "2023-02-08"):
        visit(rpc, household, day)
    rpc.projects.plan_project({"project_id": "TR-1", "title": "长岭村通村公路", "department": "transport",
                               "category": "village_road", "level": "county", "township_id": "T1",
                               "village_ids": ["V1"], "planned_quantity": "3", "quantity_unit": "km",
                               "budget": "900000.00", "funding_sources": [], "plan_year": 2023}, ADMIN)
    rpc.projects.start_project({"project_id": "TR-1", "on": "2023-03-01"}, ADMIN)
    rpc.projects.complete_project({"project_id": "TR-1", "on": "2023-08-20", "quantity_done": "3"}, ADMIN)
    return household


def visit(rpc, household, day):
    return rpc.assistance.record_visit({"cadre_id": "C1", "household_id": household, "visited_on": day,
                                        "measures": ["产业帮扶"], "outcome": "养牛两头", "changes": "",
                                        "policy_explained": True}, ADMIN)


def indicator(card, name):
    return next(i for i in card["indicators"] if i["name"] == name)


def visits_counted(rpc, numerator, denominator):
    def check():
        try:
            card = rpc.assessment.subject_score("cadre", "C1", *Q1)
        except (NotFound, ServiceUnavailable):  # not known yet; the assistance rulebook not received yet
            return False
        # Events arrive one by one over the bus as well as in catch-up batches: the cadre may be
        # known before its pairing, and then the indicator does not apply yet.
        found = [i for i in card["indicators"] if i["name"] == "visit_compliance"]
        return bool(found) and (found[0]["numerator"], found[0]["denominator"]) == (numerator, denominator)
    return check


def test_events_made_while_assessment_was_down_count_once_it_starts_then_live(amqp_uri, databases, sources):
    rpc = sources
    household = seed_county(rpc)  # the assessment service is not running yet
    with assessment(amqp_uri, databases):
        # Jan and Feb visited, March missed: 2 of 3 complete months, found by catch-up.
        support.wait_until(visits_counted(rpc, 2, 3), message="catch-up after downtime")
        # Each source is caught up on its own: the registry's household (which names the evidence)
        # can arrive after the assistance's visits have been counted.
        support.wait_until(lambda: indicator(rpc.assessment.subject_score("cadre", "C1", *Q1),
                                             "visit_compliance")["evidence"][0]["household_no"] is not None,
                           message="the registry's catch-up names the household")
        card = rpc.assessment.subject_score("cadre", "C1", *Q1)
        visits = indicator(card, "visit_compliance")
        # Named so a person can act on it: household number and head, village, cadre (issue 19).
        assert visits["evidence"] == [{"household_id": household, "month": "2023-03", "cadre_id": "C1",
                                       "pairing_id": visits["evidence"][0]["pairing_id"], "visits": 0, "required": 1,
                                       "household_no": "HH-001", "head_name": "张三", "village_id": "V1",
                                       "village_name": "长岭村", "cadre_name": "李四"}]
        masked = rpc.assessment.subject_score("cadre", "C1", *Q1, None, True)
        assert indicator(masked, "visit_compliance")["evidence"][0]["head_name"] == "张*"
        # A visit while it runs arrives over RabbitMQ.
        visit(rpc, household, "2023-03-30")
        support.wait_until(visits_counted(rpc, 3, 3), message="live event over the bus")
        unit = rpc.assessment.subject_score("unit", "U1", "2023", "2023-12-31")
        delivery = indicator(unit, "project_delivery")
        assert (delivery["numerator"], delivery["denominator"]) == (1, 1)

        live = {kind: rpc.assessment.rankings(kind, "2023", "2023-12-31") for kind in ("unit", "cadre", "township")}
        replayed = rpc.assessment.rebuild_read_models()
        held = {source: len(getattr(rpc, source).events_since(0, 5000))
                for source in ("registry", "assistance", "projects", "credit", "supervision")}
        assert replayed["sources"] == held and replayed["events_replayed"] == sum(held.values())
        rebuilt = {kind: rpc.assessment.rankings(kind, "2023", "2023-12-31") for kind in ("unit", "cadre", "township")}
        assert rebuilt == live


def test_own_facts_veto_and_rulebook_versions(amqp_uri, databases, sources):
    rpc = sources
    seed_county(rpc)
    with assessment(amqp_uri, databases):
        support.wait_until(visits_counted(rpc, 2, 3), message="catch-up")
        before = rpc.assessment.subject_score("cadre", "C1", *Q1)
        # Cadre C1 in Q1: visits 2/3 of weight 50; no exam was held in Q1, so policy_exam does not
        # apply (DOMAIN.md, changed: it used to count 0 of 20); no checks, ratings or stationing.
        # 100 × (50 × 2/3) / 50 = 66.67
        assert before["score"] == 66.67 and before["grade"] == "poor" and before["rulebook_version"] == 1
        assert "policy_exam" not in [i["name"] for i in before["indicators"]]

        # visits_per_month's one home is the assistance section; a change there, effective from
        # 1 April, leaves Q1 alone; effective from 1 January it makes Q1's single visits short
        assert "visits_per_month" not in rpc.assessment.get_rulebook()["rules"]
        rpc.assistance.change_rules({"effective_from": "2023-04-01", "changes": {"visits_per_month": 3}}, ADMIN)
        rpc.assistance.change_rules({"effective_from": "2023-01-01", "changes": {"visits_per_month": 2},
                                     "reason": "县扶贫办通知"}, ADMIN)
        support.wait_until(lambda: rpc.assessment.subject_score("cadre", "C1", *Q1)["score"] == 0.0,
                           message="the assistance section's change reaches the scores")
        after = rpc.assessment.subject_score("cadre", "C1", *Q1)
        # Two visits a month in force on 31 March: one each in January and February is short → 0 / 3
        assert after["rulebook_sections"]["assistance"] == 2 and after["rulebook_version"] == 1
        # the scoring rulebook is effective-dated too: a change from 2024 leaves Q1 2023 on v1,
        # one effective from 1 January 2023 (published later) is in force for it
        published = rpc.assessment.publish_rulebook({"weights": {"cadre": {"visit_compliance": 100}},
                                                     "published_on": "2024-01-05"}, ADMIN)
        assert (published["version"], published["effective_from"]) == (2, "2024-01-05")
        assert rpc.assessment.subject_score("cadre", "C1", *Q1)["rulebook_version"] == 1
        assert rpc.assessment.subject_score("cadre", "C1", *Q1, version=2)["rulebook_version"] == 2
        rpc.assessment.change_rules({"effective_from": "2023-01-01", "changes": {"restriction_years": 2},
                                     "reason": "县考核办2023年1号文"}, ADMIN)
        assert rpc.assessment.subject_score("cadre", "C1", *Q1)["rulebook_version"] == 3
        section = rpc.assessment.rulebook_section("2023-06-01")
        assert (section["version_in_force"], section["values"]["restriction_years"]) == (3, 2)
        assert [(v["version"], v["effective_from"]) for v in section["versions"]] == \
            [(1, "1900-01-01"), (2, "2024-01-05"), (3, "2023-01-01")]
        assert section["versions"][2]["actor"] == ADMIN["actor"]

        rpc.assessment.record_rating({"subject_type": "cadre", "subject_id": "C1", "rating": "good",
                                      "source": "county", "rated_on": "2023-03-15"}, ADMIN)
        rpc.assessment.record_veto({"subject_type": "unit", "subject_id": "U1", "reason": "重大安全事故",
                                    "on": "2023-02-01"}, ADMIN)
        cadre = rpc.assessment.subject_score("cadre", "C1", *Q1)
        assert cadre["pay"]["rewards"] == "1000.00" and cadre["pay"]["external_good_ratings"] == 1
        unit = rpc.assessment.rankings("unit", *Q1)["items"][0]
        assert unit["vetoed"] and unit["grade"] == "poor" and "重大安全事故" in unit["veto_reasons"][0]
        assert unit["vetoes"] == [{"kind": "veto", "on": "2023-02-01", "reason": "重大安全事故"}]

        with pytest.raises(ValidationFailed):
            rpc.assessment.record_rating({"subject_type": "cadre", "subject_id": "C1", "rating": "great",
                                          "source": "county", "rated_on": "2023-03-15"}, ADMIN)
        with pytest.raises(NotFound):
            rpc.assessment.subject_score("cadre", "nobody", *Q1)


def test_weekly_bulletin_downloads(amqp_uri, databases, sources):
    rpc = sources
    seed_county(rpc)
    with assessment(amqp_uri, databases):
        support.wait_until(visits_counted(rpc, 2, 3), message="catch-up")
        report = rpc.assessment.weekly_bulletin("2023-W06")
        transport = next(row for row in report["rows"] if (row["kind"], row["id"]) == ("department", "transport"))
        assert transport["visits_this_week"] == 1  # 2023-02-08 is in ISO week 6
        csv_file = rpc.assessment.weekly_bulletin("2023-W06", "csv")
        assert csv_file["filename"] == "bulletin-2023-W06.csv"
        assert "transport" in base64.b64decode(csv_file["content_base64"]).decode("utf-8-sig")
        xlsx = rpc.assessment.weekly_bulletin("2023-W06", "xlsx")
        book = load_workbook(io.BytesIO(base64.b64decode(xlsx["content_base64"])))
        assert book.sheetnames


def test_source_rows_commit_in_seq_order_so_the_cached_facts_miss_none(databases):
    """load_facts reads only rows past the last seq it saw; that is safe because a writer holds
    the source_events lock from its insert to its commit. Here writer A inserts (lower seq) and
    stays open; writer B must wait for it, so B's higher seq can never be seen without A's row."""
    import uuid

    import eventlet
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from services.assessment import projections
    from services.common.events import StoredEvent

    url = databases["assessment"]
    support.truncate_all(url)
    engine = create_engine(url)

    def exam(cadre):
        return StoredEvent(1, str(uuid.uuid4()), "cadre", cadre, 1, "exam_scored", 1,
                           {"cadre_id": cadre, "unit_id": "U1", "exam_id": f"E-{cadre}", "score": 90,
                            "taken_on": "2023-06-15"})

    with Session(engine) as reader:
        assert projections.load_facts(reader).exams == {}
        reader.rollback()
        writer_a = Session(engine)
        projections.record_source_events(writer_a, "assistance", [exam("CA")])
        b_done = eventlet.event.Event()

        def writer_b():
            with Session(engine) as session:
                projections.record_source_events(session, "assistance", [exam("CB")])
                session.commit()
            b_done.send(True)

        eventlet.spawn(writer_b)
        eventlet.sleep(0.5)
        assert not b_done.ready(), "a second writer must wait for the first one's commit"
        assert projections.load_facts(reader).exams == {}  # nothing committed yet
        reader.rollback()
        writer_a.commit()
        writer_a.close()
        b_done.wait()
        assert set(projections.load_facts(reader).exams) == {"CA", "CB"}
    engine.dispose()


def test_no_score_is_answered_while_a_rebuild_replays_only_a_503_with_retry_after(amqp_uri, databases):
    """A ranking over half the replayed events would be wrong: while a rebuild holds its lock,
    scores and rankings answer ServiceUnavailable (503, Retry-After); after it, they answer."""
    from sqlalchemy import create_engine, text

    from services.assessment.projections import REBUILD_LOCK
    from services.common.errors import ServiceUnavailable

    engine = create_engine(databases["assessment"])
    try:
        with assessment(amqp_uri, databases), support.rpc_client(amqp_uri) as rpc:
            with engine.connect() as rebuilding:  # what rebuild_read_models holds while it replays
                rebuilding.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": REBUILD_LOCK})
                with pytest.raises(ServiceUnavailable) as refused:
                    rpc.assessment.rankings("unit", "2023", "2023-12-31")
                assert refused.value.details["retry_after"] >= 1
                rebuilding.rollback()
            assert "items" in rpc.assessment.rankings("unit", "2023", "2023-12-31")
    finally:
        engine.dispose()

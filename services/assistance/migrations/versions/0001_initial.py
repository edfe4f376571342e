"""event store and the assistance read models"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common.migrate import create_event_store

revision = "0001"
down_revision = None


def upgrade():
    create_event_store(op)
    op.create_table(
        "units",
        sa.Column("unit_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("parent_unit_id", sa.Text),
    )
    op.create_table(
        "unit_villages",
        sa.Column("unit_id", sa.Text, primary_key=True),
        sa.Column("village_id", sa.Text, primary_key=True),
        sa.Column("start_on", sa.Date, primary_key=True),
        sa.Column("until_on", sa.Date),
    )
    op.create_index("ix_unit_villages_village", "unit_villages", ["village_id"])
    op.create_table(
        "cadres",
        sa.Column("cadre_id", sa.Text, primary_key=True),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("rank", sa.Text, nullable=False),
        sa.Column("deputy_section_or_above", sa.Boolean, nullable=False),
    )
    op.create_index("ix_cadres_unit", "cadres", ["unit_id"])
    op.create_table(
        "pairings",
        sa.Column("pairing_id", sa.Text, primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("cadre_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("start_on", sa.Date, nullable=False),
        sa.Column("until_on", sa.Date),
        sa.Column("end_reason", sa.Text),
    )
    op.create_index("ix_pairings_cadre", "pairings", ["cadre_id"])
    op.create_index("ix_pairings_household", "pairings", ["household_id"])
    op.create_index("ix_pairings_unit", "pairings", ["unit_id"])
    op.create_table(
        "visits",
        sa.Column("visit_id", sa.Text, primary_key=True),
        sa.Column("pairing_id", sa.Text, nullable=False),
        sa.Column("cadre_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("visited_on", sa.Date, nullable=False),
        sa.Column("measures", postgresql.JSONB, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("policy_explained", sa.Boolean, nullable=False),
    )
    op.create_index("ix_visits_cadre_day", "visits", ["cadre_id", "visited_on"])
    op.create_index("ix_visits_pairing", "visits", ["pairing_id"])
    op.create_index("ix_visits_household", "visits", ["household_id"])
    op.create_index("ix_visits_unit_day", "visits", ["unit_id", "visited_on"])
    op.create_table(
        "village_visits",
        sa.Column("visit_id", sa.Text, primary_key=True),
        sa.Column("cadre_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("village_id", sa.Text, nullable=False),
        sa.Column("visited_on", sa.Date, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
    )
    op.create_index("ix_village_visits_cadre", "village_visits", ["cadre_id"])
    op.create_table(
        "inspections",
        sa.Column("inspection_id", sa.Text, primary_key=True),
        sa.Column("cadre_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("village_id", sa.Text, nullable=False),
        sa.Column("inspected_on", sa.Date, nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
    )
    op.create_index("ix_inspections_cadre", "inspections", ["cadre_id"])
    op.create_table(
        "exam_scores",
        sa.Column("event_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("cadre_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("exam_id", sa.Text, nullable=False),
        sa.Column("score", sa.Numeric(5, 1), nullable=False),
        sa.Column("taken_on", sa.Date, nullable=False),
    )
    op.create_index("ix_exam_scores_cadre", "exam_scores", ["cadre_id"])
    op.create_table(
        "awareness_checks",
        sa.Column("check_id", sa.Text, primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("checked_on", sa.Date, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("cadre_id", sa.Text),
        sa.Column("unit_id", sa.Text),
    )
    op.create_index("ix_awareness_checks_household", "awareness_checks", ["household_id"])
    op.create_index("ix_awareness_checks_cadre", "awareness_checks", ["cadre_id"])
    op.create_table(
        "stationings",
        sa.Column("stationing_id", sa.Text, primary_key=True),
        sa.Column("cadre_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("village_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("start_on", sa.Date, nullable=False),
        sa.Column("until_on", sa.Date),
    )
    op.create_index("ix_stationings_cadre", "stationings", ["cadre_id"])
    op.create_table(
        "residency_reports",
        sa.Column("cadre_id", sa.Text, primary_key=True),
        sa.Column("month", sa.Text, primary_key=True),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
    )

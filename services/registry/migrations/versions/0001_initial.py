"""event store and the registry read models"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common.migrate import create_event_store

revision = "0001"
down_revision = None


def upgrade():
    create_event_store(op)
    op.create_table(
        "townships",
        sa.Column("township_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_table(
        "villages",
        sa.Column("village_id", sa.Text, primary_key=True),
        sa.Column("township_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("poor_village", sa.Boolean, nullable=False),
    )
    op.create_index("ix_villages_township", "villages", ["township_id"])
    op.create_table(
        "households",
        sa.Column("household_id", sa.Text, primary_key=True),
        sa.Column("household_no", sa.Text, nullable=False, unique=True),
        sa.Column("village_id", sa.Text, nullable=False),
        sa.Column("township_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("monitored", sa.Boolean, nullable=False),
        sa.Column("risk_type", sa.Text),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("detail", postgresql.JSONB, nullable=False),
    )
    op.create_index("ix_households_village", "households", ["village_id"])
    op.create_index("ix_households_township", "households", ["township_id"])
    op.create_table(
        "living_id_numbers",
        sa.Column("id_number", sa.Text, primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
    )
    op.create_index("ix_living_id_numbers_household", "living_id_numbers", ["household_id"])
    op.create_table(
        "household_exits",
        sa.Column("event_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("village_id", sa.Text, nullable=False),
        sa.Column("township_id", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("exited_on", sa.Date, nullable=False),
    )
    op.create_table(
        "household_assurance_years",
        sa.Column("household_id", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("village_id", sa.Text, nullable=False),
        sa.Column("township_id", sa.Text, nullable=False),
        sa.Column("assessed_on", sa.Date, nullable=False),
        sa.Column("compliant", sa.Boolean, nullable=False),
    )

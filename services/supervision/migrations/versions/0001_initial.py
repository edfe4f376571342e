"""event store and the supervision read models"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common.migrate import create_event_store

revision = "0001"
down_revision = None


def upgrade():
    create_event_store(op)
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("actions", sa.Integer, nullable=False),
    )
    op.create_table(
        "weekly_reports",
        sa.Column("campaign_id", sa.Text, primary_key=True),
        sa.Column("unit_id", sa.Text, primary_key=True),
        sa.Column("week", sa.Text, primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
    )
    op.create_table(
        "problems",
        sa.Column("problem_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("found_on", sa.Date, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("township_id", sa.Text),
        sa.Column("household_id", sa.Text),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("closed_on", sa.Date),
        sa.Column("view", postgresql.JSONB, nullable=False),
    )
    op.create_index("ix_problems_unit", "problems", ["unit_id"])
    op.create_index("ix_problems_township", "problems", ["township_id"])
    op.create_index("ix_problems_status_deadline", "problems", ["status", "deadline"])

"""event store and the projects read models"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common.migrate import create_event_store

revision = "0001"
down_revision = None


def upgrade():
    create_event_store(op)
    op.create_table(
        "projects",
        sa.Column("project_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("township_id", sa.Text, nullable=False),
        sa.Column("village_ids", postgresql.JSONB, nullable=False),
        sa.Column("planned_quantity", sa.Text, nullable=False),
        sa.Column("quantity_unit", sa.Text, nullable=False),
        sa.Column("budget", sa.Numeric(16, 2), nullable=False),
        sa.Column("funding_sources", postgresql.JSONB, nullable=False),
        sa.Column("plan_year", sa.Integer, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_on", sa.Date),
        sa.Column("percent_complete", sa.Integer, nullable=False),
        sa.Column("quantity_done", sa.Text),
        sa.Column("last_reported_on", sa.Date),
        sa.Column("problems", sa.Text),
        sa.Column("completed_on", sa.Date),
        sa.Column("late", sa.Boolean),
        sa.Column("accepted_on", sa.Date),
        sa.Column("cancelled_on", sa.Date),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("allocated", sa.Numeric(16, 2), nullable=False),
        sa.Column("disbursed", sa.Numeric(16, 2), nullable=False),
    )
    op.create_index("ix_projects_department_year", "projects", ["department", "plan_year"])
    op.create_index("ix_projects_township", "projects", ["township_id"])
    op.create_index("ix_projects_status", "projects", ["status"])
    op.create_table(
        "project_villages",
        sa.Column("village_id", sa.Text, primary_key=True),
        sa.Column("project_id", sa.Text, primary_key=True),
    )
    op.create_table(
        "fund_movements",
        sa.Column("event_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("project_id", sa.Text, nullable=False),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("plan_year", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False),
        sa.Column("on", sa.Date, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("payee", sa.Text),
    )
    op.create_index("ix_fund_movements_department_year", "fund_movements", ["department", "plan_year"])
    op.create_index("ix_fund_movements_project", "fund_movements", ["project_id"])

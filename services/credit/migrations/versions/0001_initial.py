"""event store and the credit read models"""
import sqlalchemy as sa
from alembic import op

from services.common.migrate import create_event_store

revision = "0001"
down_revision = None


def upgrade():
    create_event_store(op)
    op.create_table(
        "loans",
        sa.Column("loan_id", sa.Text, primary_key=True),
        sa.Column("household_id", sa.Text),
        sa.Column("enterprise_name", sa.Text),
        sa.Column("township_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False),
        sa.Column("industry", sa.Text, nullable=False),
        sa.Column("term_months", sa.Integer, nullable=False),
        sa.Column("applied_on", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("recommended_on", sa.Date),
        sa.Column("decided_on", sa.Date),
        sa.Column("approved", sa.Boolean),
        sa.Column("disbursed_on", sa.Date),
        sa.Column("principal", sa.Numeric(16, 2)),
        sa.Column("maturity_date", sa.Date),
        sa.Column("principal_repaid", sa.Numeric(16, 2), nullable=False),
        sa.Column("principal_repaid_on_time", sa.Numeric(16, 2), nullable=False),
        sa.Column("outstanding", sa.Numeric(16, 2)),
        sa.Column("settled_on", sa.Date),
        sa.Column("on_time", sa.Boolean),
        sa.Column("overdue_on", sa.Date),
        sa.Column("subsidy_amount", sa.Numeric(16, 2)),
        sa.Column("subsidy_quarter", sa.Text),
        sa.Column("subsidy_paid_on", sa.Date),
    )
    op.create_index("ix_loans_township", "loans", ["township_id"])
    op.create_index("ix_loans_household", "loans", ["household_id"])
    op.create_index("ix_loans_status", "loans", ["status"])
    op.create_index("ix_loans_maturity", "loans", ["maturity_date"])
    op.create_table(
        "quotas",
        sa.Column("township_id", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("allocated", sa.Numeric(16, 2), nullable=False),
        sa.Column("approved", sa.Numeric(16, 2), nullable=False),
        sa.Column("loans_approved", sa.Integer, nullable=False),
    )

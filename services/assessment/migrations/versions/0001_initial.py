"""event store and the source events the scores are computed from"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common.migrate import create_event_store

revision = "0001"
down_revision = None


def upgrade():
    create_event_store(op)
    op.create_table(
        "source_events",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("global_position", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
    )

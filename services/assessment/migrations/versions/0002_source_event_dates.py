"""source events keep their business date and when their service recorded them, so events dated
into a closed month (late corrections) are found without reading every row"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    # Rows already here predate every closing (closing a month arrives with this revision), so
    # none of them can be a late correction: no backfill.
    op.add_column("source_events", sa.Column("dated", sa.Date))
    op.add_column("source_events", sa.Column("recorded_at", sa.DateTime(timezone=True)))
    op.create_index("ix_source_events_dated", "source_events", ["dated"])


def downgrade():
    op.drop_index("ix_source_events_dated", "source_events")
    op.drop_column("source_events", "recorded_at")
    op.drop_column("source_events", "dated")

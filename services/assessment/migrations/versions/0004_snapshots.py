"""the event store's snapshots table (issue 17: a command folds only the events after it)"""
from alembic import op

from services.common.migrate import create_snapshots

revision = "0004_snapshots"
down_revision = "0003"


def upgrade():
    create_snapshots(op)


def downgrade():
    op.drop_table("snapshots")

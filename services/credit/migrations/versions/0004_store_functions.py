"""the event store's server-side functions (issue 17: a command's lock, snapshot and load in one call)"""
from alembic import op

from services.common.migrate import create_store_functions

revision = "0004_store_functions"
down_revision = "0003_snapshots"


def upgrade():
    create_store_functions(op)


def downgrade():
    op.execute("DROP FUNCTION fupin_load_stream; DROP FUNCTION fupin_append_events")

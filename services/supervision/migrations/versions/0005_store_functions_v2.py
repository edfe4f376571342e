"""the event store's functions, v2: fupin_load_stream also returns fupin_stream_key (a codec's key, read with the stream)"""
from alembic import op

from services.common.migrate import create_store_functions

revision = "0005_store_functions_v2"
down_revision = "0004_store_functions"


def upgrade():
    create_store_functions(op)


def downgrade():
    pass  # v1's fupin_load_stream differs only in its last column; the v1 migration's downgrade drops it

"""fupin_stream_key for households: their wrapped data key, read by a command with the stream (issue 17)"""
from alembic import op

from services.registry.personal_data import HOUSEHOLD_STREAM_KEY

revision = "0007_household_stream_key"
down_revision = "0006_store_functions_v2"


def upgrade():
    op.execute(HOUSEHOLD_STREAM_KEY)


def downgrade():
    op.execute("CREATE OR REPLACE FUNCTION fupin_stream_key(p_type text, p_id text) RETURNS text LANGUAGE sql STABLE "
               "AS 'SELECT NULL::text'")

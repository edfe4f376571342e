"""event store v2: the quarantine of poison events, indexes for pruning idempotency keys and the inbox"""
from alembic import op

from services.common.migrate import add_quarantine_and_retention

revision = "0002"
down_revision = "0001"


def upgrade():
    add_quarantine_and_retention(op)

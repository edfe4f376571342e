"""idempotency keys: POST /users answers a retried request with its first result"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("command_type", sa.Text, nullable=False),
        sa.Column("result", postgresql.JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_idempotency_keys_recorded_at", "idempotency_keys", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")

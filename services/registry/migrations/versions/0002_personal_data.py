"""personal data at rest (issue 22): a data key per household, and the ID-number uniqueness
read model keyed by a keyed hash instead of the number. The registry seals the personal fields
of older events and rebuilds its read models on its next start (services/registry/personal_data.py)."""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"


def upgrade():
    op.create_table(
        "household_keys",
        sa.Column("household_id", sa.Text, primary_key=True),
        sa.Column("kek_id", sa.Text),
        sa.Column("wrapped_key", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
        sa.Column("erased_by", postgresql.JSONB),
        sa.Column("erasure_reason", sa.Text),
    )
    # the rows hold plaintext numbers until the start-up rebuild replaces them by hashes
    op.alter_column("living_id_numbers", "id_number", new_column_name="id_hash")


def downgrade():
    op.alter_column("living_id_numbers", "id_hash", new_column_name="id_number")
    op.drop_table("household_keys")

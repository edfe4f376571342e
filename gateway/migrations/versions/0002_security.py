"""security (issue 22): login failures and locks, password history, revoked tokens, and an
append-only audit trail chained by hash (existing rows are chained here, oldest first)."""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

# Refuses every UPDATE and TRUNCATE of the audit trail, and every DELETE of a row younger than the
# retention (180 days, 网络安全法 第二十一条); older rows only inside a transaction that sets
# fupin.audit_prune = 'on' (docs/security.md). The hash chain shows whatever gets past this.
AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.at < now() - interval '180 days'
     AND coalesce(current_setting('fupin.audit_prune', true), '') = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();
"""


def upgrade() -> None:
    from gateway.audit import GENESIS, chain_hash

    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("failures_reset_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("tokens_valid_after", sa.Float))
    op.add_column("users", sa.Column("password_changed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "login_failures",
        sa.Column("failure_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("client_address", sa.Text, nullable=False),
    )
    op.create_index("ix_login_failures_username", "login_failures", ["username", "at"])
    op.create_index("ix_login_failures_address", "login_failures", ["client_address", "at"])
    op.create_table(
        "password_history",
        sa.Column("entry_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_password_history_user", "password_history", ["user_id", "entry_id"])
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("audit_log", sa.Column("prev_hash", sa.Text))
    op.add_column("audit_log", sa.Column("row_hash", sa.Text))
    bind = op.get_bind()
    previous = GENESIS
    rows = bind.execute(sa.text("SELECT * FROM audit_log ORDER BY audit_id")).mappings().all()
    for row in rows:
        digest = chain_hash(previous, dict(row))
        bind.execute(sa.text("UPDATE audit_log SET prev_hash = :p, row_hash = :h WHERE audit_id = :id"),
                     {"p": previous, "h": digest, "id": row["audit_id"]})
        previous = digest
    op.alter_column("audit_log", "prev_hash", nullable=False)
    op.alter_column("audit_log", "row_hash", nullable=False)
    op.execute(AUDIT_GUARD)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_truncate ON audit_log;"
               "DROP FUNCTION audit_log_guard()")
    op.drop_column("audit_log", "row_hash")
    op.drop_column("audit_log", "prev_hash")
    op.drop_table("revoked_tokens")
    op.drop_table("password_history")
    op.drop_table("login_failures")
    for column in ("locked_until", "failures_reset_at", "tokens_valid_after", "password_changed_at"):
        op.drop_column("users", column)

"""Each service's migrations build exactly the tables its code declares.

Alembic's autogenerate compares a database migrated to head with the service's MetaData (the
event store's tables plus its read models); any difference — a missing index, a column only one
side has — means the next `fupin rebuild` or a fresh deploy would run on a schema the code does
not expect.
"""
import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from services.common.config import REPO_ROOT
from tests import support

# Every service with migrations: the event store's tables plus its read models.
DECLARED = {
    folder.parent.name: ["services.common.store", f"services.{folder.parent.name}.projections"]
    for folder in sorted((REPO_ROOT / "services").glob("*/migrations"))
}
DECLARED["registry"].append("services.registry.personal_data")  # household_keys: not a read model
# users, sign-in state, the audit trail, and the event store's idempotency_keys table (POST /users)
DECLARED["gateway"] = ["gateway.auth", "gateway.audit", "services.common.store:idempotency_keys"]


def declared_tables(component):
    combined = MetaData()
    for entry in DECLARED[component]:
        module, _, only = entry.partition(":")
        for name, table in importlib.import_module(module).metadata.tables.items():
            if not only or name == only:
                table.to_metadata(combined)
    return combined


@pytest.mark.parametrize("service", sorted(DECLARED))
def test_migrations_and_table_definitions_agree(service):
    url = support.fresh_database(service, name=f"{service}_schema")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = [
                difference for difference in compare_metadata(context, declared_tables(service))
                if not (difference[0] == "remove_table" and difference[1].name == "alembic_version")
            ]
    finally:
        engine.dispose()
    assert differences == [], f"{service}: migrations and table definitions differ: {differences}"

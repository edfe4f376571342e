"""The services' boundary contracts, as the gateway speaks them: each service's `schemas`
module holds the schemas of its commands (`COMMAND_SCHEMAS`) and of its queries, used by the
gateway to check a request and by the service to check the same call again at its own door.
Imported here by name, so the dependency shows in the import graph."""
from marshmallow import Schema

from services.assessment import schemas as assessment
from services.assistance import schemas as assistance
from services.credit import schemas as credit
from services.projects import schemas as projects
from services.registry import schemas as registry
from services.supervision import schemas as supervision

CONTRACTS = {"assessment": assessment, "assistance": assistance, "credit": credit, "projects": projects,
             "registry": registry, "supervision": supervision}


def command_schema(service: str, command: str) -> type[Schema]:
    """The schema `service` checks `command` with (KeyError at import time if it has none)."""
    schema: type[Schema] = CONTRACTS[service].COMMAND_SCHEMAS[command]
    return schema

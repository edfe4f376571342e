"""Errors that cross RPC with a code and details and become HTTP errors in the gateway.

Each class is registered with nameko's exception registry, so a caller over RPC gets the
same class back (not a bare RemoteError) with its message and details intact.
"""
import json
from typing import Any

from nameko.exceptions import deserialize_to_instance


class FupinError(Exception):
    """Base of every error we raise on purpose. `code` and `http_status` are fixed per class."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, details: Any = None) -> None:
        # nameko turns every non-string in exception args into a string on the way over RPC;
        # carrying the details as JSON keeps numbers, booleans and nulls as they were.
        if isinstance(details, str):
            details = json.loads(details)
        self.message = message
        self.details = details or {}
        super().__init__(message, json.dumps(self.details, ensure_ascii=False, default=str))

    def __str__(self) -> Any:
        return self.message

    def as_dict(self) -> Any:
        return {"code": self.code, "message": self.message, "details": self.details}


@deserialize_to_instance
class ValidationFailed(FupinError):
    """Bad input: details map each field to a list of messages."""

    code = "validation_error"
    http_status = 400


@deserialize_to_instance
class NotFound(FupinError):
    code = "not_found"
    http_status = 404


@deserialize_to_instance
class Conflict(FupinError):
    """A duplicate, or a concurrent change to the same stream."""

    code = "conflict"
    http_status = 409


@deserialize_to_instance
class RuleRefused(FupinError):
    """A domain rule said no; details name the rule and the failing items."""

    code = "rule_refused"
    http_status = 422


@deserialize_to_instance
class Forbidden(FupinError):
    code = "forbidden"
    http_status = 403


@deserialize_to_instance
class ServiceUnavailable(FupinError):
    """Another service is not running or did not answer in time; the caller may retry."""

    code = "service_unavailable"
    http_status = 503


ERRORS_BY_CODE = {cls.code: cls for cls in (ValidationFailed, NotFound, Conflict, RuleRefused, Forbidden,
                                            ServiceUnavailable)}


def call_service(proxy: Any, service: str, method: str, *args: Any, timeout: float = 30) -> Any:
    """Call another service's RPC method; a service that is down or silent becomes a clear
    ServiceUnavailable (503) instead of a hang or an internal error."""
    import eventlet
    from nameko.exceptions import UnknownService

    try:
        with eventlet.Timeout(timeout):
            return getattr(proxy, method).call_async(*args).result()
    except eventlet.Timeout:
        raise ServiceUnavailable(f"the {service} service did not answer within {timeout}s; try again",
                                 {"service": service}) from None
    except UnknownService:
        raise ServiceUnavailable(f"the {service} service is not running; try again later",
                                 {"service": service}) from None

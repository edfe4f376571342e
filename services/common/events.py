"""The shape of events as deciders produce them and as the store hands them back."""
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NewEvent:
    """What a decider returns: a type and a JSON-ready payload (money as "123.45", dates ISO).

    `occurred_on` is the business date (ISO string) the event is about, when it has one.
    """

    type: str
    payload: dict
    occurred_on: str | None = None
    schema_version: int = 1


@dataclass(frozen=True)
class StoredEvent:
    global_position: int
    event_id: str
    stream_type: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    payload: dict
    metadata: dict = field(default_factory=dict)
    occurred_on: str | None = None
    recorded_at: str | None = None

    def as_dict(self) -> Any:
        return {
            "global_position": self.global_position,
            "event_id": self.event_id,
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "payload": self.payload,
            "metadata": self.metadata,
            "occurred_on": self.occurred_on,
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StoredEvent":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def history_item(event: Any, mask: Any = None) -> Any:
    """One entry of a stream's history as the API shows it (an event dict from stream_events);
    `mask` hides personal data in the payload."""
    payload = event["payload"] if mask is None else mask(event["payload"])
    return {"version": event["version"], "type": event["type"], "payload": payload,
            "occurred_on": event["occurred_on"], "recorded_at": event["recorded_at"],
            "actor": (event["metadata"] or {}).get("actor")}

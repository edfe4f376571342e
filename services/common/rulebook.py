"""The county rulebook, one section per service: versioned, effective-dated values as events.

Every value a county may tune has one home: the section of the service whose rules use it
(registry: poverty line ...; credit: subsidy rate ...; see docs/rulebook.md). A section is one
stream (stream type `rulebook`, stream id = the section) in the owning service's own event
store; each change is a `rules_changed` event:

    {"section": "credit", "version": 2, "effective_from": "2024-01-01",
     "changes": {"subsidy_rate": "0.03"}, "reason": "县政府2024年1号文"}

Version 0 is the code's defaults (the domain's `Rules` dataclass), in force from the beginning;
the owning service puts them on record too (`rules_defaults_declared`, at start, when they differ
from the last on record), so a consumer (the assessment) keeps no copy of another service's defaults.
A command or a score uses the version *in force on its business date*: the one with the latest
`effective_from` on or before that date (of two with the same date, the later version). A
change never rewrites history: a loan decided in 2023 keeps the 2023 rules when replayed.

This module is generic: it knows dataclasses, not poverty lines.
"""
import dataclasses
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from .errors import ValidationFailed
from .events import NewEvent
from .store import WRITTEN_AT_ONCE

STREAM_TYPE = "rulebook"
WRITTEN_AT_ONCE.add(STREAM_TYPE)  # a version keeps its recording time
CHANGED = "rules_changed"
# The code's defaults (version 0) put on record by the owning service when it starts and they
# differ from the last on record (a first start; a release that changed a default), so every
# value of a section, defaults included, can be read from events by whoever consumes them.
DEFAULTS_DECLARED = "rules_defaults_declared"
BEGINNING = date(1900, 1, 1)  # version 0 (the defaults) is in force from here


def json_ready(value: Any) -> Any:
    """A rules value as JSON: Decimal → string, tuple/frozenset → list, date → ISO, keys → strings."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [json_ready(item) for item in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value


def defaults_of(rules_cls: Any, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The code's defaults of a `Rules` dataclass as JSON values (only `keys` when given)."""
    default = rules_cls()
    wanted = None if keys is None else set(keys)
    names = [f.name for f in dataclasses.fields(rules_cls) if wanted is None or f.name in wanted]
    return {name: json_ready(getattr(default, name)) for name in names}


@dataclasses.dataclass(frozen=True)
class Version:
    version: int
    effective_from: date
    changes: dict
    reason: str | None = None
    recorded_at: str | None = None
    actor: dict | None = None

    def view(self) -> dict[str, Any]:
        return {"version": self.version, "effective_from": self.effective_from.isoformat(),
                "changes": self.changes, "reason": self.reason, "recorded_at": self.recorded_at,
                "actor": self.actor}


@dataclasses.dataclass(frozen=True)
class InForce:
    version: int  # the newest version that applies on the day (0: the defaults)
    values: dict  # every key of the section, JSON values


class Section:
    """One service's section: its defaults and the versions its `rules_changed` events made.

    A change says "from this date, these keys have these values". The values in force on a day
    are the defaults with every change effective on or before that day laid over them in order
    of (effective_from, version): a change dated into the future never leaks into earlier days,
    and a later-recorded change with an earlier date does not undo a change dated after it."""

    def __init__(self, name: str, defaults: dict[str, Any], events: Iterable[Any] = ()) -> None:
        self.name = name
        self.defaults = dict(defaults)
        self.versions = [Version(0, BEGINNING, dict(defaults), "the code's defaults (DOMAIN.md)")]
        self.declared: dict[str, Any] | None = None  # the defaults last put on record as an event
        for event in events:
            self.apply(event)

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> "Section":
        """The section back from its `view` (what another service answers over RPC): version 0's
        values are the defaults, every later version a change."""
        first, *changes = view["versions"]
        section = cls(view["section"], first["changes"])
        for item in changes:
            section.add(Version(int(item["version"]), date.fromisoformat(item["effective_from"]),
                                dict(item["changes"]), item.get("reason"), item.get("recorded_at"), item.get("actor")))
        return section

    def add(self, version: Version) -> None:
        """Keep one more version; one already known is skipped (a change can arrive twice: by the
        bus, and read back from the owner)."""
        if all(known.version != version.version for known in self.versions[1:]):
            self.versions.append(version)

    def apply(self, event: Any) -> None:
        p = event.payload
        if event.type == DEFAULTS_DECLARED:
            self.declared = dict(p["defaults"])
        if event.type != CHANGED:
            return
        metadata = getattr(event, "metadata", None) or {}
        changes = {key: value for key, value in p["changes"].items() if key in self.defaults}
        self.add(Version(int(p["version"]), date.fromisoformat(p["effective_from"]), changes,
                         p.get("reason"), getattr(event, "recorded_at", None), metadata.get("actor")))

    @property
    def latest(self) -> Version:
        return max(self.versions, key=lambda v: v.version)

    def in_force(self, day: date) -> InForce:
        """The values in force on `day` and the newest version that applies to it."""
        values, number = dict(self.defaults), 0
        for version in sorted(self.versions[1:], key=lambda v: (v.effective_from, v.version)):
            if version.effective_from <= day:
                values.update(version.changes)
                number = version.version
        return InForce(number, values)

    def view(self, day: date) -> dict[str, Any]:
        """The section as the API shows it: the values in force on `day`, the version that put
        them there, and every version (the history), oldest first."""
        current = self.in_force(day)
        return {"section": self.name, "as_of": day.isoformat(), "version_in_force": current.version,
                "values": current.values, "latest_version": self.latest.version,
                "versions": [v.view() for v in self.versions]}


def evolve(section: Section, event: Any) -> Section:
    """Fold one `rules_changed` event into the section (the command path's evolve)."""
    section.apply(event)
    return section


def decide_declare(section: Section, defaults: dict[str, Any]) -> list[NewEvent]:
    """The code's defaults of the section on record, unless the last record already says so."""
    defaults = json_ready(defaults)
    if section.declared == defaults:
        return []
    return [NewEvent(DEFAULTS_DECLARED, {"section": section.name, "defaults": defaults})]


def decide_change(section: Section, command: dict[str, Any], build: Callable[[dict[str, Any]], Any]) -> list[NewEvent]:
    """A `rules_changed` event for {effective_from: date, changes: {key: value}, reason}.
    `build(values)` makes the domain's Rules from JSON values and raises ValueError/TypeError
    when a value is wrong: that becomes a 400 naming the key, and nothing is written."""
    changes = command.get("changes") or {}
    if not isinstance(changes, dict) or not changes:
        raise ValidationFailed("name at least one rule to change", {"changes": ["give {key: new value}"]})
    unknown = sorted(set(changes) - set(section.defaults))
    if unknown:
        raise ValidationFailed(f"unknown rulebook keys for section {section.name}",
                               {key: [f"not a key of section {section.name}; keys: "
                                      f"{', '.join(sorted(section.defaults))}"] for key in unknown})
    effective_from = command["effective_from"]
    base = section.in_force(effective_from).values
    for key, value in changes.items():
        try:
            build({**base, key: value})
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValidationFailed(f"{key}: {exc}", {key: [str(exc) or "not a valid value"]}) from None
    try:
        normalised = json_ready({key: getattr(build({**base, **changes}), key) for key in changes})
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValidationFailed(str(exc), {"changes": [str(exc) or "not valid together"]}) from None
    return [NewEvent(CHANGED, {"section": section.name, "version": section.latest.version + 1,
                               "effective_from": effective_from.isoformat(), "changes": normalised,
                               "reason": command.get("reason")}, effective_from.isoformat())]

"""The county's clock: "today" is a date in the county's time zone, never the server's.

Between 00:00 and 08:00 Beijing time a server on UTC is still on yesterday, so every business
date that is defaulted or checked ("in the future", a default `as_of`, the daily overdue scan)
comes from here, never from `date.today()` or `datetime.now()`.

The zone is the rulebook's `timezone` (default Asia/Shanghai). The zone data comes from the
pinned `tzdata` package when the machine has none, so no container needs a TZ setting.

Config `NOW` (env `FUPIN_NOW`) freezes the clock for tests and replays of a past year: an ISO
date-time (`2023-12-31T23:30:00Z`; without an offset it is county time) or an ISO date (that
day, at noon county time).
"""
from collections.abc import Mapping
from datetime import date, datetime, time, UTC
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"


def county_zone(name: str | None = None) -> Any:
    """The ZoneInfo for an IANA name (default the county default); a bad name is a ValueError."""
    name = name or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_TIMEZONE}") from None


def parse_frozen(value: Any, zone: Any) -> Any:
    """The frozen instant of a `NOW` setting (a date, a date-time, or their ISO text), or None."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, date):
        instant = datetime.combine(value, time(12, 0))
    else:
        text = str(value).strip()
        try:
            instant = (datetime.fromisoformat(text) if "T" in text or " " in text
                       else datetime.combine(date.fromisoformat(text), time(12, 0)))
        except ValueError:
            raise ValueError(f"NOW must be an ISO date or date-time, not {text!r}") from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=zone)


class CountyClock:
    """`now()` and `today()` in the county's zone; frozen at `frozen` when given."""

    def __init__(self, timezone_name: Any = None, frozen: Any = None) -> None:
        self.zone = county_zone(timezone_name)
        self.frozen = parse_frozen(frozen, self.zone)

    def now(self) -> Any:
        instant = self.frozen if self.frozen is not None else datetime.now(UTC)
        return instant.astimezone(self.zone)

    def today(self) -> Any:
        return self.now().date()


def clock_from_config(config: Mapping[str, Any], timezone_name: Any = None) -> Any:
    """The clock of a service or the gateway: its config's `NOW` freezes it (tests, replays)."""
    return CountyClock(timezone_name, (config or {}).get("NOW"))


def now(timezone_name: Any = None, frozen: Any = None) -> Any:
    return CountyClock(timezone_name, frozen).now()


def today(timezone_name: Any = None, frozen: Any = None) -> Any:
    return CountyClock(timezone_name, frozen).today()

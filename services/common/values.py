"""The values every service writes the same way, in one place: money as text with two decimals
(fen), dates as ISO text, months as YYYY-MM, years in the platform's range.

`money`, `iso` and `day` turn stored values into what events and the API carry and back;
`add_months`, `month_text` and `month_bounds` are calendar arithmetic. Parsing a caller's text
(a query argument) is done by the fields in `validation` (`Year`, `Month`), which give a 400
naming the field.
"""
import calendar
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
FIRST_YEAR, LAST_YEAR = 2000, 2100  # the years any plan, income or quota may name


def money(amount: Decimal | int | str) -> str:
    """Yuan as the API writes them: two decimals, half up ("20000.00")."""
    return f"{Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP):.2f}"


def day(value: date | str | None) -> date | None:
    """A date from an event payload or a row: ISO text becomes a date; a date or None stays."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def iso(value: date | str | None) -> str | None:
    """A date as ISO text for a payload or a view; None (and text already written) stays."""
    return value.isoformat() if isinstance(value, date) else value


def add_months(start: date, months: int) -> date:
    """The same day `months` later, or the month's last day where it is shorter (31 Jan + 1 = 28/29 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def month_text(value: date) -> str:
    """YYYY-MM of a date."""
    return f"{value.year:04d}-{value.month:02d}"


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """The first and the last day of a month."""
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])

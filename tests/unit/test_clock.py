"""The county's clock: business dates in the county's zone, whatever the server's zone is."""
from datetime import date, datetime, UTC

import pytest

from services.common.clock import CountyClock, clock_from_config, today


def test_at_2330_utc_it_is_already_the_next_day_in_beijing():
    clock = CountyClock(frozen="2023-12-31T23:30:00Z")
    assert clock.today() == date(2024, 1, 1)
    assert clock.now().utcoffset().total_seconds() == 8 * 3600
    assert CountyClock(frozen="2023-12-31T15:59:59+00:00").today() == date(2023, 12, 31)
    assert CountyClock("UTC", frozen="2023-12-31T23:30:00Z").today() == date(2023, 12, 31)


def test_a_frozen_time_without_offset_is_county_time_and_a_date_is_that_day():
    assert CountyClock(frozen="2024-01-01T07:30:00").now() == datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
    assert CountyClock(frozen="2023-06-15").today() == date(2023, 6, 15)
    assert CountyClock(frozen=date(2023, 6, 15)).today() == date(2023, 6, 15)
    assert clock_from_config({"NOW": "2023-12-31T23:30:00Z"}).today() == date(2024, 1, 1)


def test_the_running_clock_is_the_county_date_not_the_servers():
    beijing = datetime.now(UTC).astimezone(CountyClock().zone).date()
    assert today() in (beijing, date.fromordinal(beijing.toordinal() + 1))  # a midnight may pass between


def test_bad_settings_say_what_is_wanted():
    with pytest.raises(ValueError, match="IANA"):
        CountyClock("Mars/Olympus")
    with pytest.raises(ValueError, match="NOW must be"):
        CountyClock(frozen="yesterday")

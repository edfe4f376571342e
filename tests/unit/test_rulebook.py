"""The county rulebook's sections (services/common/rulebook.py): versioned, effective-dated, one
home per value; a command uses the version in force on its business date."""
from datetime import date
from decimal import Decimal

import pytest

from services.common import rulebook
from services.common.chassis import COUNTY_KEYS
from services.common.errors import ValidationFailed
from services.common.events import StoredEvent
from services.credit.domain import Rules as CreditRules
from services.registry.domain import CountyRules, Rules as RegistryRules


def stored(event, position):
    return StoredEvent(position, f"e{position}", rulebook.STREAM_TYPE, "credit", position, event.type,
                       event.schema_version, event.payload, {"actor": {"id": "lg", "role": "leading_group"}},
                       event.occurred_on, "2024-01-01T00:00:00+00:00")


def credit_section(*changes):
    section = rulebook.Section("credit", rulebook.defaults_of(CreditRules))
    for position, (effective_from, values) in enumerate(changes, start=1):
        [event] = rulebook.decide_change(section, {"effective_from": effective_from, "changes": values,
                                                   "reason": "县扶贫办文件"}, lambda v: CreditRules(**v))
        section.apply(stored(event, position))
    return section


def test_the_defaults_are_version_0_in_force_from_the_beginning():
    section = credit_section()
    in_force = section.in_force(date(2023, 5, 1))
    assert in_force.version == 0
    assert in_force.values["subsidy_rate"] == "0.0258" and in_force.values["household_amount_limit"] == "20000"
    assert CreditRules(**in_force.values) == CreditRules()


def test_a_change_holds_from_its_effective_date_and_not_before():
    section = credit_section((date(2024, 1, 1), {"subsidy_rate": "0.03"}))
    assert section.in_force(date(2023, 12, 31)).values["subsidy_rate"] == "0.0258"
    assert section.in_force(date(2024, 1, 1)).values["subsidy_rate"] == "0.03"
    assert section.in_force(date(2024, 1, 1)).version == 1
    assert CreditRules(**section.in_force(date(2024, 6, 1)).values).subsidy_rate == Decimal("0.03")


def test_a_later_recorded_change_with_an_earlier_date_does_not_undo_a_future_one():
    section = credit_section((date(2025, 1, 1), {"subsidy_rate": "0.03"}),
                             (date(2024, 6, 1), {"household_amount_limit": "30000", "subsidy_rate": "0.028"}))
    assert section.in_force(date(2024, 7, 1)).values["subsidy_rate"] == "0.028"
    assert section.in_force(date(2024, 7, 1)).values["household_amount_limit"] == "30000"
    assert section.in_force(date(2025, 2, 1)).values["subsidy_rate"] == "0.03"  # v1 still holds from 2025
    assert section.in_force(date(2025, 2, 1)).values["household_amount_limit"] == "30000"
    assert section.in_force(date(2024, 1, 1)).version == 0


def test_every_change_is_kept_with_its_reason_date_and_actor():
    view = credit_section((date(2024, 1, 1), {"max_term_months": 24})).view(date(2024, 2, 1))
    assert view["version_in_force"] == 1 and view["values"]["max_term_months"] == 24
    assert [v["version"] for v in view["versions"]] == [0, 1]
    assert view["versions"][1] == {"version": 1, "effective_from": "2024-01-01", "changes": {"max_term_months": 24},
                                   "reason": "县扶贫办文件", "recorded_at": "2024-01-01T00:00:00+00:00",
                                   "actor": {"id": "lg", "role": "leading_group"}}


def test_an_unknown_key_or_a_bad_value_is_a_400_naming_the_key_and_writes_nothing():
    section = credit_section()
    with pytest.raises(ValidationFailed) as refused:
        rulebook.decide_change(section, {"effective_from": date(2024, 1, 1), "changes": {"subsidy": "0.03"}},
                               lambda v: CreditRules(**v))
    assert "subsidy" in refused.value.details
    with pytest.raises(ValidationFailed) as refused:
        rulebook.decide_change(section, {"effective_from": date(2024, 1, 1), "changes": {"subsidy_rate": "lots"}},
                               lambda v: CreditRules(**v))
    assert "subsidy_rate" in refused.value.details
    county = rulebook.Section("county", rulebook.defaults_of(CountyRules))
    with pytest.raises(ValidationFailed) as refused:
        rulebook.decide_change(county, {"effective_from": date(2024, 1, 1), "changes": {"timezone": "Mars/Base"}},
                               lambda v: CountyRules(**v))
    assert "timezone" in refused.value.details


def test_each_value_has_one_home():
    """The county keys live in the county section only; the registry's own section has the lines."""
    registry = rulebook.defaults_of(RegistryRules)
    assert set(registry) == {"poverty_line", "poverty_lines", "monitoring_factor", "monitoring_min_months"}
    assert set(rulebook.defaults_of(CountyRules)) == set(COUNTY_KEYS)
    assert rulebook.defaults_of(CountyRules)["timezone"] == "Asia/Shanghai"


def test_a_section_read_back_from_its_view_keeps_every_version_and_takes_each_change_once():
    owner = credit_section((date(2024, 1, 1), {"subsidy_rate": "0.03"}))
    copy = rulebook.Section.from_view(owner.view(date(2024, 2, 1)))
    assert copy.in_force(date(2024, 2, 1)) == owner.in_force(date(2024, 2, 1))
    assert copy.in_force(date(2023, 2, 1)) == owner.in_force(date(2023, 2, 1))
    [event] = rulebook.decide_change(owner, {"effective_from": date(2025, 1, 1), "changes": {"max_term_months": 24},
                                             "reason": None}, lambda v: CreditRules(**v))
    copy.apply(stored(event, 2))
    copy.apply(stored(event, 2))  # by the bus and read back: the same version, taken once
    assert [v.version for v in copy.versions] == [0, 1, 2] and copy.latest.version == 2
    assert copy.in_force(date(2025, 1, 1)).values["max_term_months"] == 24

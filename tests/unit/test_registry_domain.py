"""Registry domain rules (DOMAIN.md "Registry service", issue 3): pure, no infrastructure."""
from datetime import date
from decimal import Decimal

import pytest

from services.common.config import rules_from_config
from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.common.events import NewEvent
from services.common.validation import validate
from services.registry import domain, schemas
from services.registry.domain import Rules

RULES = Rules()
HOUSEHOLD_ID = "H-1"


def id_number(body17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights)) % 11]


HEAD_ID = id_number("34240119800203123")
CHILD_ID = id_number("34240120100506235")  # born 2010-05-06, male


def fold(state, events, evolve=domain.evolve):
    for event in events:
        state = evolve(state, event)
    return state


def registered(five_guarantees=False):
    village = {"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True}
    command = {"household_id": HOUSEHOLD_ID, "household_no": "342401001", "village_id": "V1", "head_name": "王伟",
               "poverty_causes": ["illness"], "registered_on": date(2023, 1, 5), "five_guarantees": five_guarantees}
    return fold(None, domain.decide_register_household(None, command, village, None))


def member_command(person_id="P-1", number=HEAD_ID, **changes):
    command = {"household_id": HOUSEHOLD_ID, "person_id": person_id, "name": "王伟", "id_number": number,
               "relation": "head", "birth_date": date(1980, 2, 3), "sex": "male", "labor_capacity": "full",
               "health": "healthy", "schooling": None, "phone": "13812345678"}
    command.update(changes)
    return command


def with_member(state=None, **changes):
    state = state or registered()
    return fold(state, domain.decide_add_member(state, member_command(**changes), None))


def income(state, amount, year=2023, on=date(2023, 11, 20), rules=RULES):
    command = {"household_id": HOUSEHOLD_ID, "year": year, "per_capita_income": Decimal(amount), "assessed_on": on}
    events = domain.decide_assess_income(state, command, rules)
    return fold(state, events), events


def assurances(state, on=date(2023, 11, 25), **changes):
    command = {"household_id": HOUSEHOLD_ID, "assessed_on": on, "food": True, "clothing": True, "education": True,
               "medical": True, "housing_grade": "A", "drinking_water": True}
    command.update(changes)
    return fold(state, domain.decide_assess_assurances(state, command))


def exited(state=None, year=2023):
    state = state or assurances(income(with_member(), "4500.00")[0])
    return fold(state, domain.decide_exit(state, {"household_id": HOUSEHOLD_ID, "year": year,
                                                  "exited_on": date(2023, 12, 15)}, RULES))


def flagged(state, on=date(2024, 1, 10), risk_type="sudden_hardship"):
    command = {"household_id": HOUSEHOLD_ID, "risk_type": risk_type, "reason": "因病", "flagged_on": on}
    return fold(state, domain.decide_flag_monitoring(state, command))


def clear(state, on):
    return domain.decide_clear_monitoring(state, {"household_id": HOUSEHOLD_ID, "cleared_on": on}, RULES)


# --- ID numbers -----------------------------------------------------------------------------------

def test_a_valid_gb11643_number_passes_and_a_wrong_check_digit_is_refused():
    assert domain.id_number_problem(HEAD_ID) is None
    assert domain.id_number_problem("11010519491231002X") is None  # the standard's own example
    wrong = HEAD_ID[:17] + ("0" if HEAD_ID[17] != "0" else "1")
    assert "check digit" in domain.id_number_problem(wrong)
    with pytest.raises(ValidationFailed) as refused:
        with_member(number=wrong)
    assert "id_number" in refused.value.details


def test_an_id_number_with_an_impossible_birth_date_is_refused():
    assert domain.id_number_problem(id_number("34240119801302123")) is not None


def test_an_id_number_held_by_a_living_member_is_refused_naming_the_household():
    state = registered()
    with pytest.raises(Conflict) as refused:
        domain.decide_add_member(state, member_command(), ("H-OTHER", "P-9"))
    assert refused.value.details["household_id"] == "H-OTHER"
    assert refused.value.details["rule"] == "id_number_unique"
    assert "*" in refused.value.details["id_number"]  # the number itself stays masked


def test_changing_a_member_to_a_number_held_elsewhere_is_refused_but_keeping_ones_own_is_not():
    state = with_member()
    command = {"household_id": HOUSEHOLD_ID, "person_id": "P-1", "id_number": id_number("34240119800203157")}
    with pytest.raises(Conflict):
        domain.decide_update_member(state, command, ("H-OTHER", "P-9"))
    same = {"household_id": HOUSEHOLD_ID, "person_id": "P-1", "id_number": HEAD_ID, "health": "chronic"}
    events = domain.decide_update_member(state, same, (HOUSEHOLD_ID, "P-1"))
    assert events[0].payload["changes"] == {"health": "chronic"}


def test_the_id_number_must_agree_with_the_birth_date_and_sex_naming_the_fields():
    with pytest.raises(ValidationFailed) as refused:
        with_member(birth_date=date(1980, 2, 4))
    assert set(refused.value.details) == {"birth_date", "id_number"}
    assert "1980-02-03" in refused.value.details["birth_date"][0]
    with pytest.raises(ValidationFailed) as refused:
        with_member(sex="female")  # HEAD_ID's 17th digit 3 is odd: a man
    assert set(refused.value.details) == {"sex", "id_number"}
    with pytest.raises(ValidationFailed) as refused:
        with_member(sex="female", birth_date=date(1981, 1, 1))
    assert set(refused.value.details) == {"birth_date", "sex", "id_number"}
    woman = id_number("34240119800203124")  # even 17th digit
    assert with_member(number=woman, sex="female").members["P-1"]["sex"] == "female"
    assert domain.id_number_disagreements("11010519491231002X", date(1949, 12, 31), "female") == {}


def test_changing_a_members_birth_date_sex_or_number_keeps_them_in_agreement():
    state = with_member()
    base = {"household_id": HOUSEHOLD_ID, "person_id": "P-1"}
    with pytest.raises(ValidationFailed) as refused:
        domain.decide_update_member(state, {**base, "sex": "female"}, None)
    assert "sex" in refused.value.details
    with pytest.raises(ValidationFailed) as refused:
        domain.decide_update_member(state, {**base, "id_number": CHILD_ID}, None)  # born 2010
    assert "birth_date" in refused.value.details
    both = {**base, "id_number": CHILD_ID, "birth_date": date(2010, 5, 6)}
    assert domain.decide_update_member(state, both, None)[0].payload["changes"] == \
        {"id_number": CHILD_ID, "birth_date": "2010-05-06"}


# --- members --------------------------------------------------------------------------------------

def test_removed_members_leave_the_member_list_and_free_their_id_number():
    state = with_member(with_member(), person_id="P-2", number=CHILD_ID, relation="child", name="王小",
                        birth_date=date(2010, 5, 6))
    removed = fold(state, domain.decide_remove_member(state, {"household_id": HOUSEHOLD_ID, "person_id": "P-2",
                                                              "reason": "moved_out", "removed_on": date(2023, 6, 1)}))
    view = domain.household_view(removed)
    assert [m["person_id"] for m in view["members"]] == ["P-1"]
    assert [m["id_number"] for m in removed.living_members()] == [HEAD_ID]
    with pytest.raises(NotFound):
        domain.decide_remove_member(removed, {"household_id": HOUSEHOLD_ID, "person_id": "P-2", "reason": "death",
                                              "removed_on": date(2023, 7, 1)})


def test_personal_data_is_masked_unless_revealed():
    state = with_member()
    masked = domain.household_view(state, reveal_personal_data=False)["members"][0]
    assert (masked["id_number"], masked["phone"]) == (HEAD_ID[:4] + "*" * 10 + HEAD_ID[-4:], "138****5678")
    shown = domain.household_view(state)["members"][0]
    assert (shown["id_number"], shown["phone"]) == (HEAD_ID, "13812345678")
    assert (shown["labor_capacity"], shown["health"]) == ("full", "healthy")


def test_history_payloads_are_masked():
    payload = {"household_id": "H", "id_number": HEAD_ID, "phone": "13812345678"}
    assert domain.mask_payload(payload)["id_number"] == "3424**********" + HEAD_ID[-4:]
    assert domain.mask_payload({"changes": {"phone": "13812345678"}})["changes"]["phone"] == "138****5678"


def test_five_guarantees_is_kept_and_shown():
    assert domain.household_view(registered(five_guarantees=True))["five_guarantees"] is True
    assert domain.household_view(registered())["five_guarantees"] is False


# --- registration ---------------------------------------------------------------------------------

def test_a_household_needs_a_known_village_and_takes_its_township():
    command = {"household_id": "H", "household_no": "1", "village_id": "V9", "head_name": "王",
               "poverty_causes": [], "registered_on": date(2023, 1, 1)}
    with pytest.raises(NotFound):
        domain.decide_register_household(None, command, None, None)
    village = {"village_id": "V9", "township_id": "T7", "name": "村", "poor_village": False}
    [event] = domain.decide_register_household(None, command, village, None)
    assert event.payload["township_id"] == "T7"


def test_a_household_number_is_unique_in_the_county():
    command = {"household_id": "H2", "household_no": "342401001", "village_id": "V1", "head_name": "王",
               "poverty_causes": [], "registered_on": date(2023, 1, 1)}
    village = {"village_id": "V1", "township_id": "T1", "name": "村", "poor_village": False}
    with pytest.raises(Conflict) as refused:
        domain.decide_register_household(None, command, village, "H1")
    assert refused.value.details["household_id"] == "H1"


def test_a_village_needs_a_known_township_and_a_second_different_registration_conflicts():
    command = {"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True}
    with pytest.raises(NotFound):
        domain.decide_register_village(None, command, None)
    township = {"township_id": "T1", "name": "乡"}
    state = fold(None, domain.decide_register_village(None, command, township), domain.evolve_place)
    assert domain.decide_register_village(state, command, township) == []
    with pytest.raises(Conflict):
        domain.decide_register_village(state, {**command, "name": "别的村"}, township)
    first = fold(None, domain.decide_register_township(None, township), domain.evolve_place)
    with pytest.raises(Conflict):
        domain.decide_register_township(first, {"township_id": "T1", "name": "again"})


# --- exit -----------------------------------------------------------------------------------------

def test_exit_when_income_reaches_the_poverty_line_and_every_assurance_holds():
    state = exited(assurances(income(with_member(), "4000.00")[0], housing_grade="B"))
    assert state.status == "exited"
    assert domain.household_view(state)["exited_on"] == "2023-12-15"


def test_exit_is_refused_listing_every_failing_item():
    state = assurances(income(with_member(), "3999.99")[0], medical=False, housing_grade="C",
                       drinking_water=False)
    with pytest.raises(RuleRefused) as refused:
        exited(state)
    assert refused.value.details["failing"] == ["income", "medical", "housing", "drinking_water"]
    with pytest.raises(RuleRefused) as refused:
        exited(with_member())  # nothing assessed at all
    assert refused.value.details["failing"] == ["income", *domain.ASSURANCE_ITEMS]


def test_exit_uses_the_latest_income_of_that_year():
    state = income(income(with_member(), "5000.00", on=date(2023, 6, 1))[0], "3500.00", on=date(2023, 11, 1))[0]
    state = income(state, "9000.00", year=2022, on=date(2023, 12, 1))[0]
    with pytest.raises(RuleRefused) as refused:
        exited(assurances(state))
    assert refused.value.details["failing"] == ["income"]


def test_exit_needs_an_assurances_assessment_dated_in_the_exit_year():
    old = assurances(income(with_member(), "4500.00", year=2024, on=date(2024, 11, 1))[0], on=date(2023, 11, 25))
    exit_2024 = {"household_id": HOUSEHOLD_ID, "year": 2024, "exited_on": date(2024, 12, 1)}
    with pytest.raises(RuleRefused) as refused:
        domain.decide_exit(old, exit_2024, RULES)
    assert refused.value.details["failing"] == list(domain.ASSURANCE_ITEMS)
    assert "2024" in refused.value.details["reasons"]["food"]
    # the latest assessment of the exit year decides, even when a failing one came later in 2025
    current = assurances(assurances(old, on=date(2024, 6, 1), housing_grade="C"), on=date(2024, 10, 1))
    later = assurances(current, on=date(2025, 1, 5), housing_grade="D")
    assert [e.type for e in domain.decide_exit(later, exit_2024, RULES)] == ["household_exited"]
    worse = assurances(current, on=date(2024, 11, 30), housing_grade="C")
    with pytest.raises(RuleRefused) as refused:
        domain.decide_exit(worse, exit_2024, RULES)
    assert refused.value.details["failing"] == ["housing"]


def test_housing_d_fails_and_an_exited_household_cannot_exit_again():
    with pytest.raises(RuleRefused) as refused:
        exited(assurances(income(with_member(), "4500.00")[0], housing_grade="D"))
    assert refused.value.details["failing"] == ["housing"]
    with pytest.raises(RuleRefused):
        exited(exited())


def test_the_poverty_line_comes_from_the_rulebook_per_year():
    rules = rules_from_config({"RULES": {"poverty_line": "4000", "poverty_lines": {2024: "4500"}}}, Rules)
    assert rules.poverty_line_for(2023) == Decimal("4000")
    assert rules.poverty_line_for(2024) == Decimal("4500")
    assert rules.monitoring_line_for(2024) == Decimal("6750.00")
    state = assurances(income(with_member(), "4400.00", year=2024)[0], on=date(2024, 11, 25))
    with pytest.raises(RuleRefused):
        domain.decide_exit(state, {"household_id": HOUSEHOLD_ID, "year": 2024, "exited_on": date(2024, 12, 1)},
                           rules)
    assert domain.decide_exit(state, {"household_id": HOUSEHOLD_ID, "year": 2024, "exited_on": date(2024, 12, 1)},
                              Rules(poverty_line=Decimal("4400")))


# --- monitoring -----------------------------------------------------------------------------------

def test_income_below_the_monitoring_line_flags_an_exited_household_automatically():
    state, events = income(exited(), "5999.99", year=2024, on=date(2024, 3, 1))
    assert [e.type for e in events] == ["income_assessed", "monitoring_flagged"]
    flag = events[1].payload
    assert (flag["automatic"], flag["risk_type"], flag["flagged_on"], flag["township_id"]) == \
        (True, "unstable", "2024-03-01", "T1")
    assert state.monitored


def test_income_at_the_monitoring_line_or_for_a_poor_household_flags_nothing():
    assert [e.type for e in income(exited(), "6000.00", year=2024)[1]] == ["income_assessed"]
    assert [e.type for e in income(with_member(), "100.00")[1]] == ["income_assessed"]


def test_an_already_monitored_household_is_not_flagged_twice():
    state = flagged(exited())
    assert [e.type for e in income(state, "100.00", year=2024)[1]] == ["income_assessed"]
    with pytest.raises(RuleRefused):
        flagged(state)


def test_the_monitoring_factor_comes_from_the_rulebook():
    rules = Rules(monitoring_factor=Decimal("2"))
    assert [e.type for e in income(exited(), "7000.00", year=2024, rules=rules)[1]] == \
        ["income_assessed", "monitoring_flagged"]


def test_a_manual_flag_records_its_risk_type_and_reason():
    state = flagged(with_member(), risk_type="marginal")
    assert domain.household_view(state)["monitoring"] == {"risk_type": "marginal", "reason": "因病",
                                                          "flagged_on": "2024-01-10", "automatic": False}


def test_clearing_needs_six_months_and_income_at_the_monitoring_line():
    state = income(flagged(exited(), on=date(2024, 1, 10)), "6000.00", year=2024, on=date(2024, 6, 1))[0]
    with pytest.raises(RuleRefused) as refused:
        clear(state, date(2024, 7, 9))
    assert refused.value.details["failing"] == ["months_monitored"]
    [event] = clear(state, date(2024, 7, 10))
    cleared = domain.evolve(state, event)
    assert not cleared.monitored and cleared.monitoring_history[0]["cleared_on"] == "2024-07-10"


def test_clearing_is_refused_when_income_is_below_the_monitoring_line():
    state = income(flagged(exited(), on=date(2024, 1, 10)), "5999.00", year=2024, on=date(2024, 6, 1))[0]
    with pytest.raises(RuleRefused) as refused:
        clear(state, date(2024, 12, 1))
    assert refused.value.details["failing"] == ["income"]
    with pytest.raises(RuleRefused):
        clear(with_member(), date(2024, 12, 1))  # not monitored


def test_the_minimum_months_come_from_the_rulebook():
    state = income(flagged(exited(), on=date(2024, 1, 10)), "6000.00", year=2024, on=date(2024, 2, 1))[0]
    assert domain.decide_clear_monitoring(state, {"household_id": HOUSEHOLD_ID, "cleared_on": date(2024, 4, 10)},
                                          Rules(monitoring_min_months=3))


def register_monitoring_only(risk_type="marginal", **changes):
    village = {"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True}
    command = {"household_id": HOUSEHOLD_ID, "household_no": "342401009", "village_id": "V1", "head_name": "李四",
               "poverty_causes": ["illness"], "registered_on": date(2023, 4, 1), "status": "monitored",
               "risk_type": risk_type, "reason": "大病支出"}
    command.update(changes)
    return domain.decide_register_household(None, command, village, None)


def test_a_never_poor_household_registers_straight_into_monitoring():
    events = register_monitoring_only()
    assert [e.type for e in events] == ["household_registered", "monitoring_flagged"]
    state = fold(None, events)
    view = domain.household_view(state)
    assert (view["status"], view["monitored"], view["monitoring"]["risk_type"], view["monitoring"]["flagged_on"]) == \
        ("monitored", True, "marginal", "2023-04-01")
    assert fold(None, register_monitoring_only("sudden_hardship")).monitoring["risk_type"] == "sudden_hardship"
    for bad in ("unstable", None):
        with pytest.raises(ValidationFailed) as refused:
            register_monitoring_only(bad)
        assert "risk_type" in refused.value.details
    # it was never poor: it cannot exit, and income below the line re-flags it as marginal after clearing
    state = assurances(income(fold(state, domain.decide_add_member(state, member_command(), None)), "9000.00")[0])
    with pytest.raises(RuleRefused) as refused:
        domain.decide_exit(state, {"household_id": HOUSEHOLD_ID, "year": 2023, "exited_on": date(2023, 12, 1)}, RULES)
    assert refused.value.details["rule"] == "exit_only_poor"
    cleared = fold(state, clear(state, date(2023, 12, 1)))
    assert (cleared.status, cleared.monitored) == ("monitored", False)
    assert income(cleared, "100.00", year=2024, on=date(2024, 3, 1))[1][1].payload["risk_type"] == "marginal"


def test_a_monitoring_only_household_is_counted_neither_poor_nor_exited():
    households = [{"status": "poor", "monitored": False, "risk_type": None, "people": 3},
                  {"status": "monitored", "monitored": True, "risk_type": "marginal", "people": 2}]
    stats = domain.statistics({"village_id": "V1"}, 2023, households, [], [])
    assert stats["households"] == {"total": 2, "poor": 1, "exited": 0, "monitored": 1}
    assert stats["people"]["poor"] == 3 and stats["monitored_by_risk"]["marginal"] == 1


def test_a_household_registered_before_monitoring_only_existed_reads_as_poor():
    old = domain.evolve(None, NewEvent("household_registered", {
        "household_id": "H-OLD", "household_no": "1", "village_id": "V1", "township_id": "T1", "head_name": "王",
        "poverty_causes": [], "registered_on": "2020-01-01", "five_guarantees": False}))
    assert old.status == "poor"


def test_return_to_poverty_only_after_exit():
    with pytest.raises(RuleRefused):
        domain.decide_return_to_poverty(with_member(), {"household_id": HOUSEHOLD_ID, "returned_on": date(2024, 5, 1),
                                                        "reason": "因灾"})
    state = exited()
    back = fold(state, domain.decide_return_to_poverty(state, {"household_id": HOUSEHOLD_ID,
                                                               "returned_on": date(2024, 5, 1), "reason": "因灾"}))
    assert back.status == "poor"


def test_the_policy_informant_is_a_living_member():
    state = with_member()
    named = fold(state, domain.decide_name_policy_informant(state, {"household_id": HOUSEHOLD_ID, "person_id": "P-1",
                                                                    "named_on": date(2023, 3, 1)}))
    assert domain.household_view(named)["policy_informant"] == {"person_id": "P-1", "named_on": "2023-03-01",
                                                                "name": "王伟"}
    with pytest.raises(NotFound):
        domain.decide_name_policy_informant(state, {"household_id": HOUSEHOLD_ID, "person_id": "P-X",
                                                    "named_on": date(2023, 3, 1)})


def test_statistics_count_households_people_exits_monitoring_and_compliance():
    households = [{"status": "poor", "monitored": False, "risk_type": None, "people": 3},
                  {"status": "exited", "monitored": True, "risk_type": "unstable", "people": 2},
                  {"status": "exited", "monitored": False, "risk_type": None, "people": 4}]
    stats = domain.statistics({"village_id": "V1"}, 2023, households, [date(2023, 12, 1), date(2022, 12, 1)],
                              [True, False, True])
    assert stats["households"] == {"total": 3, "poor": 1, "exited": 2, "monitored": 0}
    assert stats["people"] == {"total": 9, "poor": 3, "exited": 6, "monitored": 0}
    assert (stats["exits_this_year"], stats["monitored"]) == (1, 1)
    assert stats["assurances"] == {"assessed": 3, "compliant": 2, "compliance_rate": "0.6667"}


def test_schemas_accept_the_api_bodies_and_refuse_unknown_codes():
    body = {"household_no": "1", "village_id": "V1", "head_name": "王", "poverty_causes": ["illness"],
            "registered_on": "2023-01-05"}
    assert validate(schemas.RegisterHousehold(), body)["five_guarantees"] is False
    with pytest.raises(ValidationFailed) as invalid:
        validate(schemas.RegisterHousehold(), {**body, "poverty_causes": ["bad luck"]})
    assert "poverty_causes.0" in invalid.value.details
    with pytest.raises(ValidationFailed):
        validate(schemas.AssessAssurances(), {"household_id": "H", "assessed_on": "2023-01-01", "food": True,
                                              "clothing": True, "education": True, "medical": True,
                                              "housing_grade": "E", "drinking_water": True})
    assert set(schemas.COMMAND_SCHEMAS) == {
        "register_township", "register_village", "register_household", "add_member", "update_member",
        "remove_member", "assess_income", "assess_assurances", "exit_household", "flag_monitoring",
        "clear_monitoring", "return_to_poverty", "name_policy_informant"}


# --- folding without a copy per event --------------------------------------------------------------

def test_folding_in_place_gives_the_same_household_as_folding_with_copies_and_evolve_keeps_the_old_state():
    events = []

    def recording(state, event):
        events.append(event)
        return domain.evolve(state, event)

    state = fold(None, domain.decide_register_household(None, {
        "household_id": HOUSEHOLD_ID, "household_no": "342401001", "village_id": "V1", "head_name": "王伟",
        "poverty_causes": ["illness"], "registered_on": date(2023, 1, 5)},
        {"village_id": "V1", "township_id": "T1"}, None), recording)
    state = fold(state, domain.decide_add_member(state, member_command(), None), recording)
    for year in (2021, 2022, 2023):
        state = fold(state, domain.decide_assess_income(state, {
            "household_id": HOUSEHOLD_ID, "year": year, "per_capita_income": Decimal("4500"),
            "assessed_on": date(year, 11, 20)}, RULES), recording)
    before_flag = state
    state = fold(state, domain.decide_flag_monitoring(state, {
        "household_id": HOUSEHOLD_ID, "risk_type": "unstable", "reason": "因病", "flagged_on": date(2024, 1, 10)}),
        recording)
    assert not before_flag.monitored and state.monitored  # evolve left the earlier state as it was
    assert fold(None, events, domain.evolve_in_place) == state
    assert len(events) == 6 and state.version == 6

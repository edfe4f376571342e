"""A yes/no in a JSON body is `true` or `false`: 0, 1 and "yes" are refused with the field named
(schemathesis found `"poor_village": 0` accepted as False)."""
import pytest

from services.common.errors import ValidationFailed
from services.common.validation import validate
from services.registry.schemas import RegisterVillage


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_a_yes_no_field_refuses_anything_but_true_or_false(value):
    with pytest.raises(ValidationFailed) as refused:
        validate(RegisterVillage(), {"village_id": "V01", "name": "东村", "township_id": "T01", "poor_village": value})
    assert "poor_village" in refused.value.details


@pytest.mark.parametrize("value", [True, False])
def test_true_and_false_are_taken_as_they_are(value):
    loaded = validate(RegisterVillage(), {"village_id": "V01", "name": "东村", "township_id": "T01", "poor_village": value})
    assert loaded["poor_village"] is value

"""The assessment's own commands (ratings, vetoes, rulebooks) as pure decisions: no I/O.

The facts scores are made of are in facts.py, the scores themselves in scoring.py.
"""
import copy
from decimal import Decimal

from services.common.errors import RuleRefused, ValidationFailed
from services.common.events import NewEvent

from .facts import DEFAULT_RULES, MOVED_RULES
from .scoring import SUBJECT_TYPES


def decide_rating(command, rating_id):
    if command["subject_type"] not in SUBJECT_TYPES:
        raise ValidationFailed("unknown subject type", {"subject_type": ["invalid"]})
    return [NewEvent("rating_recorded", {
        "rating_id": rating_id, "subject_type": command["subject_type"], "subject_id": command["subject_id"],
        "rating": command["rating"], "source": command["source"], "rated_on": command["rated_on"].isoformat()},
        command["rated_on"].isoformat())]


def decide_veto(command, veto_id):
    if not command["reason"].strip():
        raise RuleRefused("a veto needs its reason", {"rule": "veto_reason_required"})
    return [NewEvent("veto_recorded", {
        "veto_id": veto_id, "subject_type": command["subject_type"], "subject_id": command["subject_id"],
        "reason": command["reason"], "on": command["on"].isoformat()}, command["on"].isoformat())]


def merge_rules(base, changes):
    """A new rulebook is the newest one with the given parts replaced (nested mappings merge)."""
    merged = {key: value for key, value in copy.deepcopy(base).items() if key not in MOVED_RULES}
    for key, value in changes.items():
        if key in MOVED_RULES:
            section = MOVED_RULES[key][0]
            raise ValidationFailed(f"{key} lives in the {section} section of the rulebook",
                                   {key: [f"change it with PUT /api/v1/rulebook/{section}"]})
        if key not in DEFAULT_RULES:
            raise ValidationFailed("unknown rulebook entry", {key: ["not a rulebook entry"]})
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict) and isinstance(merged[key].get(inner), dict):
                    merged[key][inner].update(inner_value)
                else:
                    merged[key][inner] = inner_value
        else:
            merged[key] = value
    for subject_type, weights in merged["weights"].items():
        if any(Decimal(str(w)) < 0 for w in weights.values()):
            raise RuleRefused("weights cannot be negative", {"rule": "non_negative_weights", "subject_type": subject_type})
    if Decimal(str(merged["grade_bands"]["good"])) > Decimal(str(merged["grade_bands"]["excellent"])):
        raise RuleRefused("the good band must not be above the excellent band", {"rule": "ordered_grade_bands"})
    return merged


def decide_rulebook(facts_version, base, changes, published_on):
    rules = merge_rules(base, changes)
    return [NewEvent("rulebook_published", {"version": facts_version + 1, "rules": rules,
                                            "published_on": published_on.isoformat()}, published_on.isoformat())]

"""The assessment's own commands (ratings, vetoes, rulebooks) as pure decisions: no I/O.

The facts scores are made of are in facts.py, the scores themselves in scoring.py.
"""
from decimal import Decimal

from services.common.errors import RuleRefused, ValidationFailed
from services.common.events import NewEvent

from .facts import DEFAULT_RULES, MOVED_RULES, layered
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
    """`base` with the given parts replaced (nested mappings merge), checked: a key that lives in
    another service's section or is no rulebook key is a 400, a book out of order a 422."""
    for key in changes:
        if key in MOVED_RULES:
            section = MOVED_RULES[key][0]
            raise ValidationFailed(f"{key} lives in the {section} section of the rulebook",
                                   {key: [f"change it with PUT /api/v1/rulebook/{section}"]})
        if key not in DEFAULT_RULES:
            raise ValidationFailed("unknown rulebook entry", {key: ["not a rulebook entry"]})
    merged = layered({key: value for key, value in base.items() if key not in MOVED_RULES}, changes)
    for subject_type, weights in merged["weights"].items():
        if any(Decimal(str(w)) < 0 for w in weights.values()):
            raise RuleRefused("weights cannot be negative", {"rule": "non_negative_weights", "subject_type": subject_type})
    if Decimal(str(merged["grade_bands"]["good"])) > Decimal(str(merged["grade_bands"]["excellent"])):
        raise RuleRefused("the good band must not be above the excellent band", {"rule": "ordered_grade_bands"})
    return merged


def decide_rulebook(book, changes, published_on, effective_from=None, reason=None):
    """A new version of the scoring rulebook: `changes` hold from `effective_from` (default the day
    it is published) on; a score dated before keeps the earlier values. Checked against every
    version in force from that day on, so no day gets a book out of order."""
    effective_from = effective_from or published_on
    if not changes:
        raise ValidationFailed("name at least one rule to change", {"changes": ["give {key: new value}"]})
    later = sorted({v["effective_from"] for v in book.versions.values() if v["effective_from"] > effective_from})
    for day in [effective_from, *later]:
        merge_rules(book.rules(day=day)[1], changes)
    return [NewEvent("rulebook_published", {
        "version": book.latest_version + 1, "effective_from": effective_from.isoformat(), "changes": changes,
        "reason": reason, "published_on": published_on.isoformat()}, effective_from.isoformat())]

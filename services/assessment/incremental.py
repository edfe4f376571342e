"""Keeping a ranking current after new events without ranking every subject again.

Which subjects an event can change is known for the events that dominate a live county: a
cadre's visit to a paired household only adds a visit day to that pairing, which only the
visit-compliance indicator of the pairing's cadre and of its unit reads; a monitoring flag (which
follows an income assessment near the line) and an exit only feed the weekly bulletin and change
no score. Every other event (and a visit whose pairing is not known yet) says "anything may have
changed", and the ranking is computed whole, as before. So an incremental ranking is never a guess: it re-scores exactly the
subjects whose inputs changed and sorts again (tests compare it with a full ranking).
"""
import bisect
from collections import deque

from . import scoring

CHANGES_KEPT = 50_000  # rankings older than this many applied events are computed whole


# Kept in the facts for the weekly bulletin only (bulletin.py): no score reads them. A household
# whose income falls near the line is flagged for monitoring, so these follow income assessments.
BULLETIN_ONLY = frozenset({"monitoring_flagged", "household_exited"})


def affected_subjects(facts, event_type, payload):
    """{(subject_type, subject_id)} whose score the event (just applied) can change, or None
    for "any subject may have changed"."""
    if event_type in BULLETIN_ONLY:
        return set()
    if event_type != "visit_recorded":
        return None
    pairing = facts.pairings.get(payload.get("pairing_id"))
    if pairing is None or pairing.cadre_id is None:
        return None
    unit_id = pairing.unit_id or facts.cadres.get(pairing.cadre_id, {}).get("unit_id")
    return {("cadre", pairing.cadre_id), ("unit", unit_id)}


class ChangeLog:
    """What each applied event may have changed, numbered; kept beside the cached facts."""

    def __init__(self):
        self.count = 0
        self.entries = deque(maxlen=CHANGES_KEPT)  # (number, subjects or None)

    def record(self, subjects):
        self.count += 1
        self.entries.append((self.count, subjects))

    def since(self, number):
        """The union of the subjects changed after change `number`, or None when unknown (an
        event that may change anything, or changes no longer kept)."""
        if number == self.count:
            return set()
        if not self.entries or self.entries[0][0] > number + 1:
            return None
        changed = set()
        for at, subjects in reversed(self.entries):
            if at <= number:
                break
            if subjects is None:
                return None
            changed |= subjects
        return changed


def rerank(previous, subject_type, changed, facts, period, as_of, version):
    """`previous` (a full ranking of the same subject type, period, as_of and rulebook version)
    with the `changed` subjects scored again, or None when that cannot be done (a subject it
    does not hold). New card dicts: readers may hold the previous ones."""
    ids = {card["subject_id"] for card in previous}
    mine = {subject_id for kind, subject_id in changed if kind == subject_type}
    if not mine <= ids or len(ids) != len(facts.subject_ids(subject_type)):
        return None
    if not mine:  # nothing of this subject type changed: the same cards, already ranked
        return previous
    fresh = {subject_id: scoring.score(subject_type, subject_id, facts, period, as_of, version) for subject_id in mine}
    # The rest stay in order: the fresh cards are put in their places (the order is total, ties
    # go by subject id), and only cards whose rank moved are copied.
    ordered = [card for card in previous if card["subject_id"] not in fresh]
    for card in fresh.values():
        bisect.insort(ordered, card, key=scoring.rank_key)
    return [card if card.get("rank") == position else {**card, "rank": position}
            for position, card in enumerate(ordered, start=1)]

"""Evidence a person can act on: each shortfall named by household number and head, cadre,
village, project title and month instead of ids; the veto reasons as structured items the pages
word in their own language. The gateway masks the head's name for roles that must not see it."""
from datetime import date

from . import scoring


def describe(card, facts):
    """The card with its evidence named (a new dict; kept cards are shared and never mutated)."""
    indicators = [{**indicator, "evidence": [_named(item, facts) for item in indicator["evidence"]]}
                  for indicator in card.get("indicators", [])]
    return {**card, "indicators": indicators, "vetoes": vetoes(card, facts)}


def _named(item, facts):
    named = dict(item)
    household_id = item.get("household_id")
    loan_id = item.get("loan_id")
    if loan_id and loan_id in facts.loans:
        loan = facts.loans[loan_id]
        household_id = household_id or loan.household_id
        if loan.enterprise_name:
            named["enterprise_name"] = loan.enterprise_name
    if household_id:
        number, head = facts.household_names.get(household_id, (None, None))
        village_id = facts.households.get(household_id, (None, None))[0]
        named.update(household_no=number, head_name=head)
        if village_id:
            named.update(village_id=village_id, village_name=facts.villages.get(village_id))
    if item.get("cadre_id"):
        named["cadre_name"] = facts.name_of("cadre", item["cadre_id"]) or None
    if item.get("village_id") and "village_name" not in named:
        named["village_name"] = facts.villages.get(item["village_id"])
    if item.get("project_id") and not item.get("title"):
        named["title"] = getattr(facts.projects.get(item["project_id"]), "title", None)
    return named


def vetoes(card, facts):
    """Why the subject is vetoed in the period: `{kind: veto, on, reason}` for a recorded veto,
    `{kind: external_poor_rating, on, source}` for an external 差 (DOMAIN.md, 一票否决)."""
    period = scoring.parse_period(card["period"])
    last = min(period.end, date.fromisoformat(card["as_of"]))
    index = facts.index()
    key = (card["subject_type"], card["subject_id"])
    found = [{"kind": "veto", "on": v["on"].isoformat(), "reason": v["reason"]}
             for v in index["vetoes"].get(key, []) if period.start <= v["on"] <= last]
    found += [{"kind": "external_poor_rating", "on": r["rated_on"].isoformat(), "source": r["source"]}
              for r in index["ratings"].get(key, []) if r["rating"] == "poor"
              and r["source"] in scoring.EXTERNAL_SOURCES and period.start <= r["rated_on"] <= last]
    return sorted(found, key=lambda v: (v["on"], v["kind"]))


def mask_name(name):
    """张三 → 张*: enough to tell households apart in a list, not to identify a person."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def masked(card):
    indicators = [{**indicator, "evidence": [{**item, "head_name": mask_name(item["head_name"])}
                                             if item.get("head_name") else item for item in indicator["evidence"]]}
                  for indicator in card.get("indicators", [])]
    return {**card, "indicators": indicators}

"""Every service's rulebook sections' defaults on record, as each service puts them when it starts
(`rules_defaults_declared`): the assessment reads the values of other services' sections from
these events and keeps no copy, so facts built by hand need them as a real county has them."""
from services.assistance.domain import Rules as AssistanceRules
from services.common import rulebook
from services.common.chassis import COUNTY_SECTION, section_defaults_of
from services.common.events import StoredEvent
from services.credit.domain import Rules as CreditRules
from services.projects.domain import Rules as ProjectsRules
from services.registry.domain import CountyRules, Rules as RegistryRules
from services.supervision.domain import Rules as SupervisionRules

SECTIONS = {"registry": RegistryRules, "assistance": AssistanceRules, "projects": ProjectsRules,
            "credit": CreditRules, "supervision": SupervisionRules}


def declared_defaults():
    """(event type, payload) of each section's defaults on record."""
    declared = {section: section_defaults_of(rules) for section, rules in SECTIONS.items()}
    declared[COUNTY_SECTION] = rulebook.defaults_of(CountyRules)
    return [(rulebook.DEFAULTS_DECLARED, {"section": section, "defaults": defaults})
            for section, defaults in declared.items()]


def declared_defaults_events(first_position=900_000_000):
    """The same as stored events (positions far from any test's own)."""
    return [StoredEvent(first_position + n, f"declared-{section['section']}", rulebook.STREAM_TYPE,
                        section["section"], 1, kind, 1, section)
            for n, (kind, section) in enumerate(declared_defaults())]

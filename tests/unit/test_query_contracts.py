"""The assistance and assessment queries are checked at the service's own door with the same
schemas the gateway's query schemas extend (the services' boundary contracts), before any I/O:
the services are called here without a container, so reaching the database would fail."""
import pytest

from gateway.routes import assessment as assessment_routes, assistance as assistance_routes
from services.assessment import schemas as assessment
from services.assessment.service import AssessmentService
from services.assistance import schemas as assistance
from services.assistance.service import AssistanceService
from services.common.errors import ValidationFailed
from services.common.validation import arguments

NO_CONTAINER = object()


def refused_field(call, *args, **kwargs):
    with pytest.raises(ValidationFailed) as refused:
        call(NO_CONTAINER, *args, **kwargs)
    return sorted(refused.value.details)


def test_the_gateway_checks_queries_with_the_services_contracts():
    assert issubclass(assessment_routes.ScoreQuery, assessment.ScoreQuery)
    assert issubclass(assessment_routes.BulletinQuery, assessment.BulletinQuery)
    assert issubclass(assistance_routes.AsOfQuery, assistance.AsOfQuery)


def test_the_assessment_refuses_bad_query_arguments_by_name():
    assert refused_field(AssessmentService.list_periods, "1999") == ["year"]  # the one Year field: 2000..2100
    assert refused_field(AssessmentService.list_periods, "twenty") == ["year"]
    assert refused_field(AssessmentService.pay_sheet, "2023-02", "pdf") == ["format"]
    assert refused_field(AssessmentService.pay_sheet, "2023-13") == ["month"]
    assert refused_field(AssessmentService.period_report, "2023-5") == ["month"]
    assert refused_field(AssessmentService.weekly_bulletin, "2023-W18", "pdf") == ["format"]
    assert refused_field(AssessmentService.weekly_bulletin, "2023-18") == ["week"]
    assert refused_field(AssessmentService.rankings, "unit", "2023", "2023-06-30", version="newest") == ["version"]
    assert refused_field(AssessmentService.rankings, "unit", "2023-05x", "2023-06-30") == ["period"]
    assert refused_field(AssessmentService.rankings, "unit", "2023", "30.06.2023") == ["as_of"]


def test_assistance_refuses_a_bad_as_of_by_name():
    assert refused_field(AssistanceService.overdue_visits, "C1", "2023-13-01") == ["as_of"]
    assert refused_field(AssistanceService.unit_summary, "U1", None) == ["as_of"]


def test_an_argument_given_as_none_is_not_given():
    query = arguments(assessment.ScoreQuery(), period="2023", as_of="2023-06-30", version=None)
    assert "version" not in query and query["period"] == "2023"
    assert arguments(assessment.PaySheetQuery(), month="2023-02", format=None)["format"] == "json"

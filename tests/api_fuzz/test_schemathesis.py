"""Schemathesis against the whole platform (issue 15): every operation of the gateway's OpenAPI
document, generated requests (examples, coverage and fuzzing phases), all of schemathesis'
checks, through its command line (`st run`) with a time budget. The platform is its own
(databases and vhost), as a hostile client would find a fresh deployment.

Signing in, out and changing the admin's password are left out: they would end this run's own
session or lock its account, not find a fault; tests/e2e covers them by hand.

`schemathesis.toml` here says which answers well-formed data may get (422 too: a domain rule's
refusal), `hooks.py` keeps generated cursors out of well-formed requests.
"""
import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests import support
from tests.e2e.conftest import ADMIN_PASSWORD, start_platform

MAX_SECONDS = 100
EXAMPLES_PER_OPERATION = 5
LEFT_OUT = ("/api/v1/auth/token", "/api/v1/auth/password", "/api/v1/auth/logout")
HERE = Path(__file__).parent
KNOWN_OPEN = {"ST202"}  # still open: see the note of issue 15


@pytest.fixture(scope="module")
def fuzz_platform(infra):
    amqp_uri = support.fresh_vhost("fuzz")
    with ExitStack() as stack:
        base = start_platform(stack, amqp_uri)
        support.wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).ok, 60, message="gateway ready")
        token = requests.post(f"{base}/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD},
                              timeout=30).json()["access_token"]
        yield base, token


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_platform):
    base, token = fuzz_platform
    st = Path(sys.executable).with_name("st")
    command = [str(st), "--config-file", str(HERE / "schemathesis.toml"), "run", f"{base}/api/v1/openapi.json",
               "--url", base,
               "--header", f"Authorization: Bearer {token}", "--checks", "all",
               "--max-examples", str(EXAMPLES_PER_OPERATION), "--max-time", str(MAX_SECONDS),
               "--phases", "examples,coverage,fuzzing", "--generation-deterministic", "--workers", "2",
               "--request-timeout", "60", "--no-color", "--warnings", "off", "--continue-on-failure"]
    for path in LEFT_OUT:
        command += ["--exclude-path", path]
    # a green wait: the platform under test is served by this very process
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api_fuzz.hooks",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent.parent), os.environ.get("PYTHONPATH")]))}
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    output, _ = run.communicate(timeout=MAX_SECONDS + 120)
    report = Path(f"/tmp/{support.PREFIX}-schemathesis.txt")
    report.write_text(output)
    summary = output[output.find("SUMMARY"):] if "SUMMARY" in output else output[-3000:]
    print(f"\nschemathesis {summary}")
    failures = dict(re.findall(r"❌ (ST\d+) [^:]+: (\d+)", summary))
    assert "generated" in summary, output[-6000:]
    unexpected = [block for block in re.split(r"\n(?=_{5,} )", output)
                  if any(f"- {code} " in block for code in failures if code not in KNOWN_OPEN)]
    assert not any(code not in KNOWN_OPEN for code in failures), "\n".join(unexpected)[:8000] + summary
    assert "Server error" not in output, summary

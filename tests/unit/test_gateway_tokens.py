"""The gateway keeps what it verified of a token (gateway/auth.py): never past the token's expiry,
and never for a gateway that signs with another key."""
import time

import pytest

from gateway.auth import Principal, Unauthorized, issue_token, principal_from_header

CONFIG = {"JWT_SECRET": "unit-test-key", "TOKEN_TTL_SECONDS": 1}


def bearer(config):
    token = issue_token(Principal("u-1", "station", "township", {"township_id": "T01"}), config)["access_token"]
    return f"Bearer {token}"


def test_a_kept_token_is_refused_once_it_expires():
    header = bearer(CONFIG)
    assert principal_from_header(header, CONFIG).user_id == "u-1"
    assert principal_from_header(header, CONFIG).scope == {"township_id": "T01"}  # from what was kept
    time.sleep(2.1)  # exp is whole seconds
    with pytest.raises(Unauthorized, match="expired"):
        principal_from_header(header, CONFIG)


def test_a_token_kept_by_one_signing_key_is_not_valid_under_another():
    header = bearer(CONFIG)
    assert principal_from_header(header, CONFIG).role == "township"
    with pytest.raises(Unauthorized, match="not valid"):
        principal_from_header(header, {**CONFIG, "JWT_SECRET": "another-county-key"})

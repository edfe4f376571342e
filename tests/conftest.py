# nameko's services need eventlet's monkey patch before anything else is imported, and
# psycopg2 must yield to eventlet (psycogreen) or one query would stall every green thread.
import eventlet

eventlet.monkey_patch()

from services.common.db import make_cooperative  # noqa: E402

make_cooperative()

import pytest  # noqa: E402

from tests import support  # noqa: E402


@pytest.fixture(scope="session")
def infra():
    support.require_infra()


@pytest.fixture(scope="session")
def amqp_uri(infra):
    return support.fresh_vhost()

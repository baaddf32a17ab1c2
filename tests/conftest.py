from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest
import structlog

from tests.support import broker, ldap_oracle
from tests.support import platform as test_platform


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def platform() -> Iterator[test_platform.SuitePlatform]:
    """The real RabbitMQ vhost and Samba DC, fresh for this run, shared by all its tests."""
    up = test_platform.bring_up()
    yield up
    down = up.script("down")
    assert down.returncode == 0, down.stderr


@pytest.fixture
def admin(platform: test_platform.SuitePlatform) -> Iterator[ldap3.Connection]:
    """The test DC seen by Administrator, through the independent LDAP oracle.

    One per test: a test that restarts the DC would otherwise break the next ones.
    """
    connection = ldap_oracle.administrator(platform)
    yield connection
    connection.unbind()


@pytest.fixture
def results(platform: test_platform.SuitePlatform) -> Iterator[str]:
    """A queue bound to every result event; the work, dead-letter and it are emptied."""
    del platform
    queue = "test.results.all"
    broker.bind_results(queue)
    broker.purge(queue, broker.WORK, broker.DLQ)
    yield queue
    broker.purge(queue, broker.WORK, broker.DLQ)

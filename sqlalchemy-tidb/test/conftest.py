"""Fixtures for the dialect's own tests: a TiDB given by URL, and a database to work in.

The TiDB is the one in SQLALCHEMY_TIDB_TEST_URL (a user who may create and drop databases,
e.g. `tidb://root@127.0.0.1:4000/`); the tests touch nothing on it but databases they create
with a random name and drop again.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

URL_VARIABLE = "SQLALCHEMY_TIDB_TEST_URL"


@pytest.fixture(scope="session")
def tidb_url() -> URL:
    """The server to test against, as a tidb:// URL without a database."""
    given = os.environ.get(URL_VARIABLE)
    if not given:
        pytest.fail(f"Set {URL_VARIABLE} to a TiDB to test against, such as "
                    "tidb://root@127.0.0.1:4000/ (a user who may create databases).")
    return make_url(given).set(drivername="tidb", database=None)


@pytest.fixture(scope="session")
def test_database(tidb_url: URL) -> Iterator[str]:
    """A database created for this test session and dropped at its end."""
    name = f"sqla_tidb_{secrets.token_hex(4)}"
    server = create_engine(tidb_url)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


@pytest.fixture(scope="session")
def database_url(tidb_url: URL, test_database: str) -> URL:
    """A tidb:// URL of the session's own database."""
    return tidb_url.set(database=test_database)


@pytest.fixture(scope="session")
def engine(database_url: URL) -> Iterator[Engine]:
    """A plain tidb:// engine on the session's own database."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()

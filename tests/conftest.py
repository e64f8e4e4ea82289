"""Fixtures for the helper tests: a throwaway database and engines on the session's TiDB."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from crm_helpers.config import Settings
from crm_helpers.db import tidb_engine


@pytest.fixture(scope="session")
def test_database(tidb_settings: Settings) -> Iterator[str]:
    """A database created for this test session and dropped at its end."""
    name = f"crm_pytest_{secrets.token_hex(4)}"
    admin = tidb_engine(tidb_settings.url())
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    yield name
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture(scope="session")
def engine(tidb_settings: Settings, test_database: str) -> Iterator[Engine]:
    """An engine on the throwaway database, as the session's (admin) user."""
    engine = tidb_engine(tidb_settings.url(test_database))
    yield engine
    engine.dispose()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

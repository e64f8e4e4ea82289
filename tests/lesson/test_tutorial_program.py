"""A program written the tutorial's way, on its tidb:// URL, prints the tutorial's result."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from crm_helpers.config import PROJECT_ROOT, Settings
from crm_helpers.engines import tidb_engine
from tests.conftest import throwaway_database

PROGRAM = PROJECT_ROOT / "examples" / "tutorial_main.py"
RESULT = "[('Ben', 212.5), ('Ben', 8.5)]\n"


@pytest.fixture
def database(tidb_settings: Settings) -> Iterator[str]:
    """An empty database of this test's own."""
    with throwaway_database(tidb_settings, "crm_pytest_tutorial") as name:
        yield name


def run_program(**settings: str) -> subprocess.CompletedProcess:
    # The variables are all given (empty ones count as unset), so no .env value slips in.
    names = ("TIDB_URL", "TIDB_HOST", "TIDB_PORT", "TIDB_USER", "TIDB_PASSWORD", "TIDB_DB_NAME",
             "CA_PATH")
    env = {**os.environ, **dict.fromkeys(names, ""), **settings}
    return subprocess.run([sys.executable, str(PROGRAM)], env=env, capture_output=True,
                          text=True, check=True, timeout=120)


def test_tutorial_program_prints_bens_orders(tidb_settings, database):
    url = tidb_settings.url(database).render_as_string(hide_password=False)
    assert run_program(TIDB_URL=url).stdout == RESULT


def test_tutorial_program_honours_the_project_settings(tidb_settings, database):
    """No TIDB_URL: host, port, user, password and database come from the TIDB_* variables."""
    result = run_program(TIDB_HOST=tidb_settings.host, TIDB_PORT=str(tidb_settings.port),
                         TIDB_USER=tidb_settings.user, TIDB_PASSWORD=tidb_settings.password,
                         TIDB_DB_NAME=database)
    assert result.stdout == RESULT


def test_running_it_again_gives_the_same_rows_not_duplicates(tidb_settings, database):
    url = tidb_settings.url(database).render_as_string(hide_password=False)
    run_program(TIDB_URL=url)
    assert run_program(TIDB_URL=url).stdout == RESULT
    admin = tidb_engine(tidb_settings.url(database))
    with admin.connect() as connection:
        users = connection.exec_driver_sql("SELECT name FROM users ORDER BY uid").scalars().all()
        orders = connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar()
    admin.dispose()
    assert (users, orders) == (["Alice", "Peter", "Ben"], 5)

"""Session-wide TiDB for the helper tests and the nbval notebook runs.

The server is started in `pytest_sessionstart` rather than by a fixture because nbval's
notebook items take no fixtures; whatever this session started, it stops at the end. Under
pytest-xdist the controller starts it before any worker exists and stops it after the last one
ends; the workers find it running and leave it be.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from crm_helpers.config import Settings, load_settings
from crm_helpers.local.server import ensure_tidb, local_tidb, local_tidb_status, stop_local_tidb

_state: dict[str, object] = {}

#: Where sqlalchemy-tidb's tests (sqlalchemy-tidb/test/conftest.py) find their TiDB.
DIALECT_TEST_URL = "SQLALCHEMY_TIDB_TEST_URL"

#: The size notebook 05's committed outputs were made with (its kernels inherit this).
NBVAL_EXPLORE_ORDERS = "50000"


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ["CRM_EXPLORE_ORDERS"] = NBVAL_EXPLORE_ORDERS
    settings = load_settings()
    if not settings.external:
        _state["started_local"] = not local_tidb_status(local_tidb(settings)).running
    _state["settings"] = ensure_tidb(settings)
    # The dialect's own tests (sqlalchemy-tidb/test) take their TiDB from this variable.
    url = settings.url(None).difference_update_query(["plugin"])
    os.environ.setdefault(DIALECT_TEST_URL, url.render_as_string(hide_password=False))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _state.get("started_local"):
        stop_local_tidb(local_tidb(_state["settings"]))  # type: ignore[arg-type]


#: The pytest-xdist group (`make test` runs `--dist loadgroup`) of every test that uses the
#: session's TiDB: they run one after another in one worker, as without xdist, because the
#: notebooks and lessons share its fixed databases and accounts (test_sqlalchemy, crm_analysis).
SESSION_GROUP = "session-tidb"

#: Files of `lifecycle` tests that share nothing between tests (no module-scoped server): each
#: test is a unit of its own, so their waits for a server overlap. Other lifecycle files run
#: as one unit each, beside the session's tests.
INDEPENDENT_LIFECYCLE = {"tests/local/test_crash_recovery.py"}


#: Files whose tests use the session's TiDB only through databases and users of their own,
#: made with random names (`throwaway_database`, `scratch_engine`): each runs as a unit of its
#: own beside the session's group, in whichever worker is free.
OWN_DATABASES = {
    "tests/analysis/test_loading.py",
    "tests/analysis/test_loading_integrity.py",
    "tests/analysis/test_loading_read_back.py",
    "tests/lesson/test_model_checks.py",
    "tests/lesson/test_transactions.py",
    "tests/test_faults.py",
    "sqlalchemy-tidb/test/test_stale_read.py",
}


def xdist_group(item: pytest.Item, root: Path) -> str | None:
    """The xdist group `item` runs in; None for a unit of its own."""
    path = item.path.relative_to(root).as_posix()
    if item.get_closest_marker("lifecycle") is None:
        return f"own-databases:{path}" if path in OWN_DATABASES else SESSION_GROUP
    return None if path in INDEPENDENT_LIFECYCLE else f"own-tidb:{path}"


# First, so that xdist's own hook (which names each test after its group) sees the groups.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    for item in items:
        group = xdist_group(item, config.rootpath)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # pandas' HTML markup changes between versions; a DataFrame's data is compared through
    # its text/plain form, which nbval still checks.
    for notebook in {item.parent for item in items if type(item).__name__ == "IPyNbCell"}:
        if "text/html" not in notebook.skip_compare:
            notebook.skip_compare = (*notebook.skip_compare, "text/html")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    # xdist names a grouped test `<id>@<group>` in the worker; where it cannot (pytest-xdist
    # #1386), the session's tests would run in several workers at once on the same databases.
    grouping = node.config.getvalue("dist") == "loadgroup"
    if grouping and ids and not any("@" in nodeid for nodeid in ids):
        pytest.exit(
            "pytest-xdist did not group the tests (pytest-dev/pytest-xdist#1386), so tests "
            "that share the session's databases would run at once. Install the pytest "
            "pyproject.toml allows (make setup), or run pytest without -n.", returncode=4)


@pytest.fixture(scope="session")
def tidb_settings() -> Settings:
    """Settings of the TiDB this test session uses (the local one unless TIDB_URL is set)."""
    return _state["settings"]  # type: ignore[return-value]

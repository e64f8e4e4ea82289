"""Session-wide TiDB for the helper tests and the nbval notebook runs.

The server is started in `pytest_sessionstart` rather than by a fixture because nbval's
notebook items take no fixtures; whatever this session started, it stops at the end.
"""

from __future__ import annotations

import os

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


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # pandas' HTML markup changes between versions; a DataFrame's data is compared through
    # its text/plain form, which nbval still checks.
    for notebook in {item.parent for item in items if type(item).__name__ == "IPyNbCell"}:
        if "text/html" not in notebook.skip_compare:
            notebook.skip_compare = (*notebook.skip_compare, "text/html")


@pytest.fixture(scope="session")
def tidb_settings() -> Settings:
    """Settings of the TiDB this test session uses (the local one unless TIDB_URL is set)."""
    return _state["settings"]  # type: ignore[return-value]

"""Runs SQLAlchemy's compliance suite against the project's TiDB, through either dialect.

SQLAlchemy's own pytest plugin (loaded by setup.cfg's `-p`) does the work; this file only
points it at a TiDB and provisions the databases it needs:

- the TiDB is the project's (the local one on TIDB_PORT, started if need be and stopped again
  if this session started it, or the one TIDB_URL / TIDB_HOST names), unless `--dburi` is given;
- `--dialect tidb` (default) or `--dialect mysql+pymysql` picks the dialect, so both can be
  compared on the same server with the same requirements;
- the suite's tables live in databases of their own, `crm_sqla_<backend>` plus its
  `_test_schema` and `_test_schema_2` (SQLAlchemy's "follower" databases), created afresh by
  the backend's provisioning hooks (crm_helpers/dialect/provision.py for tidb://,
  SQLAlchemy's for mysql://) and dropped at the end, so nothing else on the server is touched.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.testing import provision
from sqlalchemy.testing.plugin import plugin_base

from crm_helpers.config import Settings, load_settings
from crm_helpers.dialect.requirements import KNOWN_TIDB_ISSUES
from crm_helpers.server import ensure_tidb, local_tidb, local_tidb_status, stop_local_tidb

DIALECTS = ("tidb", "mysql+pymysql")

_state: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--dialect", choices=DIALECTS, default="tidb",
                     help="the SQLAlchemy dialect to run the suite through (default: tidb)")


def _suite_urls(config: pytest.Config) -> list[URL]:
    """The URLs the suite will use: --dburi / --db if given, else the project's TiDB."""
    option = config.option
    if option.dburi or option.db:
        return [make_url(u) for u in (option.dburi or [])] or [
            make_url(plugin_base.file_config.get("db", name)) for name in option.db]
    settings: Settings = load_settings()
    if not settings.external:
        _state["started_local"] = not local_tidb_status(local_tidb(settings)).running
        _state["settings"] = settings
    ensure_tidb(settings)
    # A URL object, not text: the password is never rendered into an option string.
    url = settings.url(None).set(drivername=option.dialect)
    option.dburi = [url]
    return [url]


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs after SQLAlchemy's plugin has read its options; its engines are made at session start.
    if hasattr(config, "workerinput"):  # an xdist worker: SQLAlchemy provisions it itself
        return
    urls = _suite_urls(config)
    ident = f"crm_sqla_{urls[0].get_backend_name()}"
    plugin_base.configure_follower(ident)
    created = []
    for url in urls:
        url.get_dialect().load_provisioning()
        server = create_engine(url.set(database=None))
        try:
            provision.create_db(url, server, ident)
        finally:
            server.dispose()
        created.append(url)
    _state["created"] = (ident, created)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ident, created = _state.pop("created", (None, []))
    for url in created:
        server = create_engine(url.set(database=None))
        try:
            provision.drop_db(url, server, ident)
        finally:
            server.dispose()
    if _state.pop("started_local", False):
        stop_local_tidb(local_tidb(_state["settings"]))


def _suite_name(item: pytest.Item) -> str:
    """`Class::test[params]`, without the per-backend suffix SQLAlchemy adds to class names."""
    suite_classes = [base for base in (item.cls.__mro__ if item.cls else ())
                     if base.__module__.startswith("sqlalchemy.testing.suite")]
    return f"{suite_classes[0].__name__ if suite_classes else ''}::{item.name}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # Known TiDB issues (crm_helpers/dialect/requirements.py): each matching test is marked.
    # Patterns use * as the only wildcard; brackets are literal (parametrized test ids).
    patterns = [(re.compile(re.escape(pattern).replace(r"\*", ".*") + r"\Z"), kind, reason)
                for pattern, (kind, reason) in KNOWN_TIDB_ISSUES.items()]
    for item in items:
        name = _suite_name(item)
        for pattern, kind, reason in patterns:
            if pattern.match(name):
                marker = (pytest.mark.skip(reason=reason) if kind == "skip"
                          else pytest.mark.xfail(reason=reason, strict=True))
                item.add_marker(marker)
                break

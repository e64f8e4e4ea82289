"""Runs SQLAlchemy's (or Alembic's) suite against a TiDB given by URL, through either dialect.

SQLAlchemy's own pytest plugin (loaded by setup.cfg's `-p`) does the work; this file points
it at the TiDB of `--dburi` (SQLAlchemy's own option: a URL of a user who may create
databases) and provisions the databases it needs:

- `--dialect tidb` (default) or `--dialect mysql+pymysql` picks the dialect: the URL's scheme
  is replaced, so both can be compared on the same server with the same requirements;
- `--suite sqlalchemy` (default, test_suite.py) or `--suite alembic` (test_alembic_suite.py,
  with the requirements of sqlalchemy_tidb/alembic_requirements.py) picks the suite;
- `--leave-out FILE` leaves out the tests FILE names (compare.py's reference runs);
- the suite's tables live in databases of their own, `sqla_<backend>` plus its
  `_test_schema` and `_test_schema_2` (SQLAlchemy's "follower" databases), created afresh by
  the backend's provisioning hooks (sqlalchemy_tidb/provision.py for tidb://,
  SQLAlchemy's for mysql://) and dropped at the end, so nothing else on the server is touched.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.testing import provision
from sqlalchemy.testing.plugin import plugin_base

#: The dialects the suite can run through: tidb:// and SQLAlchemy's MySQL dialect, over PyMySQL
#: and over the async driver (sqlalchemy_tidb/asyncmy.py); mysql+aiomysql for comparing drivers.
DIALECTS = ("tidb", "mysql+pymysql", "tidb+asyncmy", "mysql+asyncmy", "mysql+aiomysql")


class Suite(NamedTuple):
    """One suite this folder runs: its test module, requirements, and known TiDB issues."""

    module: str
    #: The package its test classes come from (for names without the per-backend suffix).
    package: str
    #: `module:Class` of the requirements, as in setup.cfg's [sqla_testing].
    requirements: str
    #: `module:NAME` of its KNOWN_TIDB_ISSUES-like dict.
    known_issues: str


SUITES = {
    "sqlalchemy": Suite("test_suite.py", "sqlalchemy.testing.suite",
                        "sqlalchemy_tidb.requirements:TiDBRequirements",
                        "sqlalchemy_tidb.requirements:KNOWN_TIDB_ISSUES"),
    "alembic": Suite("test_alembic_suite.py", "alembic.testing.suite",
                     "sqlalchemy_tidb.alembic_requirements:TiDBAlembicRequirements",
                     "sqlalchemy_tidb.alembic_requirements:KNOWN_TIDB_ALEMBIC_ISSUES"),
}

_state: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--dialect", choices=DIALECTS, default="tidb",
                     help="the SQLAlchemy dialect to run the suite through (default: tidb)")
    parser.addoption("--suite", choices=SUITES, default="sqlalchemy",
                     help="SQLAlchemy's compliance suite (default) or Alembic's dialect suite")
    parser.addoption("--leave-out", metavar="FILE", default=None,
                     help="leave out the tests named in FILE, one `Class::test[params]` a line "
                          "(class names without SQLAlchemy's per-backend suffix)")


def _suite(config: pytest.Config) -> Suite:
    return SUITES[config.getoption("suite")]


def _load(reference: str) -> Any:
    """The object `module:name` names."""
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Each suite's module is collected only when --suite names it.
    modules = {suite.module for suite in SUITES.values()}
    if collection_path.name in modules and collection_path.name != _suite(config).module:
        return True
    return None


def _suite_urls(config: pytest.Config) -> list[URL]:
    """The URL the suite will use: --dburi's server, through the dialect --dialect names."""
    option = config.option
    given = [make_url(u) for u in (option.dburi or [])]
    if not given:
        raise pytest.UsageError(
            "Give the TiDB to test with --dburi tidb://USER:PASSWORD@HOST:PORT/ (a user who "
            "may create and drop databases).")
    # A URL object, not text: the password is never rendered into an option string.
    url = given[0].set(drivername=option.dialect, database=None)
    option.dburi = [url]
    return [url]


def _provisioning_url(url: URL) -> URL:
    """The URL to create and drop the suite's databases with: over PyMySQL, the sync driver.

    The hooks are the backend's (tidb or mysql) whatever the driver, and run outside the
    suite's event loop, where an async driver cannot connect.
    """
    return url.set(drivername=f"{url.get_backend_name()}+pymysql", database=None)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs after SQLAlchemy's plugin has read its options; its engines are made at session start.
    # It reads the requirements class from setup.cfg then too: the suite's own replaces it.
    plugin_base.file_config.set("sqla_testing", "requirement_cls", _suite(config).requirements)
    if hasattr(config, "workerinput"):  # an xdist worker: SQLAlchemy provisions it itself
        return
    urls = _suite_urls(config)
    ident = f"sqla_{urls[0].get_backend_name()}"
    plugin_base.configure_follower(ident)
    created = []
    for url in urls:
        url.get_dialect().load_provisioning()
        server = create_engine(_provisioning_url(url))
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
        server = create_engine(_provisioning_url(url))
        try:
            provision.drop_db(url, server, ident)
        finally:
            server.dispose()


def _suite_name(item: pytest.Item, package: str) -> str:
    """`Class::test[params]`, without the per-backend suffix SQLAlchemy adds to class names."""
    suite_classes = [base for base in (item.cls.__mro__ if item.cls else ())
                     if base.__module__.startswith(package)]
    return f"{suite_classes[0].__name__ if suite_classes else ''}::{item.name}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # Known TiDB issues (sqlalchemy_tidb/requirements.py, alembic_requirements.py): each
    # matching test is marked. Patterns use * as the only wildcard; brackets are literal
    # (parametrized test ids).
    suite = _suite(config)
    left_out = config.getoption("leave_out")
    if left_out is not None:
        names = set(Path(left_out).read_text(encoding="utf-8").splitlines())
        deselected = [item for item in items if _suite_name(item, suite.package) in names]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if _suite_name(item, suite.package) not in names]
    patterns = [(re.compile(re.escape(pattern).replace(r"\*", ".*") + r"\Z"), kind, reason)
                for pattern, (kind, reason) in _load(suite.known_issues).items()]
    for item in items:
        name = _suite_name(item, suite.package)
        for pattern, kind, reason in patterns:
            if pattern.match(name):
                marker = (pytest.mark.skip(reason=reason) if kind == "skip"
                          else pytest.mark.xfail(reason=reason, strict=True))
                item.add_marker(marker)
                break

"""The `tidb://` SQLAlchemy dialect: MySQL over PyMySQL, plus what TiDB does differently.

It replaces the archived `sqlalchemy-tidb` package (SQLAlchemy < 2 only) on SQLAlchemy 2.x
and is found through the `sqlalchemy.dialects` entry point, so the tutorial's own
`create_engine('tidb://root:@127.0.0.1:4000/test_sqlalchemy?charset=utf8mb4')` works.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

from crm_helpers.errors import CrmError

#: TiDB supports SAVEPOINT from this release on.
SAVEPOINT_MIN_VERSION = (6, 2)

# VERSION() on TiDB reads like "8.0.11-TiDB-v8.5.6" or "8.0.11-TiDB-v7.5.2-serverless".
_TIDB_VERSION = re.compile(r"-TiDB-v?(\d+)\.(\d+)\.(\d+)")


class NotTiDB(CrmError):
    """The server behind a `tidb://` URL is not TiDB."""


class UnsupportedByTiDB(CrmError, NotImplementedError):
    """An SQLAlchemy feature that this TiDB does not offer."""


def parse_tidb_version(server_version: str) -> tuple[int, int, int] | None:
    """TiDB's own version from a VERSION() string; None for a build without one (`-TiDB-None`)."""
    match = _TIDB_VERSION.search(server_version)
    if match:
        major, minor, patch = (int(part) for part in match.groups())
        return major, minor, patch
    if "-TiDB-" in server_version:
        return None
    raise NotTiDB(f"The server reports version {server_version!r}, which is not TiDB. "
                  "The tidb:// dialect only talks to TiDB; check the host and port in the URL.")


class TiDBDialect(MySQLDialect_pymysql):
    """MySQL/PyMySQL with TiDB's version, savepoint and two-phase behaviour."""

    name = "tidb"
    driver = "pymysql"
    supports_statement_cache = True

    #: TiDB's release as (major, minor, patch), read when the first connection is made.
    tidb_version: tuple[int, int, int] | None = None

    @classmethod
    def engine_created(cls, engine: Any) -> None:
        # Every tidb:// engine, even a learner's plain create_engine(), raises the project's
        # errors with advice (crm_helpers.translate holds the table of error codes).
        from crm_helpers.translate import install_error_translation

        install_error_translation(engine)

    def initialize(self, connection: Any) -> None:
        super().initialize(connection)
        server_version = connection.exec_driver_sql("SELECT VERSION()").scalar()
        self.tidb_version = parse_tidb_version(server_version)

    def _require_savepoints(self) -> None:
        if self.tidb_version is not None and self.tidb_version < SAVEPOINT_MIN_VERSION:
            found = ".".join(map(str, self.tidb_version))
            raise UnsupportedByTiDB(
                f"TiDB {found} has no SAVEPOINT (it arrived in TiDB 6.2), so begin_nested() "
                "cannot work here. Use separate transactions, or upgrade TiDB.")

    def do_savepoint(self, connection: Any, name: str) -> None:
        self._require_savepoints()
        super().do_savepoint(connection, name)

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        self._require_savepoints()
        super().do_rollback_to_savepoint(connection, name)

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        self._require_savepoints()
        super().do_release_savepoint(connection, name)

    # TiDB commits every transaction with its own internal two-phase protocol but offers no
    # XA statements, so SQLAlchemy's two-phase API cannot be honoured: refuse it clearly
    # instead of sending XA commands that TiDB would reject mid-transaction.
    def _refuse_two_phase(self, *_: Any) -> Any:
        raise UnsupportedByTiDB(
            "TiDB does not support XA (two-phase) transactions; every TiDB transaction is "
            "already committed atomically across the cluster. Use engine.begin() or "
            "Session.commit() instead of begin_twophase() / twophase=True.")

    do_begin_twophase = _refuse_two_phase
    do_prepare_twophase = _refuse_two_phase
    do_rollback_twophase = _refuse_two_phase
    do_commit_twophase = _refuse_two_phase
    do_recover_twophase = _refuse_two_phase


dialect = TiDBDialect

"""Tables after a hard kill of the local TiDB: find the damaged ones and repair their indexes.

The local store (unistore) keeps a transaction's locks in memory. When `tidb-server` is killed
(SIGKILL, out of memory, power loss) in the moment after a commit returned, the keys it had not
yet written to disk are lost: rows go missing, and a table's indexes and rows can disagree.
`ADMIN CHECK TABLE` finds such tables; `ADMIN CLEANUP INDEX` (index entries without a row) and
`ADMIN RECOVER INDEX` (rows without an index entry) make them consistent again. Rows that were
lost stay lost: they have to be written again (a resumed `load_frame` does it).

`start_local_tidb` calls `check_after_unclean_stop` when the previous server died without a
clean shutdown; the tables it finds damaged are kept in the server's `damage_file`
(`damaged_tables`, `record_damage`) until `crm-tidb repair`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pymysql
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from crm_helpers.config import SYSTEM_DATABASES, load_settings, sql_identifier
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import INCONSISTENCY_CODES, CrmError, TiDBAuthError, error_code

if TYPE_CHECKING:  # server.py calls check_after_unclean_stop: importing it here would be a cycle
    from crm_helpers.local.server import LocalTiDB

Report = Callable[[str], None]


@dataclass(frozen=True)
class TableHealth:
    """What `ADMIN CHECK TABLE` said about one table (`problem` is None when it passed)."""

    database: str
    table: str
    problem: str | None = None

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class RepairResult:
    """What `repair_table` did to one table, and whether it is consistent now."""

    database: str
    table: str
    removed: int
    added: int
    problem: str | None

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    def __str__(self) -> str:
        done = (f"{self.name}: removed {self.removed:,} index entries without a row, "
                f"added {self.added:,} missing ones")
        if self.problem:
            return f"{done}; still damaged ({self.problem})"
        return f"{done}; consistent now"


def is_inconsistency(exc: BaseException) -> bool:
    """True if `exc` is TiDB saying a table's indexes and rows disagree."""
    return error_code(exc) in INCONSISTENCY_CODES


def project_databases(connection: Connection) -> list[str]:
    """Every database on the server except TiDB's own system databases: the project's."""
    names = connection.exec_driver_sql("SHOW DATABASES").scalars().all()
    return sorted(name for name in names if name.lower() not in SYSTEM_DATABASES)


def check_table(connection: Connection, database: str, table: str) -> TableHealth:
    """`ADMIN CHECK TABLE` on one table; an inconsistency becomes `TableHealth.problem`."""
    # The driver's own cursor: TiDB's error here is the answer, not something to translate.
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"ADMIN CHECK TABLE {sql_identifier(database)}.{sql_identifier(table)}")
    except pymysql.err.MySQLError as exc:
        if not is_inconsistency(exc):
            raise
        return TableHealth(database, table, _message(exc))
    finally:
        cursor.close()
    return TableHealth(database, table)


def check_tables(engine: Engine, databases: Sequence[str] | None = None, *,
                 report: Report | None = None) -> list[TableHealth]:
    """`ADMIN CHECK TABLE` on every base table of `databases` (default: the project's)."""
    results = []
    with _autocommit(engine) as connection:
        for database in databases if databases is not None else project_databases(connection):
            for table in _base_tables(connection, database):
                if report:
                    report(f"checking {database}.{table}")
                results.append(check_table(connection, database, table))
    return results


def repair_table(engine: Engine, database: str, table: str) -> RepairResult:
    """Make one table's indexes agree with its rows again, then check it.

    Index entries whose row is gone are removed, rows without index entries get them back.
    Rows that were lost are not brought back: write them again.
    """
    removed = added = 0
    with _autocommit(engine) as connection:
        for index in _indexes(connection, database, table):
            target = " ".join([sql_identifier(database, formatted=True) + "."
                               + sql_identifier(table, formatted=True),
                               sql_identifier(index, formatted=True)])
            removed += int(connection.exec_driver_sql(
                f"ADMIN CLEANUP INDEX {target}").scalar_one())
            # RECOVER INDEX answers (ADDED_COUNT, SCAN_COUNT).
            added += int(connection.exec_driver_sql(f"ADMIN RECOVER INDEX {target}").first()[0])
        health = check_table(connection, database, table)
    return RepairResult(database, table, removed, added, health.problem)


def repair_tables(engine: Engine, tables: Sequence[TableHealth], *,
                  report: Report | None = None) -> list[RepairResult]:
    """`repair_table` on each damaged table of `tables`."""
    results = []
    for health in tables:
        if health.ok:
            continue
        if report:
            report(f"repairing {health.name}")
        results.append(repair_table(engine, health.database, health.table))
    return results


def _autocommit(engine: Engine) -> Connection:
    """A connection where each ADMIN statement is its own transaction (repairs are kept)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _base_tables(connection: Connection, database: str) -> list[str]:
    rows = connection.exec_driver_sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        (database,)).scalars().all()
    return list(rows)


def _indexes(connection: Connection, database: str, table: str) -> list[str]:
    """The table's indexes that are stored apart from its rows (not a clustered primary key)."""
    rows = connection.exec_driver_sql(
        "SELECT DISTINCT KEY_NAME FROM information_schema.TIDB_INDEXES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CLUSTERED <> 'YES' ORDER BY KEY_NAME",
        (database, table)).scalars().all()
    return list(rows)


def _message(exc: pymysql.err.MySQLError) -> str:
    args = exc.args
    text = str(args[1]) if len(args) > 1 else str(exc)
    return f"error {error_code(exc)}: {text[:300]}"


# --- after an unclean stop of the local TiDB ----------------------------------------------

class CrashDamageWarning(UserWarning):
    """Tables of the local TiDB were found damaged after it stopped without a clean shutdown."""


def damaged_tables(local: LocalTiDB | None = None) -> list[str]:
    """Tables found damaged after the local TiDB's last unclean stop and not repaired since."""
    if local is None:
        # Imported here: server.py imports this module (see TYPE_CHECKING above).
        from crm_helpers.local.server import local_tidb

        local = local_tidb()
    try:
        return json.loads(local.damage_file.read_text())["damaged"]
    except (FileNotFoundError, ValueError, KeyError):
        return []


def record_damage(local: LocalTiDB, names: list[str]) -> None:
    """Remember which tables are damaged (shown by `crm-tidb up`/`status`); [] forgets."""
    if names:
        local.damage_file.write_text(json.dumps({"damaged": names}, indent=1) + "\n")
    else:
        local.damage_file.unlink(missing_ok=True)


def check_after_unclean_stop(local: LocalTiDB, report: Report | None) -> None:
    """Check every project table after an unclean stop; record and report the damaged ones."""
    say = report or (lambda message: None)
    say(f"The previous local TiDB in {local.home} stopped without a clean shutdown (killed or "
        "crashed): transactions committed just before may be lost. Checking every table "
        "(ADMIN CHECK TABLE)...")
    engine = None
    try:
        engine = _admin_engine(local)
        results = check_tables(engine, report=say)
    except (CrmError, DBAPIError, pymysql.err.MySQLError) as exc:
        _tell(report, f"Could not check the tables after the unclean stop ({exc}). "
                      "Run `crm-tidb check` to try again.")
        return
    finally:
        if engine is not None:
            engine.dispose()
    damaged = [result for result in results if not result.ok]
    record_damage(local, [result.name for result in damaged])
    if not damaged:
        say(f"All {len(results)} tables are consistent. Rows written in the last moments "
            "before the stop may still be missing: re-run the loads (they resume).")
        return
    message = (
        f"{len(damaged)} of {len(results)} tables are damaged (their indexes and rows "
        "disagree):\n" + "\n".join(f"  {r.name}: {r.problem}" for r in damaged) +
        "\nRepair them with `crm-tidb repair` (removes index entries without rows and adds "
        "missing ones), then re-run the loads that wrote them: load_frame / load_generated "
        "resume and rewrite what is missing. Or start from empty data with "
        "`crm-tidb up --fresh`.")
    _tell(report, message)


def _admin_engine(local: LocalTiDB) -> Engine:
    """An engine logged in as root: with no password (the local default), else TIDB_PASSWORD."""
    try:
        return tidb_engine(local.url())
    except TiDBAuthError:
        return tidb_engine(local.url().set(password=load_settings().password))


def _tell(report: Report | None, message: str) -> None:
    """Through `report` if given, else as a warning (shown in notebooks and scripts)."""
    if report:
        report(message)
    else:
        warnings.warn(message, CrashDamageWarning, stacklevel=4)

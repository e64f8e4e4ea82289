"""Table statistics after a bulk load: wait until TiDB has counted the load's rows, then ANALYZE.

TiDB counts the rows each transaction writes in memory and adds them to its statistics
(`mysql.stats_meta`) in the background: every 20 statistics leases plus a random offset of up
to a minute, chosen when the server starts (10 to 70 s on the project's local TiDB, whose lease
is 0.5 s; 60 to 120 s with TiDB's default lease of 3 s). An `ANALYZE` that runs before that is
partly undone: the late count is added on top of the analyzed one, and the optimizer then sees
twice the rows.

So the wait is for the load's own transactions, not for a row count. A killed tidb-server loses
the counts it had not written yet (they were only in memory), so a table's count may never
reach its rows; and a live server may still hold counts from an interrupted earlier load,
which a count taken before this load would miss. Right after its last transaction on a table,
the load notes the transaction's commit timestamp (TSO) and the table's statistics row
(`WriteMark`). TiDB writes every table's pending counts in one pass, at a TSO taken after it
collected them; so once the row shows a pass later than the commit that added at least that
transaction's rows to `modify_count` (which only these passes raise), TiDB has counted
everything committed before, on every table, and `ANALYZE` is safe. (A pass that collected its
counts just before the commit and wrote them just after the mark, a window of milliseconds,
would pass for a later one.) TiDB may hold a change smaller than 1/10,000 of a table's rows for
up to an hour; then the wait ends after `COUNT_WAIT_SECONDS` with a StatisticsNotCounted
warning, and the estimates are off by at most that change.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pymysql
from sqlalchemy import Engine, text

from crm_helpers.errors import InvalidInput
from crm_helpers.recovery import error_code

#: How long `analyze_after_load` waits for TiDB to count the loaded rows before analyzing anyway:
#: longer than the 60 to 120 s between two counting passes with TiDB's default lease.
COUNT_WAIT_SECONDS = 150.0
# Privilege errors: a user who may not read the statistics still loads (and cannot analyze).
_NO_PRIVILEGE_CODES = {1142, 1143, 1227, 8121}


class StatisticsNotCounted(UserWarning):
    """ANALYZE ran before TiDB had counted a load's rows; the row estimates may be too high."""


@dataclass(frozen=True)
class WriteMark:
    """A load's last transaction on a table, and the table's statistics row right after it."""

    commit_ts: int
    rows: int
    #: mysql.stats_meta's version and modify_count, read just after the commit (0 if no row;
    #: None if the user may not read them).
    version: int | None
    modify_count: int | None

    def counted_in(self, version: int, modify_count: int) -> bool:
        """True if a statistics row (version, modify_count) shows this transaction counted."""
        if version <= self.commit_ts or self.version is None or self.modify_count is None:
            return False
        # A pass since the mark added at least this transaction's rows; or one had already
        # come between the commit and the mark.
        return (modify_count >= self.modify_count + self.rows
                or (self.version > self.commit_ts and self.modify_count >= self.rows))


def mark_commit(cursor, table: str, rows: int) -> WriteMark:
    """The WriteMark of the transaction `cursor`'s connection has just committed on `table`."""
    cursor.execute("SELECT @@tidb_last_txn_info")
    info = cursor.fetchone()[0]
    try:
        committed = int(json.loads(info or "{}").get("commit_ts") or 0)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"@@tidb_last_txn_info is {info!r}, not JSON with a commit_ts: "
                           "is this a TiDB?") from exc
    try:
        version, modify_count = _statistics_rows(cursor, [table]).get(table, (0, 0))
    except pymysql.err.MySQLError as exc:
        if error_code(exc) not in _NO_PRIVILEGE_CODES:
            raise
        version = modify_count = None
    cursor.execute("ROLLBACK")  # end the read's transaction
    return WriteMark(committed, rows, version, modify_count)


def _statistics_rows(cursor, tables: list[str]) -> dict[str, tuple[int, int]]:
    """(version, modify_count) of each table's statistics in the cursor's database.

    Reading them needs SELECT on mysql.stats_meta, as SHOW STATS_META does.
    """
    placeholders = ", ".join(["%s"] * len(tables))
    cursor.execute(
        "SELECT t.table_name, m.version, m.modify_count FROM information_schema.tables t "
        "JOIN mysql.stats_meta m ON m.table_id = t.tidb_table_id "
        f"WHERE t.table_schema = DATABASE() AND t.table_name IN ({placeholders})", tables)
    return {name: (int(version), int(modify)) for name, version, modify in cursor.fetchall()}


def counted_rows(engine: Engine, tables: list[str]) -> dict[str, int]:
    """The row count TiDB's statistics hold for each of `tables` in the engine's database."""
    with engine.connect() as connection:
        database = connection.execute(text("SELECT DATABASE()")).scalar()
        rows = connection.execute(
            text("SHOW STATS_META WHERE Db_name = :database AND Table_name IN :names"),
            {"database": database, "names": tuple(tables)}).mappings().all()
    return {row["Table_name"]: int(row["Row_count"]) for row in rows}


def not_counted_yet(engine: Engine, marks: Mapping[str, WriteMark]) -> set[str]:
    """The tables of `marks` whose marked transaction TiDB has not counted yet."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        rows = _statistics_rows(cursor, list(marks))
        connection.rollback()
    finally:
        connection.close()
    return {name for name, mark in marks.items() if not mark.counted_in(*rows.get(name, (0, 0)))}


def analyze_after_load(engine: Engine, tables: Iterable[str], marks: Mapping[str, WriteMark],
                       *, wait: float = COUNT_WAIT_SECONDS) -> None:
    """ANALYZE `tables` once TiDB has counted the transactions in `marks` (see WriteMark).

    `marks` holds, for each table the load wrote, its last transaction there
    (`LoadReport.written`). If TiDB has not counted them within `wait` seconds, it analyzes
    anyway and warns (StatisticsNotCounted) which tables' estimates may be too high.
    """
    names = [tables] if isinstance(tables, str) else list(tables)
    if not names or any(not isinstance(name, str) or not name.isidentifier() for name in names):
        raise InvalidInput(f"analyze_after_load needs plain table names, got {names!r}.")
    if not isinstance(marks, Mapping) or any(
            name not in names or not isinstance(mark, WriteMark) for name, mark in marks.items()):
        raise InvalidInput(
            f"analyze_after_load needs a mapping from tables among {names} to the WriteMark of "
            f"the load's last transaction on each (LoadReport.written); got {marks!r}.")
    deadline = time.monotonic() + wait
    pending = set(marks)
    while pending:
        pending = not_counted_yet(engine, {name: marks[name] for name in pending})
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if pending:
        warnings.warn(
            f"TiDB had not counted the rows loaded into {', '.join(sorted(pending))} after "
            f"{wait:.0f} s (it adds new rows to its statistics in the background); analyzed "
            "anyway. Its row estimates may be too high by those rows once TiDB counts them: "
            "run ANALYZE TABLE on it again in a few minutes.",
            StatisticsNotCounted, stacklevel=2)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE TABLE " + ", ".join(f"`{n}`" for n in names))

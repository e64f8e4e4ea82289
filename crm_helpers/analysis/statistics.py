"""Table statistics after a bulk load: wait until TiDB has counted the load's rows, then ANALYZE.

TiDB counts the rows each transaction writes in memory and adds them to its statistics
(`mysql.stats_meta`) in the background: every 20 statistics leases plus a random offset of up
to a minute, chosen when the server starts (10 to 70 s on the project's local TiDB, whose lease
is 0.5 s; 60 to 120 s with TiDB's default lease of 3 s). An `ANALYZE` that runs before that is
partly undone: the late count is added on top of the analyzed one, and the optimizer then sees
twice the rows. TiDB v8.5.7 added `FLUSH STATS_DELTA`, which writes the counts at once; the
wait starts with it (`flush_counts`), and on an older TiDB it waits for the pass.

So the wait is for the load's own transactions, not for a row count. A killed tidb-server loses
the counts it had not written yet (they were only in memory), so a table's count may never
reach its rows; and a live server may still hold counts from an interrupted earlier load,
which a count taken before this load would miss. The load notes each transaction's commit
timestamp (TSO) and, once its last one on a table has committed, the table's statistics row
(`WriteMark`). TiDB writes every table's pending counts in one pass, at a TSO taken after it
collected them; so once the row shows a pass later than the commit that added at least that
transaction's rows to `modify_count` (which only these passes raise), TiDB has counted
everything committed before, on every table, and `ANALYZE` is safe. (A pass that collected its
counts just before the commit and wrote them just after the mark, a window of milliseconds,
would pass for a later one.) TiDB may hold a change smaller than 1/10,000 of a table's rows for
up to an hour; then the wait ends after `COUNT_WAIT_SECONDS` with a StatisticsNotCounted
warning, and the estimates are off by at most that change.

A resumed load that finds every row there writes nothing to wait for, yet a crash may have left
the statistics wrong: a killed tidb-server loses the counts it held (a table of a million rows
then shows 0), and a loader killed before its `ANALYZE` leaves tables never analyzed. So
`analyze_if_stale` compares each table's statistics with the rows it holds; when they agree
and the table was analyzed (a plain re-run), it does nothing more. When the counts disagree,
they may only be late: a live server may still hold the killed loader's counts, and an
`ANALYZE` now would have them added on top of its count later (measured: 20,000 orders showed
40,000 after the next clean restart). It cannot see those pending counts, so it writes a
transaction of its own that changes nothing (`touch`) and waits, as above, until a pass has
counted it, and with it everything committed before; then it analyzes what is still wrong.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pymysql
from sqlalchemy import Engine, text

from crm_helpers.config import sql_identifier
from crm_helpers.errors import InvalidInput, error_code

#: How long `analyze_after_load` waits for TiDB to count the loaded rows before analyzing anyway:
#: longer than the 60 to 120 s between two counting passes with TiDB's default lease.
COUNT_WAIT_SECONDS = 150.0
#: TiDB's rule for ANALYZE's sample rate: min(1, ROWS_FOR_SAMPLE_RATE / the table's row count).
ROWS_FOR_SAMPLE_RATE = 110_000
#: Privilege errors (table, column, statement): a user who may not read the statistics still
#: loads; the loader uses the same codes for a user who may not run ADMIN CHECK TABLE.
NO_PRIVILEGE_CODES = {1142, 1143, 1227, 8121}
#: The syntax error a TiDB before v8.5.7 gives for `FLUSH STATS_DELTA`.
UNKNOWN_STATEMENT_CODE = 1064


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


def last_commit_ts(cursor) -> int:
    """The commit timestamp (TSO) of the transaction `cursor`'s connection committed last."""
    return last_commit(cursor)[0]


def last_commit(cursor) -> tuple[int, str]:
    """The commit timestamp (TSO) and commit mode ("2pc", "1pc", ...) of the last transaction."""
    cursor.execute("SELECT @@tidb_last_txn_info")
    info = cursor.fetchone()[0]
    try:
        fields = json.loads(info or "{}")
        return int(fields.get("commit_ts") or 0), str(fields.get("txn_commit_mode") or "")
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"@@tidb_last_txn_info is {info!r}, not JSON with a commit_ts: "
                           "is this a TiDB?") from exc


def mark_commit(cursor, table: str, rows: int, commit_ts: int | None = None) -> WriteMark:
    """The WriteMark of a transaction of `rows` rows committed on `table`.

    By default the one `cursor`'s connection has just committed; `commit_ts` (from
    `last_commit_ts`) names one committed earlier, on any connection. The statistics row may be
    read any time after the commit: a pass in between that counted the transaction shows in it
    (`counted_in`), so a load reads it once, after its last batch, instead of after each.
    """
    committed = last_commit_ts(cursor) if commit_ts is None else commit_ts
    try:
        version, modify_count = _statistics_rows(cursor, [table]).get(table, (0, 0))
    except pymysql.err.MySQLError as exc:
        if error_code(exc) not in NO_PRIVILEGE_CODES:
            raise
        version = modify_count = None
    cursor.execute("ROLLBACK")  # end the read's transaction
    return WriteMark(committed, rows, version, modify_count)


def _statistics_rows(cursor, tables: list[str]) -> dict[str, tuple[int, int]]:
    """(version, modify_count) of each table's statistics in the cursor's database.

    Reading them needs SELECT on mysql.stats_meta, as SHOW STATS_META does.
    """
    return {name: (int(version), int(modify))
            for name, version, modify in _stats_meta(cursor, tables, "m.version, m.modify_count")}


def _stats_meta(cursor, tables: list[str], columns: str) -> list[tuple]:
    """Each table's name and `columns` of its mysql.stats_meta row, in the cursor's database."""
    placeholders = ", ".join(["%s"] * len(tables))
    cursor.execute(
        f"SELECT t.table_name, {columns} FROM information_schema.tables t "
        "JOIN mysql.stats_meta m ON m.table_id = t.tidb_table_id "
        f"WHERE t.table_schema = DATABASE() AND t.table_name IN ({placeholders})", tables)
    return list(cursor.fetchall())


def stored_counts(engine: Engine, tables: list[str]) -> dict[str, int]:
    """The row count of each of `tables` as mysql.stats_meta holds it now.

    SHOW STATS_META (`counted_rows`) shows TiDB's copy in memory, refreshed once a statistics
    lease: right after a flush it may still show the count from before.
    """
    connection = engine.raw_connection()
    try:
        counts = {name: int(count)
                  for name, count in _stats_meta(connection.cursor(), tables, "m.count")}
        connection.rollback()
    finally:
        connection.close()
    return counts


def counted_rows(engine: Engine, tables: list[str]) -> dict[str, int]:
    """The row count TiDB's statistics hold for each of `tables` in the engine's database."""
    return {name: count for name, (count, _) in _statistics_meta(engine, tables).items()}


def _statistics_meta(engine: Engine, tables: list[str]) -> dict[str, tuple[int, bool]]:
    """(row count, analyzed ever) of each of `tables` that has statistics, from SHOW STATS_META."""
    with engine.connect() as connection:
        database = connection.execute(text("SELECT DATABASE()")).scalar()
        rows = connection.execute(
            text("SHOW STATS_META WHERE Db_name = :database AND Table_name IN :names"),
            {"database": database, "names": tuple(tables)}).mappings().all()
    return {row["Table_name"]: (int(row["Row_count"]), row["Last_analyze_time"] is not None)
            for row in rows}


def stale_statistics(engine: Engine, rows: Mapping[str, int]) -> list[str]:
    """The tables of `rows` whose statistics count other than that many rows or never analyzed."""
    if not isinstance(rows, Mapping) or any(
            isinstance(count, bool) or not isinstance(count, int) or count < 0
            for count in rows.values()):
        raise InvalidInput(f"stale_statistics needs a mapping from table names to the number of "
                           f"rows each holds, got {rows!r}.")
    names = _plain_names(rows, "stale_statistics")
    meta = _statistics_meta(engine, names)
    return [name for name in names if meta.get(name) != (rows[name], True)]


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
    anyway and warns (StatisticsNotCounted) which tables' estimates may be too high. A user who
    may not read the statistics gets that warning at once, and no ANALYZE.
    """
    names = _plain_names(tables, "analyze_after_load")
    if not isinstance(marks, Mapping) or any(
            name not in names or not isinstance(mark, WriteMark) for name, mark in marks.items()):
        raise InvalidInput(
            f"analyze_after_load needs a mapping from tables among {names} to the WriteMark of "
            f"the load's last transaction on each (LoadReport.written); got {marks!r}.")
    unreadable = sorted(name for name, mark in marks.items() if mark.version is None)
    if unreadable:
        # Without the statistics rows there is no telling when TiDB has counted the load, and
        # an ANALYZE before that is doubled later; TiDB's auto-analyze will get to the tables.
        warnings.warn(
            f"This user may not read TiDB's statistics (mysql.stats_meta), so the tables "
            f"{', '.join(names)} were not analyzed after the load: TiDB's auto-analyze updates "
            "their row estimates within minutes. To analyze at once, load as a user with "
            "SELECT on mysql.stats_meta.", StatisticsNotCounted, stacklevel=2)
        return
    pending = _wait_until_counted(engine, marks, wait)
    if pending:
        warnings.warn(
            f"TiDB had not counted the rows loaded into {', '.join(sorted(pending))} after "
            f"{wait:.0f} s (it adds new rows to its statistics in the background); analyzed "
            "anyway. Its row estimates may be too high by those rows once TiDB counts them: "
            "run ANALYZE TABLE on it again in a few minutes.",
            StatisticsNotCounted, stacklevel=2)
    _analyze(engine, names, stored_counts(engine, names))


def analyze_if_stale(engine: Engine, rows: Mapping[str, int],
                     touch: Callable[[], Mapping[str, WriteMark]], *,
                     wait: float = COUNT_WAIT_SECONDS) -> list[str]:
    """ANALYZE the tables of `rows` (table: rows it holds) whose statistics are wrong; their names.

    Statistics that count those rows and come from an ANALYZE are left alone, at the cost of
    one query. Otherwise, if a count differs, `touch` must write a transaction that changes
    nothing and return its WriteMark by table; the ANALYZE waits until TiDB has counted it,
    so that no count still pending from an interrupted load lands on top of the analyzed one.
    """
    stale = stale_statistics(engine, rows)
    if not stale:
        return []
    counted = counted_rows(engine, stale)
    if any(counted.get(name) != rows[name] for name in stale):
        marks = touch()
        if not isinstance(marks, Mapping) or not marks or any(
                not isinstance(mark, WriteMark) for mark in marks.values()):
            raise InvalidInput(f"analyze_if_stale's touch must return the WriteMark of its "
                               f"transaction by table (mark_commit), not {marks!r}.")
        pending = _wait_until_counted(engine, marks, wait)
        stale = stale_statistics(engine, {name: rows[name] for name in stale})
        if pending and stale:
            warnings.warn(
                f"TiDB had not counted a write to {', '.join(sorted(pending))} after {wait:.0f} s, "
                f"so counts of an interrupted load may still be pending; analyzed "
                f"{', '.join(stale)} anyway. Their row estimates may be too high by the rows "
                "that load wrote once TiDB counts them: run ANALYZE TABLE on them again in a "
                "few minutes.", StatisticsNotCounted, stacklevel=2)
    if stale:
        _analyze(engine, stale, rows)
    return stale


def _plain_names(tables: Iterable[str], caller: str) -> list[str]:
    """The table names as a list, refused unless each is a plain identifier."""
    names = [tables] if isinstance(tables, str) else list(tables)
    if not names or any(not isinstance(name, str) or not name.isidentifier() for name in names):
        raise InvalidInput(f"{caller} needs plain table names, got {names!r}.")
    return names


def flush_counts(engine: Engine, tables: Iterable[str]) -> bool:
    """Ask TiDB to write its pending row counts of `tables` now; False if it cannot.

    `FLUSH STATS_DELTA` (TiDB v8.5.7 and later) writes the counts the TiDB serving this
    connection holds. Older TiDBs do not know the statement, and a user without SELECT on a
    table may not run it; then the counts come with TiDB's next pass, as before.
    """
    names = _plain_names(tables, "flush_counts")
    statement = "FLUSH STATS_DELTA " + ", ".join(
        sql_identifier(name, formatted=True) for name in names)
    connection = engine.raw_connection()
    try:
        connection.cursor().execute(statement)
    except pymysql.err.MySQLError as exc:
        if error_code(exc) not in {*NO_PRIVILEGE_CODES, UNKNOWN_STATEMENT_CODE}:
            raise
        return False
    finally:
        connection.close()
    return True


def _wait_until_counted(engine: Engine, marks: Mapping[str, WriteMark], wait: float) -> set[str]:
    """Wait up to `wait` seconds until TiDB has counted `marks`; the tables still not counted."""
    deadline = time.monotonic() + wait
    pending = set(marks)
    if pending:
        # This only flushes the TiDB this connection reaches; a load through other TiDBs of a
        # cluster is counted by their own passes, and the wait below still holds for it.
        flush_counts(engine, pending)
    while pending:
        pending = not_counted_yet(engine, {name: marks[name] for name in pending})
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return pending


def _analyze(engine: Engine, names: list[str], rows: Mapping[str, int]) -> None:
    """ANALYZE TABLE each named table, sampling at TiDB's own rate for the rows it holds.

    TiDB picks the rate from the row count in its memory, which it refreshes from
    mysql.stats_meta only every statistics lease: an ANALYZE right after the counts arrived
    saw 0 rows and read all 1,000,000 (rate 1, 12 s) instead of 11% of them (4 s).
    """
    with engine.begin() as connection:
        for name in names:
            held = rows.get(name, 0)
            rate = min(1.0, ROWS_FOR_SAMPLE_RATE / held) if held > 0 else 1.0
            connection.exec_driver_sql(
                f"ANALYZE TABLE {sql_identifier(name, formatted=True)} "
                f"WITH {max(rate, 1e-6):.6f} SAMPLERATE")

"""Bulk loading of DataFrames into TiDB: validated up front, in resumable whole-batch transactions.

Each batch is one `LOAD DATA LOCAL INFILE` inside its own transaction, several batches at
once on separate connections (the fastest path measured on TiDB, see `benchmarks/`). Rows
are identified by their primary key: a batch whose keys are all present already is skipped,
so re-running a load adds nothing and an interrupted load resumes from its committed batches.

Everything that can be checked before writing is (columns, dtypes, ranges, duplicate keys,
the table's own value rules, the engine's LOCAL INFILE switch), so a refusal writes nothing.
Strings travel enclosed in quotes with backslash escapes that `LOAD DATA` undoes exactly,
so any text a DataFrame holds is stored as it is (backslashes, quotes, NUL, `\\N`, emoji).

A hard kill of the local TiDB can leave a batch partly written and a table's indexes
disagreeing with its rows (see the README's "Durability"). So a load first checks the table
(`ADMIN CHECK TABLE`) and repairs its indexes, and rewrites a partly present batch whole once
its rows are shown to be this frame's. After each commit the batch's rows and index entries
are read back, which has TiDB finish writing the batch instead of doing it in the background.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real

import numpy as np
import pandas as pd
import pymysql
from pymysql.constants import CLIENT
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Enum,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

from crm_helpers.analysis.generate import (
    DEFAULT_SEED,
    default_user_count,
    generate_orders,
    generate_users,
)
from crm_helpers.analysis.progress import tqdm
from crm_helpers.analysis.statistics import (
    NO_PRIVILEGE_CODES,
    WriteMark,
    analyze_after_load,
    analyze_if_stale,
    mark_commit,
    stale_statistics,
)
from crm_helpers.config import Settings
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import (
    ConfigError,
    CrmError,
    InvalidInput,
    TableDamaged,
    TiDBConnectionError,
)
from crm_helpers.local.recovery import (
    INCONSISTENCY_CODES,
    check_table,
    error_code,
    repair_table,
)
from crm_helpers.local.server import ensure_tidb

ANALYSIS_DATABASE = "crm_analysis"
#: Rows per batch (one transaction each): about 5 MB of data, far below TiDB's 100 MB limit.
DEFAULT_BATCH_ROWS = 100_000
#: Connections loading at once; measured fastest on 2 cores (see benchmarks/bench.py).
DEFAULT_WORKERS = 3
#: Read each batch back right after its commit (see benchmarks/crash_window.py).
READ_BACK_AFTER_COMMIT = True
#: Client error codes for a connection to TiDB that broke or could not be made. 2012 is the
#: dialect's "closed the connection before the MySQL greeting": a server killed mid-handshake.
CONNECTION_LOST_CODES = {0, 2003, 2006, 2012, 2013}

analysis_metadata = MetaData()
analysis_users = Table(
    "users", analysis_metadata,
    Column("uid", Integer, primary_key=True, autoincrement=False),
    Column("name", String(50), nullable=False),
    Column("gender", Enum("Female", "Male", name="gender"), nullable=False),
)
# No database-level foreign key here: the loader checks uids before writing, and a foreign
# key would add a lookup per loaded row.
analysis_orders = Table(
    "orders", analysis_metadata,
    Column("oid", BigInteger, primary_key=True, autoincrement=False),
    Column("uid", Integer, nullable=False, index=True),
    Column("price", Double, nullable=False),
    Column("ordered_at", DateTime, nullable=False),
)
# Which generated data set the tables hold, so a resumed load never mixes two of them.
analysis_dataset = Table(
    "dataset", analysis_metadata,
    Column("name", String(20), primary_key=True),
    Column("n_orders", BigInteger, nullable=False),
    Column("n_users", BigInteger, nullable=False),
    Column("seed", BigInteger, nullable=False),
)
_PARENTS = {"orders": ("uid", analysis_users, "uid")}
# Database names go into SQL as identifiers, so only plain ones are accepted.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class InvalidFrame(InvalidInput):
    """A DataFrame that cannot be loaded into its table; nothing was written."""


class LoadFailed(CrmError):
    """TiDB rejected a batch; it was rolled back, earlier batches stay committed."""


class LocalInfileDisabled(ConfigError):
    """The engine's connections were made without LOCAL INFILE, which `load_frame` needs."""


@dataclass(frozen=True)
class LoadReport:
    """What `load_frame` did."""

    table: str
    rows: int
    loaded: int
    skipped: int
    batches: int
    seconds: float
    #: The load's last transaction on the table (None if it wrote nothing), for
    #: `analyze_after_load` to wait until TiDB has counted the load's rows.
    written: WriteMark | None = None

    @property
    def rows_per_second(self) -> float:
        return self.loaded / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (f"{self.table}: {self.loaded:,} rows loaded, {self.skipped:,} already there, "
                f"in {self.batches} batches, {self.seconds:.2f} s "
                f"({self.rows_per_second:,.0f} rows/s)")


def analysis_engine(settings: Settings | None = None,
                    database: str = ANALYSIS_DATABASE) -> Engine:
    """An engine on the analysis database (created with its tables if needed), LOCAL INFILE on."""
    if not isinstance(database, str) or not _PLAIN_NAME.match(database) or database.lower() in (
            "mysql", "information_schema", "performance_schema", "metrics_schema", "sys"):
        raise InvalidInput(f"Database name {database!r} is not usable: give 1 to 64 letters, "
                           "digits or '_', not one of TiDB's own schemas (the default is "
                           "'crm_analysis').")
    if settings is not None and not isinstance(settings, Settings):
        raise InvalidInput(f"settings must be a Settings (crm_helpers.config.load_settings()), "
                           f"not {type(settings).__name__}.")
    settings = ensure_tidb(settings)
    admin = tidb_engine(settings.url())
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    admin.dispose()
    engine = tidb_engine(settings.url(database), connect_args={"local_infile": True})
    analysis_metadata.create_all(engine)
    return engine


def reset_analysis_tables(engine: Engine) -> None:
    """Empty the analysis tables (TRUNCATE: fast, and frees the space)."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"reset_analysis_tables needs an Engine, not "
                           f"{type(engine).__name__}: pass the one analysis_engine() made.")
    _require_analysis_database(engine)
    with engine.begin() as connection:
        for table in analysis_metadata.sorted_tables:
            connection.exec_driver_sql(f"TRUNCATE TABLE `{table.name}`")


def _require_analysis_database(engine: Engine) -> None:
    """Refuse an engine on another database (e.g. the CRM's): its tables are not ours to empty."""
    with engine.connect() as connection:
        tables = set(connection.exec_driver_sql("SHOW TABLES").scalars())
    if analysis_dataset.name not in tables:
        raise InvalidInput(
            f"The engine's database {engine.url.database!r} is not an analysis database (it "
            f"has no {analysis_dataset.name!r} table), so its tables are left alone. Use the "
            "engine analysis_engine() returns.")


def load_generated(engine: Engine, n_orders: int, *, seed: int = DEFAULT_SEED,
                   batch_rows: int = DEFAULT_BATCH_ROWS, workers: int = DEFAULT_WORKERS,
                   progress: bool = True) -> tuple[LoadReport, LoadReport]:
    """Generate and load users and `n_orders` orders; resumes a load of the same data set."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"load_generated needs an Engine, not {type(engine).__name__}: "
                           "pass the one analysis_engine() made.")
    _require_analysis_database(engine)
    _check_batching(batch_rows, workers)
    n_users = default_user_count(n_orders)
    # Generated before anything is written, so bad sizes or seeds are refused up front.
    users_frame = generate_users(n_users, seed)
    orders_frame = generate_orders(n_orders, n_users, seed)
    wanted = {"name": "exploration", "n_orders": n_orders, "n_users": n_users, "seed": seed}
    with engine.begin() as connection:
        held = connection.execute(select(analysis_dataset)).mappings().first()
        if held is None:
            connection.execute(analysis_dataset.insert().values(**wanted))
        elif dict(held) != wanted:
            raise LoadFailed(
                f"The analysis tables hold another data set ({held['n_orders']:,} orders, seed "
                f"{held['seed']}); call reset_analysis_tables(engine) before loading "
                f"{n_orders:,} orders with seed {seed}.")
    users = load_frame(engine, analysis_users, users_frame,
                       batch_rows=batch_rows, workers=workers, progress=progress)
    del users_frame
    orders = load_frame(engine, analysis_orders, orders_frame,
                        batch_rows=batch_rows, workers=workers, progress=progress)
    marks = {report.table: report.written for report in (users, orders) if report.written}
    if marks:
        # Fresh statistics give the optimizer (and EXPLAIN) the real row counts at once.
        analyze_after_load(engine, ["users", "orders"], marks)
    else:
        # A re-run, or a resume after a crash that struck once every batch was in: the crash
        # may have left the statistics wrong (crm_helpers.analysis.statistics).
        _refresh_statistics(engine, [users, orders])
    return users, orders


def _refresh_statistics(engine: Engine, reports: list[LoadReport]) -> None:
    """ANALYZE the loaded tables whose statistics are wrong (e.g. after a crash)."""
    try:
        if not stale_statistics(engine, {report.table: report.rows for report in reports}):
            return  # a plain re-run: one query
    except DBAPIError as exc:
        if error_code(exc) in NO_PRIVILEGE_CODES:
            return  # a user who may not read the statistics cannot tell; the load is done
        raise
    # The load verified only its own keys; rows it does not know of count too.
    with engine.connect() as connection:
        rows = {report.table: connection.exec_driver_sql(
            f"SELECT COUNT(*) FROM `{report.table}`").scalar_one() for report in reports}
    analyze_if_stale(engine, rows, lambda: {analysis_dataset.name: _touch_dataset(engine)})


def _touch_dataset(engine: Engine) -> WriteMark:
    """Delete and re-insert the dataset row in one transaction: a write TiDB counts, no change."""
    table = analysis_dataset.name
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT name, n_orders, n_users, seed FROM {table} FOR UPDATE")
        held = cursor.fetchall()
        cursor.execute(f"DELETE FROM {table}")
        cursor.executemany(f"INSERT INTO {table} (name, n_orders, n_users, seed) "
                           "VALUES (%s, %s, %s, %s)", held)
        connection.commit()
        # TiDB counts a deleted and an inserted row as two modifications.
        return mark_commit(cursor, table, 2 * len(held))
    finally:
        connection.close()


def load_frame(engine: Engine, table: Table, frame: pd.DataFrame, *,
               batch_rows: int = DEFAULT_BATCH_ROWS, workers: int = DEFAULT_WORKERS,
               progress: bool = True) -> LoadReport:
    """Load `frame` into `table`: validate it all, then one transaction per batch, resumably.

    Batches go over `workers` connections at once: one LOAD DATA keeps TiDB only partly busy,
    and each worker writes its next CSV while the others' batches load.
    """
    table = _checked_arguments(engine, table, frame, batch_rows, workers)
    frame = validate_frame(engine, table, frame)
    _require_local_infile(engine)
    key = table.primary_key.columns.values()[0].name
    frame = frame.sort_values(key, kind="stable", ignore_index=True)
    started = time.monotonic()
    batches = [frame.iloc[start:start + batch_rows] for start in range(0, len(frame), batch_rows)]
    with tqdm(total=len(frame), unit="row", unit_scale=True, desc=f"load {table.name}",
              disable=not progress) as bar:
        _repair_if_damaged(engine, table)
        todo = _batches_to_load(engine, table, key, batches, bar)
        loaded = sum(len(batch) for batch in todo)
        try:
            written = _load_batches(engine, table, todo, workers, bar)
        except TableDamaged:
            # Index entries without rows, left by a hard kill, that the counts did not show:
            # repair, then load what is still missing.
            _repair_if_damaged(engine, table, force=True)
            bar.reset(total=len(frame))
            todo = _batches_to_load(engine, table, key, batches, bar)
            written = _load_batches(engine, table, todo, workers, bar)
    return LoadReport(table.name, len(frame), loaded, len(frame) - loaded, len(todo),
                      time.monotonic() - started, written)


def _batches_to_load(engine: Engine, table: Table, key: str, batches: list[pd.DataFrame],
                     bar: tqdm) -> list[pd.DataFrame]:
    """The batches not (wholly) in the table; a half-written one is deleted to be loaded again."""
    with engine.connect() as connection:
        present = [_rows_present(connection, table, key, batch) for batch in batches]
    if any(0 < count < len(batch) for count, batch in zip(present, batches, strict=True)):
        # Only a hard kill of the local TiDB leaves part of a batch: check the whole table.
        _repair_if_damaged(engine, table, force=True)
    todo = []
    with engine.connect() as connection:
        for batch, count in zip(batches, present, strict=True):
            if count == len(batch):
                bar.update(len(batch))
                continue
            if count:
                _remove_partial_batch(connection, table, key, batch, count)
            todo.append(batch)
    return todo


def _load_batches(engine: Engine, table: Table, batches: list[pd.DataFrame], workers: int,
                  bar: tqdm) -> WriteMark | None:
    """Load each batch in its own transaction, on up to `workers` connections at once.

    Returns the mark of the batch committed last (None if there were none).
    """
    local = threading.local()
    connections = []
    failed = threading.Event()
    lock = threading.Lock()
    last: WriteMark | None = None

    def load(batch: pd.DataFrame) -> int:
        nonlocal last
        if failed.is_set():
            return 0  # another batch failed: start no new one
        try:
            if not hasattr(local, "connection"):
                local.connection = engine.raw_connection()
                connections.append(local.connection)
            _load_batch(local.connection, table, batch)
            # The session's last write transaction is the batch (the read-back only read).
            mark = mark_commit(local.connection.cursor(), table.name, len(batch))
            with lock:
                if last is None or mark.commit_ts > last.commit_ts:
                    last = mark
        except (pymysql.err.MySQLError, DBAPIError, TiDBConnectionError) as exc:
            failed.set()
            raise _load_error(table, exc) from exc
        except BaseException:
            failed.set()
            raise
        return len(batch)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="crm-load")
    try:
        for future in as_completed([pool.submit(load, batch) for batch in batches]):
            bar.update(future.result())
    finally:
        # On an error, batches not yet started are dropped; running ones finish or roll back.
        pool.shutdown(wait=True, cancel_futures=True)
        for connection in connections:
            with contextlib.suppress(pymysql.err.MySQLError, DBAPIError):
                connection.close()
    return last


def _rows_present(connection, table: Table, key: str, batch: pd.DataFrame) -> int:
    """How many of the batch's keys the table holds (keys in sorted order)."""
    first, last = int(batch[key].iloc[0]), int(batch[key].iloc[-1])
    if last - first + 1 == len(batch):  # contiguous keys: the range holds exactly these
        conditions = [table.c[key].between(first, last)]
    else:  # gaps: rows in them are not this batch's, so count the keys themselves
        keys = batch[key].astype("int64").tolist()
        conditions = [table.c[key].in_(keys[start:start + 10_000])
                      for start in range(0, len(keys), 10_000)]
    present = sum(connection.execute(select(func.count()).select_from(table).where(condition))
                  .scalar_one() for condition in conditions)
    connection.rollback()  # end the read's transaction before LOAD DATA opens its own
    return present


def _remove_partial_batch(connection, table: Table, key: str, batch: pd.DataFrame,
                          present: int) -> None:
    """Delete a batch's rows left by a crash, once they are shown to be this batch's rows."""
    first, last = int(batch[key].iloc[0]), int(batch[key].iloc[-1])
    in_range = table.c[key].between(first, last)
    stored = pd.DataFrame(connection.execute(select(table).where(in_range).order_by(table.c[key]))
                          .mappings().all(), columns=list(batch.columns))
    expected = batch[batch[key].isin(stored[key])]
    if len(expected) != len(stored) or not _same_rows(stored, expected):
        connection.rollback()
        raise LoadFailed(
            f"{table.name} already holds {present} of the {len(batch)} rows with {key} "
            f"{first}..{last}, and they differ from this frame's: loaded by something else. "
            "Empty the table (reset_analysis_tables) and load again.")
    # A batch is one transaction, so a part of one can only be what a hard kill of the local
    # TiDB left; it is deleted and loaded again whole.
    connection.execute(table.delete().where(in_range))
    connection.commit()


def _same_rows(stored: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """True if two frames with the same columns, in the same key order, hold the same values."""
    return all(
        stored[column].astype(str).tolist() == expected[column].astype(str).tolist()
        for column in expected.columns)


def _repair_if_damaged(engine: Engine, table: Table, *, force: bool = False) -> None:
    """If the table's rows and indexes disagree, repair the indexes (or refuse to load).

    Unless `force`, ADMIN CHECK TABLE runs only when the row count and an index's entry count
    differ: counting is cheap, and every damage a kill leaves that counts cannot show also
    leaves a half-written batch or makes LOAD DATA fail, which force the check.
    """
    database = engine.url.database
    try:
        with engine.connect() as connection:
            if not force and _counts_agree(connection, table):
                return
            health = check_table(connection, database, table.name)
            connection.rollback()
    except pymysql.err.MySQLError as exc:
        if error_code(exc) in NO_PRIVILEGE_CODES:
            return  # this user may not check; a damaged table is still reported when loading
        raise
    if health.ok:
        return
    repaired = repair_table(engine, database, table.name)
    if repaired.problem:
        raise TableDamaged(
            f"{database}.{table.name} is damaged ({repaired.problem}), and repairing its "
            "indexes did not fix it. Empty it with reset_analysis_tables(engine) and load "
            "again, or start the local TiDB from empty data with `crm-tidb up --fresh`.")


def _counts_agree(connection, table: Table) -> bool:
    """True if the table has as many rows as each of its indexes has entries."""
    indexes = sorted(index.name for index in table.indexes)
    if not indexes:
        return True
    ignore = ", ".join(f"`{name}`" for name in indexes)
    rows = connection.exec_driver_sql(
        f"SELECT COUNT(*) FROM `{table.name}` IGNORE INDEX ({ignore})").scalar_one()
    for name in indexes:
        entries = connection.exec_driver_sql(
            f"SELECT COUNT(*) FROM `{table.name}` FORCE INDEX (`{name}`)").scalar_one()
        if entries != rows:
            connection.rollback()
            return False
    connection.rollback()
    return True


def _load_batch(connection, table: Table, batch: pd.DataFrame) -> None:
    """One batch as one LOAD DATA LOCAL INFILE in its own transaction; warnings roll it back."""
    handle, path = tempfile.mkstemp(suffix=".csv", prefix=f"crm-{table.name}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as csv:
            csv.write(csv_text(table, batch))
        key = table.primary_key.columns.values()[0].name
        _load_csv(connection.cursor(), table, list(batch.columns), path,
                  (int(batch[key].iloc[0]), int(batch[key].iloc[-1])))
    finally:
        os.unlink(path)


# The CSV dialect `_load_csv` declares to LOAD DATA and `csv_text` writes: fields separated
# by commas, text enclosed in double quotes with backslash escapes (for backslash, quote,
# newline, carriage return, NUL), NULL as an unquoted backslash-N. LOAD DATA undoes exactly
# these escapes, so the text arrives as the frame held it.
_CSV_DIALECT = ("FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '\\\\' "
                "LINES TERMINATED BY '\\n'")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def csv_text(table: Table, batch: pd.DataFrame) -> str:
    """`batch` as the CSV text `_load_csv` loads back exactly (one line per row)."""
    fields = []
    for column in batch.columns:
        values = batch[column]
        missing = values.isna().to_numpy()
        kind = _base_type(table.c[column].type)
        if isinstance(kind, (String, Enum)):
            text = np.array(['"' + str(value).translate(_ESCAPES) + '"' if not gone else ""
                             for value, gone in zip(values.tolist(), missing, strict=True)],
                            dtype=object)
        elif isinstance(kind, DateTime):
            unit = "us" if getattr(kind, "fsp", None) else "s"
            text = np.datetime_as_string(values.to_numpy(f"datetime64[{unit}]"), unit=unit)
        elif isinstance(kind, Float):
            text = values.to_numpy("float64", na_value=np.nan).astype(str)
        else:
            text = np.array([str(int(value)) if not gone else "" for value, gone
                             in zip(values.tolist(), missing, strict=True)], dtype=object)
        text = text.astype(object)
        text[missing] = "\\N"
        fields.append(text)
    if not fields or not len(batch):
        return ""
    return "\n".join(",".join(row) for row in zip(*fields, strict=True)) + "\n"


def _load_csv(cursor, table: Table, columns: list[str], path: str,
              key_range: tuple[int, int] | None = None) -> None:
    """LOAD DATA LOCAL INFILE of one CSV file in its own transaction, then its read-back."""
    try:
        # Optimistic: a pessimistic transaction (TiDB's default) would lock every loaded row.
        cursor.execute("BEGIN OPTIMISTIC")
        try:
            cursor.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table.name}` CHARACTER SET utf8mb4 "
                f"{_CSV_DIALECT} ({', '.join(f'`{c}`' for c in columns)})", (path,))
            # LOCAL turns bad values into warnings, so a warning means a bad batch.
            cursor.execute("SHOW WARNINGS")  # at most max_error_count (64) rows
            warnings = cursor.fetchall()
            if warnings:
                raise LoadFailed(f"TiDB warned while loading {table.name} "
                                 f"({[w[2] for w in warnings[:5]]}); the batch was rolled back.")
        except BaseException:
            _rollback_quietly(cursor)
            raise
        cursor.execute("COMMIT")
        if READ_BACK_AFTER_COMMIT and key_range is not None and _on_unistore(cursor):
            _read_back(cursor, table, key_range)
    except pymysql.err.MySQLError as exc:
        raise _load_error(table, exc) from exc


def _on_unistore(cursor) -> bool:
    """True if the server stores data in unistore (the local TiDB), asked once per connection.

    TiKV writes a commit durably, so there the read-back would only cost time.
    """
    connection = cursor.connection
    known = getattr(connection, "_crm_on_unistore", None)
    if known is None:
        cursor.execute("SELECT tidb_version()")
        known = "Store: unistore" in cursor.fetchone()[0]
        connection._crm_on_unistore = known
    return known


def _read_back(cursor, table: Table, key_range: tuple[int, int]) -> None:
    """Read the committed batch's rows and index entries, so TiDB finishes writing them."""
    key = table.primary_key.columns.values()[0].name
    for index in [None, *sorted(index.name for index in table.indexes)]:
        hint = f" USE INDEX (`{index}`)" if index else ""
        cursor.execute(f"SELECT COUNT(*) FROM `{table.name}`{hint} WHERE `{key}` BETWEEN %s AND %s",
                       key_range)
        cursor.fetchall()
    cursor.execute("ROLLBACK")  # end the read's transaction


def _rollback_quietly(cursor) -> None:
    with contextlib.suppress(pymysql.err.MySQLError):  # the connection is gone, and the
        cursor.execute("ROLLBACK")                     # transaction with it


def _load_error(table: Table, exc: Exception) -> Exception:
    """A database error during a batch as the project's error saying what to do."""
    code = error_code(exc)
    if code in INCONSISTENCY_CODES:
        return TableDamaged(
            f"TiDB found rows and index entries of {table.name} disagreeing (error {code}), "
            "as a hard kill of the local TiDB leaves them; this batch was not written. Run "
            "the same load again: it checks the table, repairs its indexes and rewrites what "
            "is missing. `crm-tidb repair` repairs every table at once.")
    if code in CONNECTION_LOST_CODES or isinstance(exc, TiDBConnectionError):
        return LoadFailed(
            f"The connection to TiDB broke while loading {table.name} (error {code}): the "
            "server stopped or was killed. Batches committed before stay. Once TiDB answers "
            "again (`crm-tidb up`), run the same load again: it resumes, and repairs what a "
            "killed server left half-written.")
    return exc


def _checked_arguments(engine: object, table: object, frame: object, batch_rows: object,
                       workers: object) -> Table:
    """The table to load into, after checking each argument's type and range."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"load_frame needs a SQLAlchemy Engine, not {type(engine).__name__}: "
                           "use analysis_engine() or tidb_engine(url, connect_args="
                           "{'local_infile': True}).")
    table = getattr(table, "__table__", table)  # an ORM class such as Order stands for its table
    if not isinstance(table, Table):
        raise InvalidInput(f"load_frame needs a Table, not {type(table).__name__}: give one "
                           "such as analysis_orders, Order or Order.__table__.")
    if not isinstance(frame, pd.DataFrame):
        raise InvalidFrame(f"load_frame needs a pandas DataFrame, not {type(frame).__name__}: "
                           "build one with pd.DataFrame({...}).")
    _check_batching(batch_rows, workers)
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or not isinstance(_base_type(keys[0].type), Integer):
        raise InvalidInput(f"load_frame resumes by primary key, so {table.name} needs a primary "
                           "key of one integer column; load other tables with pandas.to_sql.")
    return table


def _check_batching(batch_rows: object, workers: object) -> None:
    for name, value, default in (("batch_rows", batch_rows, DEFAULT_BATCH_ROWS),
                                 ("workers", workers, DEFAULT_WORKERS)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InvalidInput(f"{name} is {value!r}: give a whole number above 0 "
                               f"(default {default:_}).")


def _require_local_infile(engine: Engine) -> None:
    """Refuse, before any batch, an engine whose connections cannot send LOAD DATA LOCAL."""
    connection = engine.raw_connection()
    try:
        flags = getattr(connection.driver_connection, "client_flag", 0)
    finally:
        connection.close()
    if not flags & CLIENT.LOCAL_FILES:
        raise LocalInfileDisabled(
            "This engine's connections cannot send files to TiDB (LOAD DATA LOCAL INFILE is "
            "off in PyMySQL by default); nothing was written. Use analysis_engine(), or create "
            "the engine with tidb_engine(url, connect_args={'local_infile': True}).")


def validate_frame(engine: Engine, table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Check columns, dtypes, values, duplicate keys and parent keys; raise InvalidFrame."""
    expected = [column.name for column in table.columns]
    names = [str(name) for name in frame.columns]
    missing = [name for name in expected if name not in names]
    extra = [name for name in names if name not in expected]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if missing or extra or doubled:
        raise InvalidFrame(f"{table.name}: the frame's columns must be {expected}; "
                           f"missing {missing}, unexpected {extra}, repeated {doubled}. "
                           "Rename or drop columns to match; nothing was written.")
    frame = frame[expected]
    numbers = {column.name: _exact_floats(frame[column.name]) for column in table.columns
               if isinstance(_base_type(column.type), Float) and frame[column.name].dtype == object}
    frame = frame.assign(**{name: values for name, values in numbers.items() if values is not None})
    problems = [problem for column in table.columns
                if (problem := _column_problem(frame[column.name], column))]
    if not problems:
        problems.append(_key_problem(frame, table))
    if not any(problems):
        problems.extend(_orphans(engine, frame, *parent) for parent in _parents(table))
    problems = [problem for problem in problems if problem]
    if problems:
        raise InvalidFrame(f"{table.name}: refused before writing anything:\n- "
                           + "\n- ".join(problems)
                           + "\nFix these values in the frame (or drop the rows) and load again.")
    return frame


def _rows(mask: pd.Series | np.ndarray) -> str:
    positions = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(p) for p in positions[:10])
    return f"{len(positions)} row{'s' if len(positions) != 1 else ''} (rows {shown}" + (
        ", ...)" if len(positions) > 10 else ")")


def _base_type(kind):
    """The SQL type a column stores, seen through a TypeDecorator (e.g. models.Price)."""
    return kind.impl_instance if isinstance(kind, TypeDecorator) else kind


# Signed ranges of MySQL's integer columns; a value outside would be clipped with a warning
# in the middle of a load, so it is refused up front.
_INTEGER_BITS = [(SmallInteger, 16), (BigInteger, 64), (Integer, 32)]
# A TEXT column holds at most this many bytes of UTF-8.
_TEXT_BYTES = 65_535
# DATETIME holds years 1000 to 9999.
_DATETIME_RANGE = (pd.Timestamp("1000-01-01"), pd.Timestamp("9999-12-31 23:59:59.999999"))


def _column_problem(values: pd.Series, column: Column) -> str | None:
    """What is wrong with one column of the frame for `column`, or None."""
    name = column.name
    kind = _base_type(column.type)
    try:
        missing = values.isna().to_numpy()
    except ArithmeticError:  # e.g. Decimal('sNaN'), which cannot even be compared
        return f"column {name!r} holds values that are not numbers or text (e.g. a signaling NaN)"
    if missing.any() and not column.nullable:
        return f"column {name!r}: {_rows(missing)} have no value (the column is NOT NULL)"
    present = values[~missing]
    if isinstance(kind, Integer):
        if not pd.api.types.is_integer_dtype(values) and not (
                missing.any() and pd.api.types.is_float_dtype(values)
                and (present == present.round()).all()):
            return f"column {name!r} must hold integers, not {values.dtype}"
        bits = next(bits for kind_class, bits in _INTEGER_BITS if isinstance(kind, kind_class))
        low, high = -2 ** (bits - 1), 2 ** (bits - 1) - 1
        outside = ((values < low) | (values > high)).to_numpy() & ~missing
        if outside.any():
            return f"column {name!r}: {_rows(outside)} are outside {low}..{high}"
    elif isinstance(kind, Float):
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            example = next((value for value in values.dropna().tolist()
                            if isinstance(value, bool) or not isinstance(value, Real | Decimal)
                            or (isinstance(value, Decimal) and not value.is_finite())), None)
            shown = f" such as {example!r}" if example is not None else ""
            return (f"column {name!r} must hold numbers (int, float, or a Decimal a float "
                    f"holds exactly), not {values.dtype} values{shown}")
        numbers = values.to_numpy("float64", na_value=np.nan)
        if pd.api.types.is_integer_dtype(values):
            inexact = (numbers.astype("int64") != values.to_numpy("int64", na_value=0)) & ~missing
            if inexact.any():
                return (f"column {name!r}: {_rows(inexact)} are integers too large to be "
                        "stored exactly as floating point numbers (above 2**53)")
        bad = ~np.isfinite(numbers) & ~missing
        if name == "price":  # the CRM's rule for prices (crm_helpers.lesson.models): zero or more
            bad |= numbers < 0
        if bad.any():
            what = "negative or not finite" if name == "price" else "not finite"
            return f"column {name!r}: {_rows(bad)} are {what}"
        if not isinstance(kind, Double) and (kind.precision or 0) <= 24:
            # FLOAT is single precision: refuse what it would not give back as it was given.
            with np.errstate(over="ignore"):
                stored = numbers.astype("float32")
            too_big = np.isinf(stored) & ~missing
            if too_big.any():
                return (f"column {name!r}: {_rows(too_big)} are too large for its "
                        "single-precision FLOAT column (at most about 3.4e38): give "
                        "realistic values or load into a Double column")
            changed = (stored.astype(str).astype("float64") != numbers) & ~missing
            if changed.any():
                first = int(np.flatnonzero(changed)[0])
                return (f"column {name!r}: {_rows(changed)} cannot be stored exactly in its "
                        f"single-precision FLOAT column (e.g. {float(numbers[first])!r} would "
                        f"become {float(str(stored[first]))!r}); round them (about 7 "
                        "significant digits) or load into a Double/Numeric column")
    elif isinstance(kind, DateTime):
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return (f"column {name!r} holds times with a time zone ({values.dtype.tz}), which a "
                    "DATETIME column cannot keep: convert them to the zone you mean and drop "
                    f"it, e.g. frame[{name!r}].dt.tz_convert('UTC').dt.tz_localize(None)")
        if not pd.api.types.is_datetime64_any_dtype(values):
            return f"column {name!r} must hold datetimes, not {values.dtype}"
        outside = ((values < _DATETIME_RANGE[0]) | (values > _DATETIME_RANGE[1])).to_numpy()
        if (outside & ~missing).any():
            return (f"column {name!r}: {_rows(outside & ~missing)} are outside the years 1000 "
                    "to 9999 that DATETIME holds: fix or drop them")
        if not getattr(kind, "fsp", None) and (present != present.dt.floor("s")).any():
            fractional = (values != values.dt.floor("s")).to_numpy() & ~missing
            return (f"column {name!r}: {_rows(fractional)} have fractions of a second, which "
                    "its DATETIME column does not keep: round them first, e.g. "
                    f"frame[{name!r}].dt.floor('s')")
    elif isinstance(kind, String):  # also Enum, a String
        # Each distinct value is checked once (names and categories repeat a lot).
        distinct = pd.unique(present.to_numpy(dtype=object))
        not_text = [value for value in distinct if not isinstance(value, str)]
        if not_text:
            return (f"column {name!r} must hold text; it holds {type(not_text[0]).__name__} "
                    f"values such as {not_text[0]!r}: convert them to str first if that is "
                    "what you mean")
        if isinstance(kind, Enum) and kind.enums:
            unknown = ~values.astype(object).isin(kind.enums).to_numpy() & ~missing
            if unknown.any():
                return f"column {name!r}: {_rows(unknown)} are not one of {kind.enums}"
        unencodable = [text for text in distinct if not _is_utf8(text)]
        if unencodable:
            rows = values.isin(unencodable).to_numpy() & ~missing
            return (f"column {name!r}: {_rows(rows)} hold characters UTF-8 cannot encode (lone "
                    "surrogates); fix the text")
        if kind.length is None and kind.__visit_name__.lower() == "text":
            too_big = [text for text in distinct if len(text.encode()) > _TEXT_BYTES]
            if too_big:
                rows = values.isin(too_big).to_numpy() & ~missing
                return f"column {name!r}: {_rows(rows)} are longer than TEXT's {_TEXT_BYTES} bytes"
        too_long = [text for text in distinct if kind.length and len(text) > kind.length]
        if too_long:
            rows = values.isin(too_long).to_numpy() & ~missing
            return f"column {name!r}: {_rows(rows)} are longer than {kind.length} characters"
    else:
        return (f"column {name!r} has type {column.type!r}, which load_frame does not load; "
                "use pandas.to_sql for it")
    return _rule_problem(present, column, values.index)


def _exact_floats(values: pd.Series) -> pd.Series | None:
    """An object column of numbers (int, float, Decimal) as float64, if each converts exactly."""
    converted = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            converted.append(np.nan)
        elif isinstance(value, bool) or not isinstance(value, Real | Decimal) or (
                isinstance(value, Decimal) and not value.is_finite()):
            return None  # not numbers: _column_problem says so
        elif Decimal(repr(float(value))) != Decimal(value) and math.isfinite(float(value)):
            return None  # more digits than a float keeps: refused as not numbers
        else:
            converted.append(float(value))
    return pd.Series(converted, index=values.index, dtype="float64")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rule_problem(present: pd.Series, column: Column, index: pd.Index) -> str | None:
    """Values the table's own rules refuse: its type's bind check (e.g. models.Price)."""
    if not isinstance(column.type, TypeDecorator) or present.empty:
        return None
    refused: dict[object, str] = {}
    for value in pd.unique(present.to_numpy(dtype=object)):
        try:
            column.type.process_bind_param(
                value.item() if isinstance(value, np.generic) else value, None)
        except CrmError as exc:
            refused[value] = str(exc)
    if not refused:
        return None
    bad = index.isin(present.index[present.isin(list(refused))])
    return f"column {column.name!r}: {_rows(bad)} are refused: {next(iter(refused.values()))}"


def _key_problem(frame: pd.DataFrame, table: Table) -> str | None:
    """Duplicate keys, and 0 in an AUTO_INCREMENT key (TiDB would put a new number there)."""
    key = table.primary_key.columns.values()[0].name
    if table.autoincrement_column is not None:
        zero = (frame[key] == 0).to_numpy()
        if zero.any():
            return (f"column {key!r}: {_rows(zero)} are 0, which an AUTO_INCREMENT key "
                    "replaces by a new number; give keys from 1")
    doubled = frame[key].duplicated(keep=False).to_numpy()
    if doubled.any():
        examples = frame.loc[doubled, key].unique()[:5].tolist()
        return (f"column {key!r} is the primary key, but {_rows(doubled)} share a value "
                f"(e.g. {key} {examples}); drop the duplicates first "
                f"(frame.drop_duplicates({key!r}))")
    return None


def _parents(table: Table) -> list[tuple[str, Table, str]]:
    """(column, parent table, parent column) that the frame's keys must refer to."""
    parents = [(fk.parent.name, fk.column.table, fk.column.name) for fk in table.foreign_keys]
    if not parents and table is analysis_orders:
        parents = [_PARENTS["orders"]]
    return parents


def _orphans(engine: Engine, frame: pd.DataFrame, column: str, parent: Table,
             parent_key: str) -> str | None:
    with engine.connect() as connection:
        known = np.fromiter(connection.execute(select(parent.c[parent_key])).scalars(),
                            dtype="int64")
    values = frame[column]
    orphan = (~values.isin(known) & values.notna()).to_numpy()
    if orphan.any():
        examples = frame.loc[orphan, column].unique()[:5].tolist()
        return (f"column {column!r}: {_rows(orphan)} refer to no row of {parent.name} "
                f"(e.g. {column} {examples}); load the {parent.name} first")
    return None

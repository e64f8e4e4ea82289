"""Bulk loading of DataFrames into TiDB: validated up front, in resumable whole-batch transactions.

Each batch is one `LOAD DATA LOCAL INFILE` inside its own transaction, several batches at
once on separate connections (the fastest path measured on TiDB, see `benchmarks/`).
Everything that can be checked before writing is (`validation`: columns, dtypes, ranges,
duplicate keys, the table's own value rules; here: the engine's LOCAL INFILE switch), so a
refusal writes nothing. The CSV each batch travels as is `encoding`'s; what makes a load
resumable after an interruption or a hard kill of the local TiDB is `resume`'s, and a batch
counts as loaded only once it is on disk whole: committed in one step (1PC), or read back by
`confirm` after its COMMIT.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import pandas as pd
import pymysql
from pymysql.constants import CLIENT
from sqlalchemy import Engine, Integer, Table, inspect, select
from sqlalchemy.exc import DBAPIError

from crm_helpers.analysis.confirm import ONE_STEP_COMMIT, Confirmer
from crm_helpers.analysis.disk_space import ServerDiskWatch, cut_connections, temp_file_error
from crm_helpers.analysis.encoding import csv_bytes, load_data_statement
from crm_helpers.analysis.generate import (
    DEFAULT_SEED,
    default_user_count,
    generate_orders,
    generate_users,
)
from crm_helpers.analysis.progress import tqdm
from crm_helpers.analysis.resume import CommittedBatch, batches_to_load, repair_if_damaged
from crm_helpers.analysis.schema import (
    analysis_dataset,
    analysis_orders,
    analysis_users,
    require_analysis_database,
)
from crm_helpers.analysis.statistics import (
    NO_PRIVILEGE_CODES,
    WriteMark,
    analyze_after_load,
    analyze_if_stale,
    last_commit,
    mark_commit,
    stale_statistics,
)
from crm_helpers.analysis.validation import InvalidFrame, base_type, validate_frame
from crm_helpers.config import sql_identifier
from crm_helpers.errors import (
    INCONSISTENCY_CODES,
    ConfigError,
    InvalidInput,
    LoadFailed,
    NoSpaceLeft,
    TableDamaged,
    TiDBConnectionError,
    error_code,
)
from crm_helpers.language import Text

#: The line a load prints, in the notebook's language.
LOAD_SUMMARY = Text(
    en="{table}: {loaded:,} rows loaded, {skipped:,} already there, in {batches} batches, "
       "{seconds:.2f} s ({rate:,.0f} rows/s)",
    ja="{table}: {loaded:,} 行を読み込み、{skipped:,} 行は読み込み済み、{batches} バッチ、"
       "{seconds:.2f} s ({rate:,.0f} rows/s)")
#: The caption of a load's progress bar.
LOAD_PROGRESS = Text(en="load {table}", ja="{table} を読み込み中")

#: Rows per batch (one transaction each): about 10 MB of CSV, far below TiDB's 100 MB limit.
#: With DEFAULT_WORKERS, the fastest of six settings on 2 cores, and the only one at least as
#: fast as a plain LOAD DATA stream in every round (benchmarks/loader_settings.py).
DEFAULT_BATCH_ROWS = 200_000
#: Connections loading at once (benchmarks/loader_settings.py).
DEFAULT_WORKERS = 3
#: Client error codes for a connection to TiDB that broke or could not be made. 2012 is the
#: dialect's "closed the connection before the MySQL greeting": a server killed mid-handshake.
CONNECTION_LOST_CODES = {0, 2003, 2006, 2012, 2013}


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
        # The timing keeps one form in both languages: notebooks/sanitize.cfg replaces it.
        return LOAD_SUMMARY.format(table=self.table, loaded=self.loaded, skipped=self.skipped,
                                   batches=self.batches, seconds=self.seconds,
                                   rate=self.rows_per_second)


def load_generated(engine: Engine, n_orders: int, *, seed: int = DEFAULT_SEED,
                   batch_rows: int = DEFAULT_BATCH_ROWS, workers: int = DEFAULT_WORKERS,
                   progress: bool = True) -> tuple[LoadReport, LoadReport]:
    """Generate and load users and `n_orders` orders; resumes a load of the same data set."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"load_generated needs an Engine, not {type(engine).__name__}: "
                           "pass the one analysis_engine() made.")
    require_analysis_database(engine)
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
            f"SELECT COUNT(*) FROM {sql_identifier(report.table, formatted=True)}").scalar_one()
            for report in reports}
    analyze_if_stale(engine, rows, lambda: {analysis_dataset.name: _touch_dataset(engine)})


def _touch_dataset(engine: Engine) -> WriteMark:
    """Delete and re-insert the dataset row in one transaction: a write TiDB counts, no change."""
    table = sql_identifier(analysis_dataset.name, formatted=True)
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
        return mark_commit(cursor, analysis_dataset.name, 2 * len(held))
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
    _require_table(engine, table)
    key = table.primary_key.columns.values()[0].name
    frame = frame.sort_values(key, kind="stable", ignore_index=True)
    started = time.monotonic()
    batches = [frame.iloc[start:start + batch_rows] for start in range(0, len(frame), batch_rows)]
    with tqdm(total=len(frame), unit="row", unit_scale=True,
              desc=LOAD_PROGRESS.format(table=table.name), disable=not progress) as bar:
        repair_if_damaged(engine, table)
        todo = batches_to_load(engine, table, key, batches, bar)
        loaded = sum(len(batch) for batch in todo)
        try:
            written = _load_batches(engine, table, todo, workers, bar)
        except TableDamaged:
            # Index entries without rows, left by a hard kill, that the counts did not show:
            # repair, then load what is still missing.
            repair_if_damaged(engine, table, force=True)
            bar.reset(total=len(frame))
            todo = batches_to_load(engine, table, key, batches, bar)
            written = _load_batches(engine, table, todo, workers, bar)
    return LoadReport(table.name, len(frame), loaded, len(frame) - loaded, len(todo),
                      time.monotonic() - started, written)


def _load_batches(engine: Engine, table: Table, batches: list[pd.DataFrame], workers: int,
                  bar: tqdm) -> WriteMark | None:
    """Load each batch in its own transaction, on up to `workers` connections at once.

    A batch counts as loaded once it is on disk whole: committed in one step (1PC), or read
    back by `Confirmer` after its COMMIT.
    Returns the mark of the batch committed last (None if there were none).
    """
    local = threading.local()
    connections: list = []
    failed = threading.Event()
    lock = threading.Lock()
    last: CommittedBatch | None = None
    key = table.primary_key.columns.values()[0].name
    # The local TiDB's store never answers a write once its disk is full: the watch cuts the
    # connections as soon as its log says so, and the error below says what happened.
    disk = ServerDiskWatch(engine, table.name)

    def disk_full() -> None:
        failed.set()
        cut_connections(connections)

    def done(batch: CommittedBatch) -> None:
        nonlocal last
        with lock:
            if last is None or batch.commit_ts > last.commit_ts:
                last = batch
            bar.update(batch.rows)

    def load(batch: pd.DataFrame) -> None:
        if failed.is_set() or confirmer.error is not None:
            return  # another batch or a read-back failed: start no new one
        try:
            if not hasattr(local, "connection"):
                local.connection = engine.raw_connection()
                connections.append(local.connection)
            _load_batch(local.connection, table, batch)
            # The session's last write transaction is the batch.
            committed, mode = last_commit(cursor := local.connection.cursor())
            cursor.execute("ROLLBACK")  # end the read's transaction
            confirmer.committed(CommittedBatch(int(batch[key].iloc[0]), int(batch[key].iloc[-1]),
                                               len(batch), committed),
                                in_one_step=mode == ONE_STEP_COMMIT)
        except BaseException as exc:
            failed.set()
            _raise_batch_error(disk, table, exc)

    confirmer = Confirmer(engine, table, done, connections)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="crm-load")
    disk.start(disk_full)
    try:
        try:
            confirmer.start()
        except BaseException as exc:
            _raise_batch_error(disk, table, exc)
        try:
            for future in as_completed([pool.submit(load, batch) for batch in batches]):
                future.result()
        finally:
            # On an error, batches not yet started are dropped; running ones finish or roll
            # back; those committed are still read back, so they count as loaded.
            pool.shutdown(wait=True, cancel_futures=True)
            confirmer.finish()
        if confirmer.error is not None:
            _raise_batch_error(disk, table, confirmer.error)
        if last is None:
            return None
        # One read of the statistics row for the whole load, after its last commit.
        connection = engine.raw_connection()
        connections.append(connection)
        try:
            return mark_commit(connection.cursor(), table.name, last.rows, last.commit_ts)
        except BaseException as exc:
            _raise_batch_error(disk, table, exc)
    finally:
        disk.stop()
        broken = failed.is_set() or confirmer.error is not None
        for connection in connections:
            _release(connection, broken)


def _release(connection, broken: bool) -> None:
    """Give a load's connection back to the pool, or discard it after a failed load.

    After a failure a connection may be cut (the disk watch), dead (a killed server) or inside
    a transaction: given back, the pool's reset (a ROLLBACK) would fail on it and log an
    "Exception during reset" traceback. Discarded, the pool opens a new one when needed.
    """
    with contextlib.suppress(pymysql.err.MySQLError, DBAPIError):
        if broken:
            connection.invalidate()
        else:
            connection.close()


def _raise_batch_error(disk: ServerDiskWatch, table: Table, exc: BaseException) -> NoReturn:
    """Raise what says best what happened to `exc`, met while loading or reading back a batch."""
    better = None
    if isinstance(exc, pymysql.err.MySQLError | DBAPIError | TiDBConnectionError):
        better = disk.error(exc) or _load_error(table, exc)
    elif isinstance(exc, LoadFailed) and not isinstance(exc, NoSpaceLeft):
        better = disk.error(exc)
    if better is None or better is exc:
        raise exc
    raise better from exc


def _load_batch(connection, table: Table, batch: pd.DataFrame) -> None:
    """One batch as one LOAD DATA LOCAL INFILE in its own transaction; warnings roll it back."""
    try:
        handle, path = tempfile.mkstemp(suffix=".csv", prefix=f"crm-{table.name}-")
    except OSError as exc:
        raise temp_file_error(table.name, len(batch), exc) from exc
    try:
        try:
            with os.fdopen(handle, "wb") as csv:
                csv.write(csv_bytes(table, batch))
        except OSError as exc:
            raise temp_file_error(table.name, len(batch), exc) from exc
        _load_csv(connection.cursor(), table, list(batch.columns), path)
    finally:
        os.unlink(path)


def _load_csv(cursor, table: Table, columns: list[str], path: str) -> None:
    """LOAD DATA LOCAL INFILE of one CSV file in its own transaction."""
    try:
        # Optimistic: a pessimistic transaction (TiDB's default) would lock every loaded row.
        cursor.execute("BEGIN OPTIMISTIC")
        try:
            cursor.execute(load_data_statement(table, columns), (path,))
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
    except pymysql.err.MySQLError as exc:
        raise _load_error(table, exc) from exc


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
    if len(keys) != 1 or not isinstance(base_type(keys[0].type), Integer):
        raise InvalidInput(f"load_frame resumes by primary key, so {table.name} needs a primary "
                           "key of one integer column; load other tables with pandas.to_sql.")
    return table


def _check_batching(batch_rows: object, workers: object) -> None:
    for name, value, default in (("batch_rows", batch_rows, DEFAULT_BATCH_ROWS),
                                 ("workers", workers, DEFAULT_WORKERS)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InvalidInput(f"{name} is {value!r}: give a whole number above 0 "
                               f"(default {default:_}).")


def _require_table(engine: Engine, table: Table) -> None:
    """Refuse, before any batch, a table the engine's database does not have."""
    with engine.connect() as connection:
        present = inspect(connection).has_table(table.name, schema=table.schema)
    if not present:
        raise InvalidInput(
            f"The table {table.name!r} does not exist in the database "
            f"{table.schema or engine.url.database!r}; nothing was written. Create it first, "
            "e.g. table.metadata.create_all(engine), or check the engine's database.")


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

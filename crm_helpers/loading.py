"""Bulk loading of DataFrames into TiDB: validated up front, in resumable whole-batch transactions.

Each batch is one `LOAD DATA LOCAL INFILE` inside its own transaction, several batches at
once on separate connections (the fastest path measured on TiDB, see `benchmarks/`). Rows
are identified by their primary key: a batch whose keys are all present already is skipped,
so re-running a load adds nothing and an interrupted load resumes from its committed batches.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from tqdm.auto import tqdm

from crm_helpers.config import Settings
from crm_helpers.db import tidb_engine
from crm_helpers.errors import CrmError, InvalidInput
from crm_helpers.generate import (
    DEFAULT_SEED,
    default_user_count,
    generate_orders,
    generate_users,
)
from crm_helpers.server import ensure_tidb

ANALYSIS_DATABASE = "crm_analysis"
#: Rows per batch (one transaction each): about 5 MB of data, far below TiDB's 100 MB limit.
DEFAULT_BATCH_ROWS = 100_000
#: Connections loading at once; measured fastest on 2 cores (see benchmarks/bench.py).
DEFAULT_WORKERS = 3

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


class InvalidFrame(InvalidInput):
    """A DataFrame that cannot be loaded into its table; nothing was written."""


class LoadFailed(CrmError):
    """TiDB rejected a batch; it was rolled back, earlier batches stay committed."""


@dataclass(frozen=True)
class LoadReport:
    """What `load_frame` did."""

    table: str
    rows: int
    loaded: int
    skipped: int
    batches: int
    seconds: float

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
    with engine.begin() as connection:
        for table in analysis_metadata.sorted_tables:
            connection.exec_driver_sql(f"TRUNCATE TABLE `{table.name}`")


def load_generated(engine: Engine, n_orders: int, *, seed: int = DEFAULT_SEED,
                   batch_rows: int = DEFAULT_BATCH_ROWS, workers: int = DEFAULT_WORKERS,
                   progress: bool = True) -> tuple[LoadReport, LoadReport]:
    """Generate and load users and `n_orders` orders; resumes a load of the same data set."""
    n_users = default_user_count(n_orders)
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
    users = load_frame(engine, analysis_users, generate_users(n_users, seed),
                       batch_rows=batch_rows, workers=workers, progress=progress)
    orders = load_frame(engine, analysis_orders, generate_orders(n_orders, n_users, seed),
                        batch_rows=batch_rows, workers=workers, progress=progress)
    if users.loaded or orders.loaded:
        # Fresh statistics give the optimizer (and EXPLAIN) the real row counts at once.
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE TABLE users, orders")
    return users, orders


def load_frame(engine: Engine, table: Table, frame: pd.DataFrame, *,
               batch_rows: int = DEFAULT_BATCH_ROWS, workers: int = DEFAULT_WORKERS,
               progress: bool = True) -> LoadReport:
    """Load `frame` into `table`: validate it all, then one transaction per batch, resumably.

    Batches go over `workers` connections at once: one LOAD DATA keeps TiDB only partly busy,
    and each worker writes its next CSV while the others' batches load.
    """
    frame = validate_frame(engine, table, frame)
    key = table.primary_key.columns.values()[0].name
    frame = frame.sort_values(key, kind="stable", ignore_index=True)
    started = time.monotonic()
    batches = [frame.iloc[start:start + batch_rows] for start in range(0, len(frame), batch_rows)]
    with tqdm(total=len(frame), unit="row", unit_scale=True, desc=f"load {table.name}",
              disable=not progress) as bar:
        with engine.connect() as connection:
            todo = []
            for batch in batches:
                if _batch_is_loaded(connection, table, key, batch):
                    bar.update(len(batch))
                else:
                    todo.append(batch)
        _load_batches(engine, table, todo, workers, bar)
    loaded = sum(len(batch) for batch in todo)
    return LoadReport(table.name, len(frame), loaded, len(frame) - loaded, len(todo),
                      time.monotonic() - started)


def _load_batches(engine: Engine, table: Table, batches: list[pd.DataFrame], workers: int,
                  bar: tqdm) -> None:
    """Load each batch in its own transaction, on up to `workers` connections at once."""
    local = threading.local()
    connections = []
    failed = threading.Event()

    def load(batch: pd.DataFrame) -> int:
        if failed.is_set():
            return 0  # another batch failed: start no new one
        if not hasattr(local, "connection"):
            local.connection = engine.raw_connection()
            connections.append(local.connection)
        try:
            _load_batch(local.connection, table, batch)
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
            connection.close()


def _batch_is_loaded(connection, table: Table, key: str, batch: pd.DataFrame) -> bool:
    """True if all the batch's keys are present, False if none are; refuses a mix."""
    first, last = int(batch[key].iloc[0]), int(batch[key].iloc[-1])
    statement = select(func.count()).select_from(table).where(table.c[key].between(first, last))
    present = connection.execute(statement).scalar_one()
    connection.rollback()  # end the read's transaction before LOAD DATA opens its own
    if present and present != len(batch):
        raise LoadFailed(
            f"{table.name} already holds {present} of the {len(batch)} rows with {key} "
            f"{first}..{last}, loaded by something else. Empty the table "
            "(reset_analysis_tables) and load again.")
    return present == len(batch)


def _load_batch(connection, table: Table, batch: pd.DataFrame) -> None:
    """One batch as one LOAD DATA LOCAL INFILE in its own transaction; warnings roll it back."""
    handle, path = tempfile.mkstemp(suffix=".csv", prefix=f"crm-{table.name}-")
    try:
        with os.fdopen(handle, "w", newline="") as csv:
            batch.to_csv(csv, header=False, index=False, lineterminator="\n",
                         date_format="%Y-%m-%d %H:%M:%S")
        _load_csv(connection.cursor(), table, list(batch.columns), path)
    finally:
        os.unlink(path)


def _load_csv(cursor, table: Table, columns: list[str], path: str) -> None:
    """LOAD DATA LOCAL INFILE of one CSV file in its own transaction."""
    # Optimistic: a pessimistic transaction (TiDB's default) would lock every loaded row.
    cursor.execute("BEGIN OPTIMISTIC")
    try:
        cursor.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table.name}` CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
            f"LINES TERMINATED BY '\\n' ({', '.join(f'`{c}`' for c in columns)})", (path,))
        # LOCAL turns bad values into warnings, so a warning means a bad batch.
        cursor.execute("SHOW WARNINGS")  # at most max_error_count (64) rows
        warnings = cursor.fetchall()
        if warnings:
            raise LoadFailed(f"TiDB warned while loading {table.name} "
                             f"({[w[2] for w in warnings[:5]]}); the batch was rolled back.")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    cursor.execute("COMMIT")


def validate_frame(engine: Engine, table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Check columns, dtypes, missing values, prices and parent keys; raise InvalidFrame."""
    expected = [column.name for column in table.columns]
    missing = [name for name in expected if name not in frame.columns]
    extra = [name for name in frame.columns if name not in expected]
    if missing or extra:
        raise InvalidFrame(f"{table.name}: the frame's columns must be {expected}; "
                           f"missing {missing}, unexpected {extra}. Nothing was written.")
    frame = frame[expected]
    problems = [problem for column in table.columns
                if (problem := _column_problem(frame[column.name], column))]
    if table.name in _PARENTS and not problems:
        problems.append(_orphans(engine, frame, *_PARENTS[table.name]))
    problems = [problem for problem in problems if problem]
    if problems:
        raise InvalidFrame(f"{table.name}: refused before writing anything:\n- "
                           + "\n- ".join(problems))
    return frame


def _rows(mask: pd.Series) -> str:
    positions = np.flatnonzero(mask.to_numpy())
    shown = ", ".join(str(p) for p in positions[:10])
    return f"{len(positions)} row{'s' if len(positions) != 1 else ''} (rows {shown}" + (
        ", ...)" if len(positions) > 10 else ")")


def _column_problem(values: pd.Series, column: Column) -> str | None:
    name = column.name
    kind = column.type
    if values.isna().any():
        return f"column {name!r}: {_rows(values.isna())} have no value"
    if isinstance(kind, Integer) and not pd.api.types.is_integer_dtype(values):
        return f"column {name!r} must hold integers, not {values.dtype}"
    if isinstance(kind, Double):
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            return f"column {name!r} must hold numbers, not {values.dtype}"
        bad = ~np.isfinite(values.to_numpy(dtype="float64")) | (values < 0)
        if bad.any():
            return f"column {name!r}: {_rows(bad)} are negative or not finite"
    if isinstance(kind, DateTime) and not pd.api.types.is_datetime64_any_dtype(values):
        return f"column {name!r} must hold datetimes, not {values.dtype}"
    if isinstance(kind, Enum):
        unknown = ~values.astype("str").isin(kind.enums)
        if unknown.any():
            return f"column {name!r}: {_rows(unknown)} are not one of {kind.enums}"
    if isinstance(kind, String) and kind.length:
        too_long = values.astype("str").str.len() > kind.length
        if too_long.any():
            return f"column {name!r}: {_rows(too_long)} are longer than {kind.length} characters"
    return None


def _orphans(engine: Engine, frame: pd.DataFrame, column: str, parent: Table,
             parent_key: str) -> str | None:
    with engine.connect() as connection:
        known = np.fromiter(connection.execute(select(parent.c[parent_key])).scalars(),
                            dtype="int64")
    orphan = ~frame[column].isin(known)
    if orphan.any():
        examples = frame.loc[orphan, column].unique()[:5].tolist()
        return (f"column {column!r}: {_rows(orphan)} refer to no row of {parent.name} "
                f"(e.g. {column} {examples}); load the {parent.name} first")
    return None

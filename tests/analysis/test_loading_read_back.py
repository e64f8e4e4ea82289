"""Batches count as loaded once on disk whole: committed in one step (1PC), or read back.

A batch committed in two phases is read back on a second connection after its COMMIT; the
tests of that path turn 1PC off for the load's connections, as on a TiDB without it.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Integer,
    MetaData,
    Table,
    event,
    select,
)
from sqlalchemy.dialects.mysql import DATETIME

from crm_helpers.analysis import confirm, loader, resume, statistics
from crm_helpers.analysis.disk_space import cut_connections
from crm_helpers.analysis.generate import generate_orders
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.reading import read_frame
from crm_helpers.analysis.resume import CommittedBatch
from crm_helpers.analysis.schema import (
    analysis_orders,
)
from crm_helpers.errors import LoadFailed, TableDamaged
from tests.conftest import analysis_database_with, fresh_analysis_engine

N_USERS = 300

numbers_metadata = MetaData()
numbers = Table(
    "numbers", numbers_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=True, index=True),
    Column("value", Double, nullable=True),
    Column("at", DateTime, nullable=True),
    Column("at_us", DATETIME(fsp=6), nullable=True),
)


@pytest.fixture(scope="module")
def database(tidb_settings):
    with analysis_database_with(tidb_settings, "crm_pytest_read_back", numbers_metadata) as name:
        yield name


@pytest.fixture
def engine_with_users(tidb_settings, database):
    """An analysis engine on the module's database: empty tables but N_USERS users."""
    with fresh_analysis_engine(tidb_settings, database, emptied=("numbers",),
                               users=N_USERS) as engine:
        yield engine


def commit_in_one_step(engine: Engine, allowed: bool) -> Engine:
    """`engine`, whose new connections may commit in one step (1PC) or must not."""
    def set_one_pc(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET SESSION tidb_enable_1pc = {'ON' if allowed else 'OFF'}")

    event.listen(engine, "connect", set_one_pc)
    engine.dispose()  # connections made before are gone
    return engine


class RecordingBar:
    """A stand-in for the progress bar that checks each update against what was read back."""

    def __init__(self, read_back_rows, **_) -> None:
        self.read_back_rows = read_back_rows
        self.counted = 0
        self.too_early: list[int] = []

    def __enter__(self):
        return self

    def __exit__(self, *_) -> None:
        return None

    def update(self, rows: int) -> None:
        self.counted += rows
        if self.counted > self.read_back_rows():
            self.too_early.append(self.counted)

    def reset(self, total: int) -> None:
        self.counted = 0


def test_every_batch_counts_as_loaded_only_after_its_read_back(engine_with_users, monkeypatch):
    read: list[tuple[int, int]] = []
    read_through_indexes: list[tuple[int, int]] = []
    lock = threading.Lock()
    real_read_back = confirm.read_back

    def recording_read_back(cursor, table, batches, through_indexes=True):
        real_read_back(cursor, table, batches, through_indexes=through_indexes)
        with lock:
            ranges = [(batch.first, batch.last) for batch in batches]
            (read_through_indexes if through_indexes else read).extend(ranges)

    bars: list[RecordingBar] = []

    def bar(**options):
        made = RecordingBar(lambda: sum(last - first + 1 for first, last in read), **options)
        bars.append(made)
        return made

    monkeypatch.setattr(confirm, "read_back", recording_read_back)
    monkeypatch.setattr(loader, "tqdm", bar)
    orders = generate_orders(9_000, N_USERS)
    engine = commit_in_one_step(engine_with_users, False)
    report = load_frame(engine, analysis_orders, orders, batch_rows=1_000, workers=3)
    every_batch = [(start, start + 999) for start in range(1, 9_001, 1_000)]
    assert sorted(read) == every_batch
    assert sorted(read_through_indexes) == every_batch  # once loading was over
    assert bars[0].counted == report.loaded == 9_000
    assert bars[0].too_early == []


def test_a_batch_committed_in_one_step_counts_as_loaded_without_a_read_back(engine_with_users,
                                                                           monkeypatch):
    # 100 orders fit in one commit batch even with TiDB's default 16 KB: 1PC on any TiDB.
    calls = []
    modes = []
    real_last_commit = loader.last_commit

    def recording_last_commit(cursor):
        committed = real_last_commit(cursor)
        modes.append(committed[1])
        return committed

    monkeypatch.setattr(confirm, "read_back", lambda *args, **options: calls.append(args))
    monkeypatch.setattr(loader, "last_commit", recording_last_commit)
    engine = commit_in_one_step(engine_with_users, True)
    report = load_frame(engine, analysis_orders, generate_orders(1_000, N_USERS),
                        batch_rows=100, workers=3, progress=False)
    assert modes == [confirm.ONE_STEP_COMMIT] * 10
    assert calls == []
    assert report.loaded == 1_000 and report.written.rows == 100
    stored = read_frame(engine, "SELECT oid FROM orders ORDER BY oid")["oid"].tolist()
    assert stored == list(range(1, 1_001))


def test_without_the_read_back_nothing_is_read(engine_with_users, monkeypatch):
    calls = []
    monkeypatch.setattr(confirm, "read_back", lambda *args: calls.append(args))
    monkeypatch.setattr(resume, "READ_BACK_AFTER_COMMIT", False)
    report = load_frame(engine_with_users, analysis_orders, generate_orders(3_000, N_USERS),
                        batch_rows=1_000, progress=False)
    assert (report.loaded, calls) == (3_000, [])


def test_a_read_back_that_finds_rows_missing_says_the_table_is_damaged(engine_with_users):
    load_frame(engine_with_users, analysis_orders, generate_orders(2_000, N_USERS),
               batch_rows=1_000,
               progress=False)
    connection = engine_with_users.raw_connection()
    try:
        cursor = connection.cursor()
        resume.read_back(cursor, analysis_orders, [CommittedBatch(1, 1_000, 1_000, 0),
                                                   CommittedBatch(1_001, 2_000, 1_000, 0)])
        with pytest.raises(TableDamaged, match=r"holds 2,000 rows where 2,001 were"):
            resume.read_back(cursor, analysis_orders,
                             [CommittedBatch(1, 1_000, 1_000, 0),
                              CommittedBatch(1_001, 2_001, 1_001, 0)])
    finally:
        connection.close()


def test_a_failing_read_back_stops_the_load_and_a_rerun_ends_exact(engine_with_users, monkeypatch):
    real_read_back = confirm.read_back
    calls = []

    def failing_second(cursor, table, batches, **options):
        calls.append(len(batches))
        if len(calls) == 2:
            raise TableDamaged("the read-back found rows missing")
        real_read_back(cursor, table, batches, **options)

    monkeypatch.setattr(confirm, "read_back", failing_second)
    orders = generate_orders(20_000, N_USERS)
    engine = commit_in_one_step(engine_with_users, False)
    # load_frame repairs and loads what is missing after TableDamaged: here nothing is.
    report = load_frame(engine, analysis_orders, orders, batch_rows=1_000, workers=1,
                        progress=False)
    stored = read_frame(engine, "SELECT oid FROM orders ORDER BY oid")["oid"].tolist()
    assert stored == list(range(1, 20_001))
    assert report.rows == 20_000 and len(calls) >= 2


def test_numbers_and_times_round_trip_exactly(engine_with_users):
    rng = np.random.default_rng(15)
    n = 5_000
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    values[:6] = [5e-324, 1.7976931348623157e308, -2.2250738585072014e-308, 0.1, 0.0, np.nan]
    counts = pd.array(rng.integers(-2**31, 2**31, n), dtype="Int64")
    counts[[1, 7]] = pd.NA
    at = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 10**9, n), unit="s")
    at_us = at + pd.to_timedelta(rng.integers(0, 10**6, n), unit="us")
    frame = pd.DataFrame({"id": np.arange(1, n + 1, dtype="int64"), "count": counts,
                          "value": values, "at": at, "at_us": at_us})
    frame.loc[[2, 9], "at"] = pd.NaT
    frame.loc[[3], "at_us"] = pd.NaT
    frame.loc[0, "id"] = -2**63
    frame.loc[n - 1, "id"] = 2**63 - 1
    load_frame(engine_with_users, numbers, frame, batch_rows=700, progress=False)
    with engine_with_users.connect() as connection:
        stored = pd.DataFrame(connection.execute(select(numbers).order_by(numbers.c.id)).all(),
                              columns=list(frame.columns))
    expected = frame.sort_values("id", ignore_index=True)
    assert stored["id"].tolist() == expected["id"].tolist()
    assert [None if pd.isna(c) else int(c) for c in stored["count"]] == \
        [None if pd.isna(c) else int(c) for c in expected["count"]]
    given, back = expected["value"].to_numpy(), stored["value"].to_numpy("float64", na_value=np.nan)
    assert np.array_equal(given, back, equal_nan=True)
    for column in ("at", "at_us"):
        assert [None if pd.isna(t) else pd.Timestamp(t) for t in stored[column]] == \
            [None if pd.isna(t) else t for t in expected[column]]


def test_a_load_cut_off_leaves_no_reset_tracebacks(engine_with_users, monkeypatch, caplog):
    # What the disk watch does to every connection of the load when the server's disk fills.
    original = loader._load_batch

    def cut_then_load(connection, table, batch):
        cut_connections([connection])
        original(connection, table, batch)

    monkeypatch.setattr(loader, "_load_batch", cut_then_load)
    with caplog.at_level(logging.WARNING), \
            pytest.raises(LoadFailed, match="connection to TiDB broke"):
        load_frame(engine_with_users, analysis_orders, generate_orders(5_000, N_USERS),
                   batch_rows=1_000, progress=False)
    # Given back to the pool, a cut connection failed its reset (a ROLLBACK) with a traceback.
    assert not [record for record in caplog.records
                if "Exception during reset" in record.getMessage()]
    monkeypatch.setattr(loader, "_load_batch", original)
    report = load_frame(engine_with_users, analysis_orders, generate_orders(5_000, N_USERS),
                        batch_rows=1_000, progress=False)
    assert report.loaded + report.skipped == 5_000


def test_the_statistics_row_is_read_once_per_load_after_its_last_commit(engine_with_users,
                                                                       monkeypatch):
    real_rows = statistics._statistics_rows
    reads = []

    def recording_rows(cursor, tables):
        reads.append(list(tables))
        return real_rows(cursor, tables)

    monkeypatch.setattr(statistics, "_statistics_rows", recording_rows)
    report = load_frame(engine_with_users, analysis_orders, generate_orders(5_000, N_USERS),
                        batch_rows=1_000, workers=2, progress=False)
    assert reads == [["orders"]]
    with engine_with_users.connect() as connection:
        connection.exec_driver_sql("BEGIN")  # TIDB_CURRENT_TSO() is 0 outside a transaction
        now = connection.exec_driver_sql("SELECT TIDB_CURRENT_TSO()").scalar_one()
    # The mark is the load's latest commit: a batch of 1,000 rows, before now.
    assert report.written.rows == 1_000
    assert 0 < report.written.commit_ts < int(now)
    assert report.written.version is not None


def test_touching_key_ranges_are_read_as_one():
    batches = [CommittedBatch(2_001, 3_000, 1_000, 0), CommittedBatch(1, 1_000, 1_000, 0),
               CommittedBatch(1_001, 2_000, 1_000, 0), CommittedBatch(3_002, 3_010, 9, 0)]
    assert resume._joined_ranges(batches) == [(1, 3_000), (3_002, 3_010)]

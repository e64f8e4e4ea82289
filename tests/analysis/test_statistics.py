"""ANALYZE after a bulk load keeps the true row count (TiDB adds late-counted rows on top)."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator

import pytest

from crm_helpers.analysis.statistics import (
    StatisticsNotCounted,
    WriteMark,
    analyze_after_load,
    analyze_if_stale,
    counted_rows,
    flush_counts,
    mark_commit,
    not_counted_yet,
    stale_statistics,
)
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import InvalidInput
from crm_helpers.local.server import LocalTiDB, start_local_tidb, stop_local_tidb
from tests.conftest import spare_tidb

ROWS = 3000
#: The first TiDB release with FLUSH STATS_DELTA.
FLUSH_STATS_DELTA_SINCE = (8, 5, 7)
TSO = 470623416884396032  # a commit TSO of TiDB's, from @@tidb_last_txn_info


def fill(engine, table: str, first: int, rows: int) -> WriteMark:
    """Insert rows `first`.. in one transaction, as a load's batch; its mark."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s)",
                           [(i, i % 7) for i in range(first, first + rows)])
        connection.commit()
        return mark_commit(cursor, table, rows)
    finally:
        connection.close()


@pytest.fixture
def server(tmp_path) -> Iterator[LocalTiDB]:
    """A throwaway local TiDB: a clean restart makes it write every count it still holds."""
    with spare_tidb(tmp_path / "tidb") as local:
        yield local


@pytest.mark.lifecycle
def test_analyze_after_load_waits_for_the_counts_and_keeps_the_true_row_count(server):
    admin = tidb_engine(server.url())
    with admin.begin() as connection:
        connection.exec_driver_sql("CREATE DATABASE probe")
    admin.dispose()
    engine = tidb_engine(server.url("probe"))
    with engine.begin() as connection:
        # A new table: TiDB adds its statistics row a moment later, at a TSO after the rows'
        # commits, without counting them.
        connection.exec_driver_sql("CREATE TABLE stats_probe (id INT PRIMARY KEY, v INT)")
    fill(engine, "stats_probe", 0, ROWS // 2)  # an earlier load, not counted yet either
    last = fill(engine, "stats_probe", ROWS // 2, ROWS - ROWS // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticsNotCounted)
        analyze_after_load(engine, ["stats_probe"], {"stats_probe": last})
    engine.dispose()
    # A clean stop writes the counts TiDB still held: any the ANALYZE came before would be
    # added on top of its count now.
    stop_local_tidb(server)
    start_local_tidb(server)
    engine = tidb_engine(server.url("probe"))
    assert counted_rows(engine, ["stats_probe"]) == {"stats_probe": ROWS}
    with engine.connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN SELECT * FROM stats_probe").mappings().all()
    assert float(plan[-1]["estRows"]) == ROWS
    engine.dispose()


def test_analyze_after_load_warns_when_tidb_has_not_counted_the_rows(scratch_engine):
    with scratch_engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS stats_late")
        connection.exec_driver_sql("CREATE TABLE stats_late (id INT PRIMARY KEY, v INT)")
    mark = fill(scratch_engine, "stats_late", 0, 10)
    # As if committed an hour from now: no counting pass can have come after it yet.
    later = WriteMark(mark.commit_ts + ((3600 * 1000) << 18), 10, 0, 0)
    with pytest.warns(StatisticsNotCounted, match="stats_late.*analyzed anyway"):
        analyze_after_load(scratch_engine, ["stats_late"], {"stats_late": later}, wait=1)
    with scratch_engine.connect() as connection:
        analyzed = connection.exec_driver_sql(
            "SHOW STATS_META WHERE Table_name = 'stats_late'").mappings().one()
    assert analyzed["Last_analyze_time"] is not None


def test_flush_counts_writes_the_pending_counts_at_once(scratch_engine):
    with scratch_engine.connect() as connection:
        version = connection.dialect.tidb_version
    if version is None or version < FLUSH_STATS_DELTA_SINCE:
        pytest.skip(f"TiDB {version} has no FLUSH STATS_DELTA; the wait covers it")
    fresh_table(scratch_engine, "stats_flush", analyzed=False)
    mark = fill(scratch_engine, "stats_flush", 0, 10)
    assert flush_counts(scratch_engine, ["stats_flush"]) is True
    # TiDB's own pass comes every 10 to 70 s; only the flush counts the rows this soon.
    assert not_counted_yet(scratch_engine, {"stats_flush": mark}) == set()


def test_flush_counts_is_refused_quietly_to_a_user_without_select(
        scratch_engine, tidb_settings, test_database):
    fresh_table(scratch_engine, "stats_hidden", analyzed=False)
    fresh_table(scratch_engine, "stats_shown", analyzed=False)
    user = f"crm_pytest_noselect_{secrets.token_hex(3)}"  # THROWAWAY_PREFIXES
    password = "No-Select-" + secrets.token_hex(8)
    with scratch_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        # SELECT on one table of the database lets the user in, but not at stats_hidden.
        connection.exec_driver_sql(f"GRANT SELECT ON `{test_database}`.stats_shown "
                                   f"TO '{user}'@'%%'")
    stranger = tidb_engine(tidb_settings.url(test_database, user=user, password=password))
    try:
        assert flush_counts(stranger, ["stats_hidden"]) is False
    finally:
        stranger.dispose()
        with scratch_engine.begin() as connection:
            connection.exec_driver_sql(f"DROP USER '{user}'@'%%'")


@pytest.mark.parametrize("tables", [[], ["stats; FLUSH TABLES"], "", [3]])
def test_flush_counts_refuses_names_that_are_not_plain(scratch_engine, tables):
    with pytest.raises(InvalidInput, match="flush_counts needs plain table names"):
        flush_counts(scratch_engine, tables)


@pytest.mark.parametrize("version, modify_count, counted", [
    (TSO - 1, 5_000, False),    # nothing written after the commit
    (TSO + 1, 0, False),        # a new table's empty row, written after the commit
    (TSO + 1, 1_999, False),    # fewer modifications than the transaction made
    (TSO + 1, 2_000, True),     # a pass added the transaction's 1,000 rows
    (TSO + 1, 900_000, True),
])
def test_a_mark_is_counted_once_a_later_pass_added_its_rows(version, modify_count, counted):
    mark = WriteMark(commit_ts=TSO, rows=1_000, version=TSO - 5, modify_count=1_000)
    assert mark.counted_in(version, modify_count) is counted


def test_a_pass_between_the_commit_and_the_mark_counts():
    mark = WriteMark(commit_ts=TSO, rows=1_000, version=TSO + 3, modify_count=1_000)
    assert mark.counted_in(TSO + 3, 1_000)
    empty_row = WriteMark(commit_ts=TSO, rows=1_000, version=TSO + 3, modify_count=0)
    assert not empty_row.counted_in(TSO + 3, 0)


@pytest.mark.parametrize("tables, marks", [
    (["orders"], {"users": WriteMark(TSO, 1, 0, 0)}),   # a table it does not analyze
    (["orders"], {"orders": TSO}),                      # a TSO instead of a mark
    (["orders"], [("orders", WriteMark(TSO, 1, 0, 0))]),
    ([], {}),
    (["orders; DROP TABLE users"], {}),
])
def test_analyze_after_load_refuses_bad_arguments(scratch_engine, tables, marks):
    with pytest.raises(InvalidInput, match="analyze_after_load needs"):
        analyze_after_load(scratch_engine, tables, marks, wait=0)


def fresh_table(engine, table: str, *, analyzed: bool) -> None:
    """An empty table `table` (dropped first if there), analyzed or not."""
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        connection.exec_driver_sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)")
        if analyzed:
            connection.exec_driver_sql(f"ANALYZE TABLE {table}")


def no_touch() -> dict[str, WriteMark]:
    raise AssertionError("touch was called: the statistics were right, nothing to wait for")


def test_statistics_are_stale_when_their_count_differs_or_no_analyze_made_them(scratch_engine):
    fresh_table(scratch_engine, "stats_right", analyzed=True)
    fresh_table(scratch_engine, "stats_never", analyzed=False)
    assert stale_statistics(scratch_engine, {"stats_right": 0, "stats_never": 0}) == ["stats_never"]
    assert stale_statistics(scratch_engine, {"stats_right": 5}) == ["stats_right"]


def test_analyze_if_stale_leaves_right_statistics_alone(scratch_engine):
    # A plain re-run of a load: one query, no wait, no ANALYZE.
    fresh_table(scratch_engine, "stats_right", analyzed=True)
    assert analyze_if_stale(scratch_engine, {"stats_right": 0}, no_touch) == []


def test_analyze_if_stale_waits_for_its_touch_then_warns_and_analyzes(scratch_engine):
    fresh_table(scratch_engine, "stats_lost", analyzed=False)
    fresh_table(scratch_engine, "stats_mark", analyzed=False)
    touched = []

    def touch() -> dict[str, WriteMark]:
        mark = fill(scratch_engine, "stats_mark", 0, 2)
        touched.append(mark)
        # As if committed an hour from now: no counting pass can have come after it yet.
        return {"stats_mark": WriteMark(mark.commit_ts + ((3600 * 1000) << 18), 2, 0, 0)}

    # As if a crash had lost the counts of 5 rows: the statistics count 0.
    with pytest.warns(StatisticsNotCounted, match="stats_mark.*analyzed stats_lost anyway"):
        assert analyze_if_stale(scratch_engine, {"stats_lost": 5}, touch, wait=1) == ["stats_lost"]
    assert len(touched) == 1
    with scratch_engine.connect() as connection:
        analyzed = connection.exec_driver_sql(
            "SHOW STATS_META WHERE Table_name = 'stats_lost'").mappings().one()
    assert analyzed["Last_analyze_time"] is not None


@pytest.mark.parametrize("rows, touch, message", [
    ({"stats_right": -1}, no_touch, "stale_statistics needs"),
    ({"stats_right": "5"}, no_touch, "stale_statistics needs"),
    ({"stats_right; DROP TABLE t": 5}, no_touch, "stale_statistics needs plain table names"),
    ({"stats_right": 5}, lambda: {"stats_right": TSO}, "touch must return the WriteMark"),
    ({"stats_right": 5}, lambda: None, "touch must return the WriteMark"),
])
def test_analyze_if_stale_refuses_bad_arguments(scratch_engine, rows, touch, message):
    fresh_table(scratch_engine, "stats_right", analyzed=True)
    with pytest.raises(InvalidInput, match=message):
        analyze_if_stale(scratch_engine, rows, touch, wait=0)


def test_analyze_samples_at_tidbs_rate_for_the_rows_the_table_holds(scratch_engine):
    # TiDB would take the rate from a row count it refreshes only every lease (here 0 rows,
    # so rate 1): the rows the caller knows give the rate TiDB's rule means, 110,000 / rows.
    fresh_table(scratch_engine, "stats_rate", analyzed=False)

    def touch() -> dict[str, WriteMark]:
        mark = fill(scratch_engine, "stats_rate", 0, 2)
        return {"stats_rate": WriteMark(mark.commit_ts + ((3600 * 1000) << 18), 2, 0, 0)}

    with pytest.warns(StatisticsNotCounted):
        analyze_if_stale(scratch_engine, {"stats_rate": 440_000}, touch, wait=1)
    with scratch_engine.connect() as connection:
        jobs = connection.exec_driver_sql(
            "SHOW ANALYZE STATUS WHERE Table_name = 'stats_rate'").mappings().all()
    latest = max(jobs, key=lambda job: (job["Start_time"], job["End_time"]))
    assert "0.25 samplerate" in latest["Job_info"]

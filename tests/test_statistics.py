"""ANALYZE after a bulk load keeps the true row count (TiDB adds late-counted rows on top)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from crm_helpers.statistics import analyze_after_load, counted_rows

ROWS = 3000
# Long enough for TiDB to add pending row counts to its statistics at least once on the
# project's local TiDB (every 20 x stats-lease = 10 s).
WATCH_SECONDS = 25


def fill(engine, table: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        connection.exec_driver_sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)")
        connection.execute(text(f"INSERT INTO {table} VALUES (:id, :v)"),
                           [{"id": i, "v": i % 7} for i in range(ROWS)])


def counts_seen(engine, table: str) -> set[int]:
    seen = set()
    deadline = time.monotonic() + WATCH_SECONDS
    while time.monotonic() < deadline:
        seen.add(counted_rows(engine, [table]).get(table, 0))
        time.sleep(1)
    return seen


@pytest.mark.lifecycle
def test_analyze_after_load_keeps_the_true_row_count(engine):
    fill(engine, "stats_probe")
    analyze_after_load(engine, {"stats_probe": ROWS})
    assert counts_seen(engine, "stats_probe") == {ROWS}


"""Bulk loading into the real TiDB: exact, idempotent, resumable, and strict about input."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from crm_helpers.analysis import loader
from crm_helpers.analysis.generate import generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame, load_generated
from crm_helpers.analysis.reading import read_frame
from crm_helpers.analysis.schema import (
    analysis_orders,
    analysis_users,
    reset_analysis_tables,
)
from crm_helpers.analysis.statistics import StatisticsNotCounted
from crm_helpers.analysis.validation import InvalidFrame
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import LoadFailed, NoSpaceLeft
from crm_helpers.lesson.accounts import ensure_app_user
from tests.conftest import fresh_analysis_engine, throwaway_database

N_USERS = 500


@pytest.fixture(scope="module")
def database(tidb_settings):
    with throwaway_database(tidb_settings, "crm_pytest_load") as name:
        yield name


@pytest.fixture
def engine_with_users(tidb_settings, database):
    """An analysis engine on the module's database: empty tables but N_USERS users."""
    with fresh_analysis_engine(tidb_settings, database, users=N_USERS) as engine:
        yield engine


def orders_in(engine):
    return read_frame(engine,
                      "SELECT oid, uid, price, ordered_at FROM orders ORDER BY oid")


def test_load_is_exact_and_a_second_load_adds_nothing(engine_with_users):
    orders = generate_orders(12_345, N_USERS)
    first = load_frame(engine_with_users, analysis_orders, orders, batch_rows=5_000, progress=False)
    assert (first.loaded, first.skipped, first.batches) == (12_345, 0, 3)
    again = load_frame(engine_with_users, analysis_orders, orders, batch_rows=5_000, progress=False)
    assert (again.loaded, again.skipped) == (0, 12_345)
    stored = orders_in(engine_with_users)
    assert stored["oid"].tolist() == orders["oid"].tolist()
    np.testing.assert_array_equal(stored["price"], orders["price"])
    assert (stored["ordered_at"] == orders["ordered_at"]).all()


def test_parallel_failure_leaves_only_whole_batches(engine_with_users, monkeypatch):
    orders = generate_orders(20_000, N_USERS)
    real_load = loader._load_batch

    def fail_on_oid_10001(connection, table, batch):
        if batch["oid"].iloc[0] == 10_001:
            raise ConnectionError("network went away")
        real_load(connection, table, batch)

    monkeypatch.setattr(loader, "_load_batch", fail_on_oid_10001)
    with pytest.raises(ConnectionError):
        load_frame(engine_with_users, analysis_orders, orders, batch_rows=1_000, workers=3,
                   progress=False)
    stored = orders_in(engine_with_users)["oid"]
    assert 10_001 not in set(stored) and len(stored) % 1_000 == 0
    monkeypatch.setattr(loader, "_load_batch", real_load)
    load_frame(engine_with_users, analysis_orders, orders, batch_rows=1_000, progress=False)
    assert orders_in(engine_with_users)["oid"].tolist() == list(range(1, 20_001))


def test_failure_mid_load_keeps_whole_batches_and_resumes_exactly(engine_with_users, monkeypatch):
    orders = generate_orders(10_000, N_USERS)
    real_load = loader._load_batch
    calls = []

    def failing_third_batch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("network went away")
        real_load(*args)

    monkeypatch.setattr(loader, "_load_batch", failing_third_batch)
    with pytest.raises(ConnectionError):
        load_frame(engine_with_users, analysis_orders, orders, batch_rows=2_000, workers=1,
                   progress=False)
    assert len(orders_in(engine_with_users)) == 4_000  # exactly two whole batches
    monkeypatch.setattr(loader, "_load_batch", real_load)
    resumed = load_frame(engine_with_users, analysis_orders, orders, batch_rows=2_000,
                         progress=False)
    assert (resumed.loaded, resumed.skipped) == (6_000, 4_000)
    assert orders_in(engine_with_users)["oid"].tolist() == list(range(1, 10_001))


KILLABLE_LOAD = """
import sys
from crm_helpers.config import load_settings
from crm_helpers.analysis.loader import load_generated
from crm_helpers.analysis.schema import analysis_engine
engine_with_users = analysis_engine(load_settings(), database=sys.argv[1])
load_generated(engine_with_users, 200_000, batch_rows=2_000, progress=False)
"""


def wait_until_no_statement_runs_in(engine, database: str,
                                    timeout: float = 60.0) -> None:
    """Wait until TiDB runs no statement in `database` but this check's own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            busy = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM information_schema.processlist "
                "WHERE db = %s AND command <> 'Sleep' AND id <> CONNECTION_ID()",
                (database,)).scalar_one()
        if busy == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"TiDB still ran statements in {database} {timeout:.0f} s after the kill")


def test_killed_loader_leaves_whole_batches_and_resumes_to_exactly_n(engine_with_users, database):
    reset_analysis_tables(engine_with_users)
    load_process = subprocess.Popen([sys.executable, "-c", KILLABLE_LOAD, database])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine_with_users.connect() as connection:
                count = connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one()
            if count >= 10_000:
                break
            time.sleep(0.05)
        os.kill(load_process.pid, signal.SIGKILL)
    finally:
        load_process.wait()
    # TiDB still finishes a COMMIT the killed loader had already sent: count once it is done.
    wait_until_no_statement_runs_in(engine_with_users, database)
    with engine_with_users.connect() as connection:
        partial = connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one()
    assert 10_000 <= partial < 200_000
    assert partial % 2_000 == 0  # only whole batches were committed
    _, orders = load_generated(engine_with_users, 200_000, batch_rows=2_000, progress=False)
    assert orders.skipped == partial and orders.loaded == 200_000 - partial
    assert orders_in(engine_with_users)["oid"].tolist() == list(range(1, 200_001))


@pytest.fixture
def no_stats_engine(tidb_settings, database):
    """An engine as a user with ALL on the test database only (so not on mysql.stats_meta)."""
    user = f"crm_pytest_nostats_{secrets.token_hex(3)}"  # THROWAWAY_PREFIXES
    password = "No-Stats-" + secrets.token_hex(8)
    admin = tidb_engine(tidb_settings.url())
    ensure_app_user(admin, user, password, database)
    app = tidb_engine(tidb_settings.url(database, user=user, password=password),
                      connect_args={"local_infile": True})
    yield app
    app.dispose()
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP USER '{user}'@'%%'")
    admin.dispose()


def test_a_user_who_may_not_read_the_statistics_can_run_a_finished_load_again(
        engine_with_users, no_stats_engine):
    n_orders = 5_000  # over the fixture's N_USERS users, as load_generated spreads them
    load_frame(engine_with_users, analysis_orders, generate_orders(n_orders, N_USERS),
               progress=False)
    users, orders = load_generated(no_stats_engine, n_orders, progress=False)
    assert (users.loaded, users.skipped, orders.loaded, orders.skipped) \
        == (0, N_USERS, 0, n_orders)


def test_a_user_who_may_not_read_the_statistics_loads_and_is_told_why_nothing_was_analyzed(
        engine_with_users, no_stats_engine):
    reset_analysis_tables(engine_with_users)
    n_orders = 5_000
    with pytest.warns(StatisticsNotCounted, match="may not read TiDB's statistics"):
        users, orders = load_generated(no_stats_engine, n_orders, progress=False)
    assert users.loaded > 0 and orders.loaded == n_orders
    assert len(orders_in(engine_with_users)) == n_orders


def test_a_different_data_set_is_refused_until_reset(engine_with_users):
    reset_analysis_tables(engine_with_users)
    load_generated(engine_with_users, 3_000, progress=False)
    with pytest.raises(LoadFailed, match="reset_analysis_tables"):
        load_generated(engine_with_users, 4_000, progress=False)


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda f: f.drop(columns=["price"]), r"missing \['price'\]"),
    (lambda f: f.assign(price=f["price"].astype(str)), "must hold numbers"),
    (lambda f: f.assign(price=f["price"].where(f["oid"] != 7)), r"1 row \(rows 6\) have no value"),
    (lambda f: f.assign(price=f["price"].where(f["oid"] % 100 != 0, -1.0)),
     r"10 rows \(rows 99, 199, .*\) are negative"),
    (lambda f: f.assign(uid=f["uid"].where(f["oid"] != 3, 999_999)),
     r"1 row \(rows 2\) refer to no row of users \(e\.g\. uid \[999999\]\)"),
])
def test_bad_frames_are_refused_before_anything_is_written(engine_with_users, spoil, message):
    orders = spoil(generate_orders(1_000, N_USERS))
    with pytest.raises(InvalidFrame, match=message):
        load_frame(engine_with_users, analysis_orders, orders, batch_rows=100, progress=False)
    assert len(orders_in(engine_with_users)) == 0


def test_unknown_gender_is_refused(engine_with_users):
    users = generate_users(10).assign(uid=range(1_001, 1_011))
    users["gender"] = users["gender"].astype(str).where(users["uid"] != 1_005, "robot")
    with pytest.raises(InvalidFrame, match="not one of"):
        load_frame(engine_with_users, analysis_users, users, progress=False)


def test_a_batch_that_tidb_warns_about_is_rolled_back(engine_with_users, tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("1,1,not-a-price,2025-01-01 00:00:00\n")
    with engine_with_users.connect() as connection:
        cursor = connection.connection.cursor()
        with pytest.raises(LoadFailed, match="rolled back"):
            loader._load_csv(cursor, analysis_orders,
                              ["oid", "uid", "price", "ordered_at"], str(bad_csv))
    assert len(orders_in(engine_with_users)) == 0


@pytest.fixture
def full_tmpdir(tmp_path, monkeypatch):
    """The temporary folder is a 2 MB tmpfs: a batch's CSV does not fit."""
    folder = tmp_path / "small-tmp"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_tmpdir_is_named_with_what_to_do(engine_with_users, full_tmpdir):
    orders = generate_orders(120_000, N_USERS)  # a CSV of about 6 MB per batch
    with pytest.raises(NoSpaceLeft) as raised:
        load_frame(engine_with_users, analysis_orders, orders, batch_rows=100_000, workers=1,
                   progress=False)
    message = str(raised.value)
    assert f"temporary folder {full_tmpdir} is full" in message
    assert "TMPDIR" in message and "resumes" in message
    assert list(full_tmpdir.iterdir()) == []  # the half-written CSV is gone
    assert len(orders_in(engine_with_users)) == 0

"""Hard kills of the local TiDB: `down` never kills, `up` checks the tables, loads resume exactly.

Every test here runs its own throwaway tidb-server (own folder, free ports), so killing it
touches nothing else.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator

import pandas as pd
import pytest

from crm_helpers.analysis import loader, resume
from crm_helpers.analysis.generate import default_user_count, generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame, load_generated
from crm_helpers.analysis.schema import analysis_engine, analysis_orders, analysis_users
from crm_helpers.analysis.statistics import StatisticsNotCounted, counted_rows
from crm_helpers.config import load_settings
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import TableDamaged, TiDBStillStopping
from crm_helpers.local.recovery import check_tables, damaged_tables
from crm_helpers.local.server import LocalTiDB, local_tidb_status, start_local_tidb, stop_local_tidb
from tests.conftest import cli_env, spare_tidb

pytestmark = pytest.mark.lifecycle
CRM_TIDB = [sys.executable, "-m", "crm_helpers.local.cli"]


@pytest.fixture
def server(tmp_path) -> Iterator[LocalTiDB]:
    """A throwaway local TiDB, started; stopped (after SIGCONT, in case) at the end."""
    with spare_tidb(tmp_path / "tidb") as local:
        yield local


def server_pid(local: LocalTiDB) -> int:
    return int(local.pid_file.read_text())


def kill_server(local: LocalTiDB) -> None:
    """SIGKILL our own tidb-server and wait until it is gone."""
    pid = server_pid(local)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while local_tidb_status(local).running and time.monotonic() < deadline:
        time.sleep(0.1)


def analysis_db(local: LocalTiDB):
    """The loader's own analysis_engine, on `local` (TIDB_HOST: use it, start nothing)."""
    return analysis_engine(load_settings(
        environ={"TIDB_HOST": local.host, "TIDB_PORT": str(local.port)}, env_file=None))


def content_digest(frame: pd.DataFrame) -> str:
    """A checksum of (oid, uid, price, ordered_at), in oid order."""
    frame = frame.sort_values("oid", ignore_index=True)
    text = "\n".join(f"{o},{u},{p!r},{t:%Y-%m-%d %H:%M:%S}" for o, u, p, t in zip(
        frame["oid"], frame["uid"], frame["price"].astype(float), frame["ordered_at"],
        strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def stored_orders(engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql("SELECT oid, uid, price, ordered_at FROM orders ORDER BY oid",
                           connection)


# --- down: wait for a clean shutdown, never kill ---------------------------------------------

def test_down_never_kills_a_server_that_is_still_shutting_down(server):
    pid = server_pid(server)
    os.kill(pid, signal.SIGSTOP)  # a shutdown that takes long (here: makes no progress at all)
    messages: list[str] = []
    with pytest.raises(TiDBStillStopping) as caught:
        stop_local_tidb(server, stall_timeout=4, report=messages.append)
    assert f"pid {pid}" in str(caught.value) and "left running" in str(caught.value)
    assert any("Waiting for tidb-server" in message for message in messages)
    assert local_tidb_status(server).running, "down killed the server"
    os.kill(pid, signal.SIGCONT)  # the SIGTERM it got is still pending: it shuts down now
    stop_local_tidb(server)
    assert not local_tidb_status(server).running
    assert (server.data_dir / "lock_store").exists(), "the store was not closed cleanly"
    assert not server.running_marker.exists()


def test_ctrl_c_during_down_leaves_the_server_shutting_down_and_up_waits_for_it(server):
    pid = server_pid(server)
    os.kill(pid, signal.SIGSTOP)
    down = subprocess.Popen([*CRM_TIDB, "down"], env=cli_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Generous: only a slow start of `crm-tidb` on a loaded machine makes these waits long.
    ready, _, _ = select.select([down.stderr], [], [], 180)
    first = down.stderr.readline() if ready else ""
    assert "Waiting for tidb-server" in first and "clean shutdown" in first
    down.send_signal(signal.SIGINT)
    _, err = down.communicate(timeout=120)
    assert down.returncode == 130
    assert "stopped waiting" in err
    assert local_tidb_status(server).running
    os.kill(pid, signal.SIGCONT)
    start_local_tidb(server)  # waits for the interrupted shutdown to end, then starts anew
    assert server_pid(server) != pid
    assert not server.running_marker.exists() or server.running_marker.read_text().strip() \
        != str(pid)


# --- up: notice an unclean stop and check the tables -----------------------------------------

def test_up_after_a_clean_down_does_not_check(server):
    stop_local_tidb(server)
    messages: list[str] = []
    start_local_tidb(server, report=messages.append)
    assert messages == []


def damage_by_kill_after_commit(local: LocalTiDB, rows: int = 60_000) -> None:
    """Load a batch without read-back and SIGKILL the server as its COMMIT returns."""
    engine = analysis_db(local)
    with engine.begin() as connection:  # what an earlier attempt left
        connection.exec_driver_sql("TRUNCATE TABLE orders")
    load_frame(engine, analysis_users, generate_users(default_user_count(rows)), progress=False)
    time.sleep(1)
    connection = engine.raw_connection()
    old, resume.READ_BACK_AFTER_COMMIT = resume.READ_BACK_AFTER_COMMIT, False
    try:
        loader._load_batch(connection, analysis_orders, generate_orders(rows))
        os.kill(server_pid(local), signal.SIGKILL)
    finally:
        resume.READ_BACK_AFTER_COMMIT = old
        connection.invalidate()
        engine.dispose()
    kill_server(local)


def test_up_after_a_kill_names_the_damaged_tables_and_repair_fixes_them(server):
    for _attempt in range(3):  # a kill lands in the window nearly always; retry if not
        damage_by_kill_after_commit(server)
        messages: list[str] = []
        start_local_tidb(server, report=messages.append)
        if damaged_tables(server):
            break
    report = "\n".join(messages)
    assert "stopped without a clean shutdown" in report
    assert damaged_tables(server) == ["crm_analysis.orders"]
    assert "crm_analysis.orders" in report and "crm-tidb repair" in report
    engine = tidb_engine(server.url())
    with pytest.raises(TableDamaged, match="crm-tidb repair"), engine.connect() as connection:
        connection.exec_driver_sql("ADMIN CHECK TABLE crm_analysis.orders")
    engine.dispose()
    status = subprocess.run([*CRM_TIDB, "status"], env=cli_env(server), capture_output=True,
                            text=True, check=False)
    assert "crm_analysis.orders" in status.stdout and "crm-tidb repair" in status.stdout
    repair = subprocess.run([*CRM_TIDB, "repair"], env=cli_env(server), capture_output=True,
                            text=True, check=False)
    assert repair.returncode == 0, repair.stderr
    assert "crm_analysis.orders: removed" in repair.stdout and "consistent now" in repair.stdout
    assert damaged_tables(server) == []
    engine = tidb_engine(server.url())
    assert all(health.ok for health in check_tables(engine))
    engine.dispose()


# --- loads survive a server kill ---------------------------------------------------------------

def test_a_load_repairs_what_a_kill_after_commit_damaged_and_ends_exact(server):
    rows = 60_000
    for _attempt in range(3):
        damage_by_kill_after_commit(server, rows)
        start_local_tidb(server, report=lambda message: None)
        if damaged_tables(server):
            break
    assert damaged_tables(server) == ["crm_analysis.orders"]
    engine = tidb_engine(server.url("crm_analysis"), connect_args={"local_infile": True})
    expected = generate_orders(rows)
    report = load_frame(engine, analysis_orders, expected, progress=False)
    assert report.loaded == rows  # the half-written batch was rewritten whole
    stored = stored_orders(engine)
    assert len(stored) == rows and content_digest(stored) == content_digest(expected)
    assert all(health.ok for health in check_tables(engine, ["crm_analysis"]))
    engine.dispose()


N_ORDERS = 20_000
BATCH_ROWS = 1_000
# The local TiDB adds new rows to its statistics every 20 leases of 0.5 s plus a random offset
# of up to a minute (crm_helpers.analysis.statistics): about the longest a resumed load's
# ANALYZE waits (the old wait for the full row count took its 120 s timeout here).
COUNTING_PASS_SECONDS = 70
KILLABLE_LOAD = """
import sys
from crm_helpers.engines import tidb_engine
from crm_helpers.analysis.loader import load_generated
from crm_helpers.analysis.schema import analysis_metadata
engine = tidb_engine(sys.argv[1], connect_args={"local_infile": True})
analysis_metadata.create_all(engine)
load_generated(engine, int(sys.argv[2]), batch_rows=int(sys.argv[3]), progress=False)
"""


@pytest.mark.parametrize("kill_after_rows", [1_000, 4_000, 8_000, 12_000, 16_000])
def test_server_killed_mid_load_then_up_then_resume_reaches_exactly_n(server, kill_after_rows):
    engine = analysis_db(server)
    engine.dispose()
    url = server.url("crm_analysis").render_as_string(hide_password=False)
    load_process = subprocess.Popen([sys.executable, "-c", KILLABLE_LOAD, url, str(N_ORDERS),
                               str(BATCH_ROWS)], stderr=subprocess.PIPE, text=True)
    watcher = tidb_engine(server.url("crm_analysis"))
    deadline = time.monotonic() + 120
    count = 0
    while count < kill_after_rows and time.monotonic() < deadline and load_process.poll() is None:
        with watcher.connect() as connection:
            count = connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one()
        time.sleep(0.02)
    watcher.dispose()
    kill_server(server)
    _, err = load_process.communicate(timeout=60)
    assert load_process.returncode != 0, "the load finished before the kill; kill earlier"
    assert "LoadFailed" in err and "run the same load again" in err
    assert "8141" not in err and "8223" not in err

    messages: list[str] = []
    start_local_tidb(server, report=messages.append)
    assert any("stopped without a clean shutdown" in message for message in messages)
    engine = tidb_engine(server.url("crm_analysis"), connect_args={"local_infile": True})
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticsNotCounted)
        users, orders = load_generated(engine, N_ORDERS, batch_rows=BATCH_ROWS, progress=False)
    # The counts of the batches committed before the kill are lost with the server's memory:
    # the ANALYZE waits for what the resumed load wrote, not for the tables' full row counts.
    analyze_seconds = time.monotonic() - started - users.seconds - orders.seconds
    print(f"kill after {count:,} rows; up: {damaged_tables(server) or 'no damaged table'}; "
          f"resume: {orders}; waited {analyze_seconds:.1f} s for the counts and ANALYZE")
    assert analyze_seconds < COUNTING_PASS_SECONDS + 20
    stored = stored_orders(engine)
    expected = generate_orders(N_ORDERS, default_user_count(N_ORDERS))
    assert len(stored) == N_ORDERS
    assert stored["oid"].tolist() == list(range(1, N_ORDERS + 1))
    assert content_digest(stored) == content_digest(expected)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM users").scalar_one() \
            == default_user_count(N_ORDERS)
    assert all(health.ok for health in check_tables(engine, ["crm_analysis"]))
    engine.dispose()
    # Also when every batch was in before the kill and the resume loaded nothing.
    assert_statistics_count_exactly(server)


def statistics_estimate(engine) -> tuple[dict[str, int], float]:
    """The row counts of users and orders in TiDB's statistics, and EXPLAIN's estRows of orders."""
    with engine.connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN SELECT * FROM orders").mappings().all()
    return counted_rows(engine, ["users", "orders"]), float(plan[-1]["estRows"])


def assert_statistics_count_exactly(server: LocalTiDB) -> None:
    """After a clean restart, the statistics count the N_ORDERS load's rows exactly."""
    # A clean stop writes every count TiDB still holds: had an ANALYZE come before rows were
    # counted, they would now be added on top of the analyzed count.
    stop_local_tidb(server)
    start_local_tidb(server)
    engine = tidb_engine(server.url("crm_analysis"))
    assert statistics_estimate(engine) \
        == ({"users": default_user_count(N_ORDERS), "orders": N_ORDERS}, N_ORDERS)
    engine.dispose()


def test_a_resume_with_nothing_to_load_repairs_the_statistics_a_crash_left(server):
    # users: the server is SIGKILLed right after the load's last commit, so the counts it had
    # not written yet are lost. orders: loaded on the restarted server by a loader that dies
    # before its ANALYZE (as load_generated does before analyze_after_load), so its counts are
    # still pending in the live server when the resume starts.
    engine = analysis_db(server)
    n_users = default_user_count(N_ORDERS)
    load_frame(engine, analysis_users, generate_users(n_users), batch_rows=BATCH_ROWS,
               progress=False)
    engine.dispose()
    kill_server(server)
    start_local_tidb(server, report=lambda message: None)
    engine = tidb_engine(server.url("crm_analysis"), connect_args={"local_infile": True})
    load_frame(engine, analysis_orders, generate_orders(N_ORDERS, n_users),
               batch_rows=BATCH_ROWS, progress=False)
    crashed, _ = statistics_estimate(engine)
    assert crashed.get("users", 0) < n_users

    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticsNotCounted)
        users, orders = load_generated(engine, N_ORDERS, batch_rows=BATCH_ROWS, progress=False)
    seconds = time.monotonic() - started
    print(f"statistics after the crashes: {crashed}; resume took {seconds:.1f} s")
    assert (users.loaded, orders.loaded) == (0, 0)
    assert seconds < COUNTING_PASS_SECONDS + 20
    # Right after the resume, not only once TiDB's auto-analyze gets to it.
    assert statistics_estimate(engine) == ({"users": n_users, "orders": N_ORDERS}, N_ORDERS)
    # A plain re-run now finds the statistics right: no wait and no ANALYZE.
    versions = statistics_versions(engine)
    started = time.monotonic()
    load_generated(engine, N_ORDERS, batch_rows=BATCH_ROWS, progress=False)
    again_seconds = time.monotonic() - started
    print(f"plain re-run took {again_seconds:.2f} s")
    assert statistics_versions(engine) == versions
    assert again_seconds < 5
    engine.dispose()
    assert_statistics_count_exactly(server)


def statistics_versions(engine) -> dict[str, int]:
    """The version of users' and orders' statistics rows (an ANALYZE writes a new one)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT t.table_name, m.version FROM information_schema.tables t "
            "JOIN mysql.stats_meta m ON m.table_id = t.tidb_table_id "
            "WHERE t.table_schema = DATABASE() AND t.table_name IN ('users', 'orders')").all()
    return dict(rows)

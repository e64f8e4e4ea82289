"""A load that fills the local TiDB's disk ends at once with NoSpaceLeft, naming the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager

import pymysql
import pytest
from sqlalchemy import text

from crm_helpers.analysis.disk_space import cut_connections
from crm_helpers.analysis.generate import generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import (
    analysis_engine,
    analysis_orders,
    analysis_users,
    reset_analysis_tables,
)
from crm_helpers.config import load_settings
from crm_helpers.errors import NoSpaceLeft, TiDBStillStopping
from crm_helpers.local.server import local_tidb_status, stop_local_tidb
from tests.conftest import outcome_within, spare_tidb, throwaway_database

#: The store preallocates about 260 MB when it opens: this leaves it a few MB for data.
DISK_MB = 280
#: Orders enough to fill those few MB (the load ends at the full disk, after about 15 s).
ORDERS = 1_000_000


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs",
                              str(folder)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_cut_while_a_load_data_file_is_sent_is_a_database_error(tidb_settings, tmp_path):
    # PyMySQL, cut while sending a LOAD DATA file, wrote the file's end to its closed socket
    # and raised a bare AttributeError; the loader only turns database errors into its own.
    rows = 2_000_000  # about 60 MB: the server takes seconds to read it, the cut comes first
    csv = tmp_path / "big.csv"
    with open(csv, "w") as out:
        line = "x" * 28 + "\n"
        for _ in range(rows // 10_000):
            out.write(line * 10_000)
    with throwaway_database(tidb_settings, "crm_pytest_cut") as name:
        engine = analysis_engine(tidb_settings, database=name)
        try:
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE sent_lines (line VARCHAR(40))"))
            raw = engine.raw_connection()
            sending = threading.Event()

            def send() -> None:
                cursor = raw.cursor()
                cursor.execute("BEGIN")
                sending.set()
                cursor.execute("LOAD DATA LOCAL INFILE %s INTO TABLE sent_lines", (str(csv),))

            def cut_while_sending() -> None:
                worker = threading.Thread(target=lambda: errors.append(outcome_within(120, send)),
                                          daemon=True)
                worker.start()
                sending.wait(30)
                time.sleep(0.5)  # into the file's transfer
                cut_connections([raw])
                worker.join(150)

            errors: list[BaseException | None] = []
            assert outcome_within(180, cut_while_sending) is None
            raw.invalidate()  # cut: not for the pool
            assert isinstance(errors[0], pymysql.err.OperationalError), repr(errors[0])
            assert errors[0].args[0] == 2013
            with engine.connect() as connection:  # nothing of the cut transaction stays
                assert connection.execute(text("SELECT COUNT(*) FROM sent_lines")).scalar() == 0
        finally:
            engine.dispose()


@pytest.mark.lifecycle
def test_a_full_server_disk_ends_the_load_at_once(small_disk, monkeypatch):
    with spare_tidb(small_disk / "tidb") as local:
        monkeypatch.setenv("TIDB_LOCAL_HOME", str(local.home))
        monkeypatch.setenv("TIDB_PORT", str(local.port))
        monkeypatch.setenv("TIDB_STATUS_PORT", str(local.status_port))
        # An hour's read timeout: only the disk watch can end the load within the limit below.
        monkeypatch.setenv("TIDB_READ_TIMEOUT", "3600")
        engine = analysis_engine(load_settings(env_file=None))
        try:
            reset_analysis_tables(engine)
            load_frame(engine, analysis_users, generate_users(500), progress=False)
            orders = generate_orders(ORDERS, 500)
            with killed_on_failure(local):
                raised = outcome_within(
                    240, lambda: load_frame(engine, analysis_orders, orders, progress=False))
        finally:
            engine.dispose()
        assert isinstance(raised, NoSpaceLeft), repr(raised)
        message = str(raised)
        assert "TiDB's disk is full" in message and str(local.data_dir) in message
        assert "no space left" in message.lower() and "crm-tidb up" in message
        # `crm-tidb down` on the full disk ends, one way or the other, within its bounds: the
        # server stops, or (its shutdown stuck after the full disk: 2 of 7 runs here) the
        # stop gives up with TiDBStillStopping, which says how to end it (kill -9, then up).
        with killed_on_failure(local):
            outcome = outcome_within(150, lambda: stop_local_tidb(local, stall_timeout=30,
                                                                  max_wait=120))
        if outcome is not None:
            assert isinstance(outcome, TiDBStillStopping), repr(outcome)
            assert "kill -9" in str(outcome) and "crm-tidb up" in str(outcome)
            os.kill(local_tidb_status(local).pid, signal.SIGKILL)
        else:
            assert not local_tidb_status(local).running


@contextmanager
def killed_on_failure(local):
    """SIGKILL the test's server if the block fails: a hung one would hang the clean-up too."""
    try:
        yield
    except BaseException:
        pid = local_tidb_status(local).pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        raise

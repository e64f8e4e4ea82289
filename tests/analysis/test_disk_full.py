"""A load that fills the local TiDB's disk ends at once with NoSpaceLeft, naming the folder."""

from __future__ import annotations

import subprocess
import time

import pytest

from crm_helpers.analysis.generate import generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import (
    analysis_engine,
    analysis_orders,
    analysis_users,
    reset_analysis_tables,
)
from crm_helpers.config import load_settings
from crm_helpers.errors import NoSpaceLeft
from crm_helpers.local.server import local_tidb_status, stop_local_tidb
from tests.conftest import spare_tidb

pytestmark = pytest.mark.lifecycle

#: The store preallocates about 260 MB when it opens: this leaves it a few MB for data.
DISK_MB = 280


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


@pytest.mark.skip(reason="unstable: passed once (NoSpaceLeft well within 120 s), then failed "
                  "once with a broken pipe 23 s in and hung once past 600 s; issue 18 follow-up")
def test_a_full_server_disk_ends_the_load_at_once(small_disk, monkeypatch):
    with spare_tidb(small_disk / "tidb") as local:
        monkeypatch.setenv("TIDB_LOCAL_HOME", str(local.home))
        monkeypatch.setenv("TIDB_PORT", str(local.port))
        monkeypatch.setenv("TIDB_STATUS_PORT", str(local.status_port))
        engine = analysis_engine(load_settings(env_file=None))
        try:
            reset_analysis_tables(engine)
            load_frame(engine, analysis_users, generate_users(500), progress=False)
            orders = generate_orders(1_000_000, 500)
            started = time.monotonic()
            with pytest.raises(NoSpaceLeft) as raised:
                load_frame(engine, analysis_orders, orders, progress=False)
            took = time.monotonic() - started
        finally:
            engine.dispose()
        message = str(raised.value)
        assert "TiDB's disk is full" in message and str(local.data_dir) in message
        assert "no space left on device" in message.lower() and "crm-tidb up" in message
        # Not the 300 s read timeout: the watch saw TiDB's log line.
        assert took < 120, f"NoSpaceLeft only after {took:.0f} s"
        # `crm-tidb down` works on the full disk too (it wrote a marker file there first).
        stop_local_tidb(local, stall_timeout=60)
        assert not local_tidb_status(local).running

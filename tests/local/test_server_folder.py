"""One local TiDB per folder: starts at once share one server; any folder name works."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from pathlib import Path

import pymysql
import pytest

from crm_helpers.errors import ConfigError, TiDBDiskFull
from crm_helpers.local.server import (
    LocalTiDB,
    local_tidb_status,
    start_local_tidb,
    stop_local_tidb,
)
from tests.conftest import CRM_TIDB, cli_env, outcome_within, small_tmpfs, spare_tidb

pytestmark = pytest.mark.lifecycle


def crm_tidb(local: LocalTiDB, command: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CRM_TIDB, command], env=cli_env(local, **extra), capture_output=True,
                          text=True, check=False, timeout=300)


def test_ups_at_once_share_one_server(tmp_path):
    with spare_tidb(tmp_path / "raced", start=False) as local:
        for round_ in range(6):
            ups = [subprocess.Popen([*CRM_TIDB, "up"], env=cli_env(local), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(3)]
            outputs = [up.communicate(timeout=300) for up in ups]
            for up, (out, err) in zip(ups, outputs, strict=True):
                assert up.returncode == 0, f"round {round_}: {out}\n{err}"
            status = local_tidb_status(local)
            assert status.running, f"round {round_}: the server was orphaned"
            listed = subprocess.run(["pgrep", "-f", "--", f"--path={local.data_dir}"],
                                    capture_output=True, text=True, check=False)
            assert listed.stdout.split() == [str(status.pid)], f"round {round_}"
            assert "is running" in crm_tidb(local, "status").stdout
            down = crm_tidb(local, "down")
            assert down.returncode == 0 and "was not running" not in down.stdout + down.stderr
            assert not local_tidb_status(local).running
            assert subprocess.run(["pgrep", "-f", "--", f"--path={local.data_dir}"],
                                  check=False).returncode == 1, f"round {round_}: left running"


def starts_at_once(local: LocalTiDB, count: int) -> list[BaseException | None]:
    """What `count` start_local_tidb calls let go at the same moment raised (None: nothing)."""
    ready = threading.Barrier(count)
    outcomes: list[BaseException | None] = []

    def start() -> None:
        ready.wait()
        try:
            start_local_tidb(local, timeout=240)
        except BaseException as exc:  # handed back to the test, whatever it is
            outcomes.append(exc)
        else:
            outcomes.append(None)

    starters = [threading.Thread(target=start, daemon=True) for _ in range(count)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(300)
    return outcomes


def test_starts_at_once_in_one_process_share_one_server(tmp_path):
    with spare_tidb(tmp_path / "raced-threads", start=False) as local:
        for round_ in range(5):
            assert starts_at_once(local, 2) == [None, None], f"round {round_}"
            status = local_tidb_status(local)
            assert status.running, f"round {round_}: the server was orphaned"
            assert stop_local_tidb(local)
            assert subprocess.run(["pgrep", "-f", "--", f"--path={local.data_dir}"],
                                  check=False).returncode == 1, f"round {round_}: left running"


def test_a_file_as_the_folder_is_a_config_error(tmp_path):
    not_a_folder = tmp_path / "tidb-home"
    not_a_folder.write_text("a file\n")
    for home in (not_a_folder, not_a_folder / "below"):
        with pytest.raises(ConfigError, match=r"a file, not a folder.*TIDB_LOCAL_HOME"):
            LocalTiDB(home=home, port=4999, status_port=10999)
        status = subprocess.run([*CRM_TIDB, "status"], capture_output=True, text=True, check=False,
                                env=cli_env(LocalTiDB(port=4999, status_port=10999),
                                            TIDB_LOCAL_HOME=str(home)), timeout=120)
        assert status.returncode == 1
        assert "Traceback" not in status.stderr and "not a folder" in status.stderr


def test_any_folder_name_works(tmp_path):
    home = tmp_path / 'a "quoted" folder, é 東京 \\ back'
    with spare_tidb(home) as local:
        assert local_tidb_status(local).running
        assert (home / "tidb.log").is_file()  # the config's paths reached TiDB unchanged
        start_local_tidb(local)  # finds it running
    assert not Path(home / "tidb.pid").exists()


def test_url_characters_in_the_folder_name_keep_the_data_inside_it(tmp_path):
    # TiDB reads its data path as a URL: unencoded, '#' and '?' cut it and '%41' became 'A',
    # so the data went to a sibling folder while the logs stayed here.
    names = ("h#1", "q?x", "p%41", "n\nl")
    for name in names:
        home = tmp_path / name
        with spare_tidb(home) as local:
            assert local_tidb_status(local).running
            assert any((home / "data").iterdir()), f"{name!r}: no data in its own folder"
        beside = {path.name for path in tmp_path.iterdir()} - set(names)
        assert not beside, f"{name!r}: data written beside its folder, in {beside}"


def test_a_full_disk_at_start_is_named(tmp_path):
    with small_tmpfs(tmp_path / "small-disk", "40m") as home, \
            spare_tidb(home, start=False) as local:
        with pytest.raises(TiDBDiskFull, match=r"disk holding .* is full.*TIDB_LOCAL_HOME"):
            start_local_tidb(local, timeout=120)
        assert not local_tidb_status(local).running


def test_a_store_stopped_by_a_full_disk_is_stopped_without_losing_a_commit(tmp_path):
    # badger's memtable flusher returns for good after its first failed write (ENOSPC), and
    # the clean shutdown then waits forever to hand it the last memtable: `down` stalled for
    # minutes and gave up with TiDBStillStopping.
    with small_tmpfs(tmp_path / "filling", "300m") as disk, spare_tidb(disk / "home") as local:
        connection = pymysql.connect(host=local.host, port=local.port, user="root",
                                     autocommit=True, read_timeout=60)
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE stop_full")
            cursor.execute("CREATE TABLE stop_full.t (id INT PRIMARY KEY, v LONGTEXT)")
        filler = disk / "filler"
        with open(filler, "wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(bytes(2**20))
        acknowledged = []
        with connection.cursor() as cursor, contextlib.suppress(pymysql.err.MySQLError):
            for row in range(200):  # about 200 MB: more than one memtable (64 MB) holds
                cursor.execute("INSERT INTO stop_full.t VALUES (%s, REPEAT('x', 1000000))", (row,))
                acknowledged.append(row)
        connection.close()
        assert len(acknowledged) > 100, f"only {len(acknowledged)} writes were acknowledged"
        said = []
        assert outcome_within(120, lambda: stop_local_tidb(local, report=said.append)) is None
        assert not local_tidb_status(local).running
        assert any("cannot finish its clean shutdown" in line for line in said), said
        filler.unlink()
        start_local_tidb(local)
        connection = pymysql.connect(host=local.host, port=local.port, user="root")
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT id FROM stop_full.t ORDER BY id")
            assert [row for (row,) in cursor.fetchall()] == acknowledged

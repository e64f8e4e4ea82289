"""Lifecycle of a local tidb-server, on a spare instance with its own home and ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pymysql
import pytest

from crm_helpers.errors import ConfigError, PortInUse, TiDBStartTimeout
from crm_helpers.local.build import TIDB_VERSION
from crm_helpers.local.server import (
    LocalTiDB,
    local_tidb_status,
    start_local_tidb,
    stop_local_tidb,
)
from tests.conftest import CRM_TIDB, cli_env, free_port, free_ports, spare_tidb

pytestmark = pytest.mark.lifecycle


def run_sql(local: LocalTiDB, *statements: str) -> list[tuple]:
    """Run statements as root on `local`, returning the last one's rows."""
    connection = pymysql.connect(host=local.host, port=local.port, user="root", password="",
                                 autocommit=True)
    with connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        return list(cursor.fetchall())


@pytest.fixture(scope="module")
def spare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTiDB]:
    """A second local TiDB, not started yet; stopped at the end of the module."""
    with spare_tidb(tmp_path_factory.mktemp("spare-tidb"), start=False) as local:
        yield local


def test_up_gives_tidb_v85_on_unistore(spare):
    start_local_tidb(spare)
    (version,), = run_sql(spare, "SELECT tidb_version()")
    assert "Release Version: v8.5." in version
    assert "Store: unistore" in version
    status = local_tidb_status(spare)
    assert status.running and status.version.endswith(f"-TiDB-{TIDB_VERSION}")


def test_up_twice_is_harmless(spare):
    first = local_tidb_status(spare).pid
    start_local_tidb(spare)
    assert local_tidb_status(spare).pid == first


def test_data_survives_down_and_up(spare):
    start_local_tidb(spare)
    run_sql(spare, "CREATE DATABASE IF NOT EXISTS keep", "DROP TABLE IF EXISTS keep.notes",
            "CREATE TABLE keep.notes (id INT PRIMARY KEY, body VARCHAR(20))",
            "INSERT INTO keep.notes VALUES (1, 'still here')")
    assert stop_local_tidb(spare) is True
    assert not local_tidb_status(spare).running
    start_local_tidb(spare)
    assert run_sql(spare, "SELECT body FROM keep.notes") == [("still here",)]


def test_killed_server_leaves_a_stale_pid_file_that_up_handles(spare):
    start_local_tidb(spare)
    old_pid = local_tidb_status(spare).pid
    os.kill(old_pid, signal.SIGKILL)
    assert spare.pid_file.read_text().strip() == str(old_pid)
    start_local_tidb(spare)
    assert local_tidb_status(spare).pid != old_pid
    assert run_sql(spare, "SELECT body FROM keep.notes") == [("still here",)]


def test_a_server_still_dying_from_a_kill_is_not_waited_on_as_if_it_were_starting(spare):
    # Right after kill -9 the killed process can live on for a moment. `up` used to take it
    # for the running server, wait for it, and report its death as "exited while starting"
    # with that server's old log. A stand-in named tidb-server that dies a second later makes
    # the moment long enough to meet every time.
    stop_local_tidb(spare)
    dying = subprocess.Popen(["bash", "-c", "exec -a tidb-server sleep 1"])
    try:
        spare.pid_file.write_text(f"{dying.pid}\n")
        start_local_tidb(spare)
        status = local_tidb_status(spare)
        assert status.running and status.pid != dying.pid
        assert run_sql(spare, "SELECT body FROM keep.notes") == [("still here",)]
    finally:
        dying.kill()
        dying.wait()


def test_a_failed_start_shows_the_new_process_own_output(spare, tmp_path, monkeypatch):
    start_local_tidb(spare)  # the log now holds a server's "server is running" lines
    stop_local_tidb(spare)
    failing = tmp_path / "tidb-server"
    failing.write_text("#!/bin/sh\necho 'cannot open the store: it is locked' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setenv("TIDB_SERVER_BIN", str(failing))
    with pytest.raises(TiDBStartTimeout) as failed:
        start_local_tidb(spare)
    message = str(failed.value)
    assert "exit code 3" in message and "cannot open the store" in message
    assert "server is running" not in message
    assert not spare.pid_file.exists()


def test_fresh_start_begins_with_empty_data(spare):
    start_local_tidb(spare, fresh=True)
    databases = {row[0] for row in run_sql(spare, "SHOW DATABASES")}
    assert "keep" not in databases
    assert "mysql" in databases


def test_down_when_nothing_runs_says_so(spare):
    stop_local_tidb(spare)
    assert stop_local_tidb(spare) is False
    result = subprocess.run([*CRM_TIDB, "down"], env=cli_env(spare), capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0
    assert "not running" in result.stdout


def test_a_running_server_on_other_ports_is_named_not_waited_on(spare):
    # The folder's server listens elsewhere: nothing answers on the ports asked for.
    start_local_tidb(spare)
    try:
        port, status_port = free_ports(2)
        elsewhere = replace(spare, port=port, status_port=status_port)
        with pytest.raises(ConfigError) as caught:
            start_local_tidb(elsewhere, timeout=5)
        assert local_tidb_status(spare).running
    finally:
        stop_local_tidb(spare)  # the next tests expect the module's server stopped
    message = str(caught.value)
    assert f"on ports {spare.port}/{spare.status_port}, not on {elsewhere.port}/" in message
    assert f"TIDB_PORT={spare.port}" in message and "TIDB_LOCAL_HOME" in message


def test_port_held_by_another_program_is_named(spare):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            start_local_tidb(replace(spare, port=busy))
    message = str(caught.value)
    assert f"Port {busy}" in message
    assert "--port" in message and "TIDB_PORT" in message
    assert not local_tidb_status(spare).running


def test_cli_up_status_url_down(spare):
    env = cli_env(spare)
    up = subprocess.run([*CRM_TIDB, "up"], env=env, capture_output=True, text=True, check=True)
    assert f"tidb://root:***@127.0.0.1:{spare.port}" in up.stdout
    assert "ready in" in up.stdout and "already running" not in up.stdout
    again = subprocess.run([*CRM_TIDB, "up"], env=env, capture_output=True, text=True,
                           check=True)
    pid = local_tidb_status(spare).pid
    assert f"already running (pid {pid})" in again.stdout and "ready in" not in again.stdout
    status = subprocess.run([*CRM_TIDB, "status"], env=env, capture_output=True, text=True,
                            check=False)
    assert status.returncode == 0 and "is running" in status.stdout
    down = subprocess.run([*CRM_TIDB, "down"], env=env, capture_output=True, text=True,
                          check=True)
    assert "stopped" in down.stdout
    status = subprocess.run([*CRM_TIDB, "status"], env=env, capture_output=True, text=True,
                            check=False)
    assert status.returncode == 3 and "not running" in status.stdout


def servers_of(local: LocalTiDB) -> list[str]:
    """Command lines of live tidb-server processes that use `local`'s data folder or ports.

    Only this test's own server can match: other servers on the machine (another user's, or
    the session's) have other folders and ports, and a server that is being reaped (a zombie)
    has no command line left.
    """
    listing = subprocess.run(["ps", "-axww", "-o", "command="], capture_output=True, text=True,
                             check=True).stdout
    ports = {f"-P={local.port}", f"--status={local.status_port}"}
    return [line for line in listing.splitlines()
            if "tidb-server" in line
            and (f"--path={local.data_dir}" in line or ports & set(line.split()))]


def nothing_started_for(local: LocalTiDB) -> None:
    assert servers_of(local) == []
    assert list(local.home.iterdir()) == []  # no pid file, data or logs
    for port in (local.port, local.status_port):
        with socket.socket() as probe:
            assert probe.connect_ex((local.host, port)) != 0, f"something listens on {port}"


@pytest.fixture
def unused_local(tmp_path: Path) -> LocalTiDB:
    """Where `crm-tidb up` would start a local TiDB: an empty folder and two free ports."""
    port, status_port = free_ports(2)
    return LocalTiDB(home=tmp_path, port=port, status_port=status_port)


def test_servers_of_sees_only_this_tests_own_server(spare):
    start_local_tidb(spare)
    (line,) = servers_of(spare)
    assert f"--path={spare.data_dir}" in line
    port, status_port = free_ports(2)
    elsewhere = LocalTiDB(home=spare.home / "elsewhere", port=port, status_port=status_port)
    assert servers_of(elsewhere) == []


def test_spare_tidb_stops_its_frozen_server_when_the_test_is_interrupted(tmp_path):
    with pytest.raises(KeyboardInterrupt), spare_tidb(tmp_path / "own") as local:
        os.kill(local_tidb_status(local).pid, signal.SIGSTOP)
        raise KeyboardInterrupt
    assert servers_of(local) == []
    assert not local_tidb_status(local).running


def test_tidb_url_is_used_and_nothing_is_started(unused_local, tidb_settings):
    # The session's own URL, password included: a user's TiDB usually has a root password.
    target = tidb_settings.url()
    env = cli_env(unused_local, TIDB_URL=target.render_as_string(hide_password=False))
    up = subprocess.run([*CRM_TIDB, "up"], env=env, capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    assert "nothing local is started" in up.stdout
    if tidb_settings.password:
        assert tidb_settings.password not in up.stdout + up.stderr
    nothing_started_for(unused_local)


def test_tidb_url_to_a_down_server_fails_clearly_and_starts_nothing(unused_local):
    env = cli_env(unused_local, TIDB_URL=f"tidb://root:Not-Shown-9@127.0.0.1:{free_port()}/x")
    up = subprocess.run([*CRM_TIDB, "up"], env=env, capture_output=True, text=True, check=False)
    assert up.returncode == 1
    assert "Cannot reach TiDB" in up.stderr and "crm-tidb up" in up.stderr
    assert "Not-Shown-9" not in up.stderr + up.stdout
    nothing_started_for(unused_local)

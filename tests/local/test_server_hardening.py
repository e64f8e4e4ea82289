"""The local tidb-server: clean environment, localhost-only ports, ready with a root password."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest

from crm_helpers.analysis import reading
from crm_helpers.analysis.reading import read_frame
from crm_helpers.config import load_settings
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import ConfigError, TiDBAuthError, TiDBTimeout
from crm_helpers.local.server import (
    LocalTiDB,
    ensure_tidb,
    local_tidb_status,
    start_local_tidb,
    stop_local_tidb,
)
from crm_helpers.local.server_config import DEFAULT_SERVER_MEMORY_LIMIT, MEMORY_LIMIT_VARIABLE
from tests.conftest import cli_env, spare_tidb

pytestmark = pytest.mark.lifecycle

ROOT_PASSWORD = "Root-Pw-For-Probe-3"


@pytest.fixture(scope="module")
def spare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTiDB]:
    """A local TiDB of this module, started with TIDB_PASSWORD in the starting environment."""
    with spare_tidb(tmp_path_factory.mktemp("hardened-tidb"), start=False) as local:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TIDB_PASSWORD", ROOT_PASSWORD)
            patch.setenv("CRM_APP_PASSWORD", "App-Pw-Not-For-Tidb-4")
            start_local_tidb(local)
        yield local


def server_pid(local: LocalTiDB) -> int:
    pid = local_tidb_status(local).pid
    assert pid is not None
    return pid


def test_server_environment_holds_no_secret(spare):
    environ = Path(f"/proc/{server_pid(spare)}/environ").read_bytes()
    names = {entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if entry}
    assert ROOT_PASSWORD.encode() not in environ
    assert b"App-Pw-Not-For-Tidb-4" not in environ
    assert not {name for name in names if name.startswith(("TIDB_", "CRM_"))}
    assert names <= {"PATH", "HOME", "TZ", "LANG", "LC_ALL", "GOMAXPROCS", "GOMEMLIMIT", "GOGC",
                     "GOTRACEBACK"}


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) of sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_both_ports_listen_on_localhost_only(spare):
    loopback = {"0100007F"}  # 127.0.0.1 in /proc/net/tcp's byte order
    assert listening_addresses(spare.port) == loopback
    assert listening_addresses(spare.status_port) == loopback


def run_as_root(local: LocalTiDB, password: str, statement: str) -> None:
    connection = pymysql.connect(host=local.host, port=local.port, user="root",
                                 password=password, autocommit=True, read_timeout=30)
    with connection, connection.cursor() as cursor:
        cursor.execute(statement)


@pytest.fixture
def root_password(spare: LocalTiDB) -> Iterator[str]:
    """Root of the spare TiDB has a password during the test (removed afterwards)."""
    run_as_root(spare, "", f"ALTER USER 'root'@'%' IDENTIFIED BY '{ROOT_PASSWORD}'")
    yield ROOT_PASSWORD
    start_local_tidb(spare)
    run_as_root(spare, ROOT_PASSWORD, "ALTER USER 'root'@'%' IDENTIFIED BY ''")


def settings_for(local: LocalTiDB, monkeypatch: pytest.MonkeyPatch, **extra: str):
    """Local settings for `local`; ensure_tidb then finds it in its own folder.

    ensure_tidb looks for the local server in TIDB_LOCAL_HOME: left at the session's folder,
    it would look at the session's server (or, with TIDB_URL, at no server) instead of `local`.
    """
    monkeypatch.setenv("TIDB_LOCAL_HOME", str(local.home))
    return load_settings(environ={"TIDB_PORT": str(local.port),
                                  "TIDB_STATUS_PORT": str(local.status_port), **extra},
                         env_file=None)


def test_server_with_a_root_password_is_ready_at_once(spare, root_password, monkeypatch):
    stop_local_tidb(spare)
    start_local_tidb(spare, timeout=60)  # the probe took the refused login as "up"
    settings = settings_for(spare, monkeypatch, TIDB_PASSWORD=root_password)
    assert ensure_tidb(settings) == settings
    stop_local_tidb(spare)
    up = subprocess.run([sys.executable, "-m", "crm_helpers.local.cli", "up"],
                        env=cli_env(spare, TIDB_PASSWORD=root_password), capture_output=True,
                        text=True, check=False, timeout=120)
    assert up.returncode == 0, up.stderr
    assert "TiDB is ready" in up.stdout
    assert root_password not in up.stdout + up.stderr


def test_wrong_root_password_is_named_not_waited_on(spare, root_password, monkeypatch):
    with pytest.raises(TiDBAuthError, match="TIDB_PASSWORD"):
        ensure_tidb(settings_for(spare, monkeypatch, TIDB_PASSWORD="Not-The-Password-5"))


def test_no_password_reaches_tidbs_logs(spare, root_password, monkeypatch):
    ensure_tidb(settings_for(spare, monkeypatch, TIDB_PASSWORD=root_password))
    for log in spare.home.glob("*.log"):
        assert root_password not in log.read_text(errors="replace"), log.name



@contextmanager
def frozen_after(local: LocalTiDB, seconds: float) -> Iterator[None]:
    """SIGSTOP the server `seconds` from now (mid-statement), SIGCONT it on leaving."""
    pid = server_pid(local)
    timer = threading.Timer(seconds, os.kill, (pid, signal.SIGSTOP))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("chunksize", [None, 10], ids=["whole", "chunked"])
@pytest.mark.parametrize("path", ["connectorx", "pandas.read_sql"])
def test_a_frozen_server_is_reported_not_waited_on(spare, monkeypatch, path, chunksize):
    engine = tidb_engine(settings_for(spare, monkeypatch, TIDB_READ_TIMEOUT="4").url())
    if path == "pandas.read_sql":
        monkeypatch.setattr(reading, "connectorx", None)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            if chunksize:
                list(read_frame(engine, "SELECT SLEEP(2) AS slept", chunksize=chunksize))
            else:
                read_frame(engine, "SELECT SLEEP(2) AS slept")
        except BaseException as exc:  # handed back to the test, whatever it is
            errors.append(exc)

    with frozen_after(spare, 1.0):
        worker = threading.Thread(target=read, daemon=True)
        worker.start()
        started = time.monotonic()
        worker.join(30)
        assert not worker.is_alive(), "read_frame still waits on a frozen server after 30 s"
        waited = time.monotonic() - started
    engine.dispose()
    assert errors and isinstance(errors[0], TiDBTimeout), errors
    assert "TIDB_READ_TIMEOUT, now 4 s" in str(errors[0])
    assert waited < 4 + 12, f"TiDBTimeout came after {waited:.0f} s, read timeout 4 s"


def global_memory_limit(local: LocalTiDB) -> str:
    connection = pymysql.connect(host=local.host, port=local.port, user="root", password="")
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.tidb_server_memory_limit")
        return cursor.fetchone()[0]


def test_the_local_tidb_is_memory_bounded_and_the_bound_is_a_setting(tmp_path, monkeypatch):
    # TiDB's own bound is 80% of the machine: a 1,000,000-order load took it to 4.5 GB.
    monkeypatch.delenv(MEMORY_LIMIT_VARIABLE, raising=False)
    with spare_tidb(tmp_path / "bounded") as local:
        assert global_memory_limit(local) == DEFAULT_SERVER_MEMORY_LIMIT
        stop_local_tidb(local)
        monkeypatch.setenv(MEMORY_LIMIT_VARIABLE, "3gb")
        start_local_tidb(local)
        assert global_memory_limit(local) == "3GB"
        stop_local_tidb(local)
        # TiDB would raise 100MB to 512MB with only a warning: refused before starting.
        monkeypatch.setenv(MEMORY_LIMIT_VARIABLE, "100MB")
        with pytest.raises(ConfigError, match=f"{MEMORY_LIMIT_VARIABLE}.*512MB"):
            start_local_tidb(local)
        assert not local_tidb_status(local).running

"""Faults on the way to TiDB end in the project's errors, in bounded time; bad ports are refused.

The "servers" that never answer, or answer garbage, are sockets opened by the test itself:
they stand for a wrong port (another program, TiDB's HTTP status port) or a frozen server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ArgumentError, OperationalError

from crm_helpers.analysis.reading import read_frame
from crm_helpers.config import load_settings
from crm_helpers.engines import check_connection, tidb_engine
from crm_helpers.errors import ConfigError, TiDBProtocolError, TiDBTimeout
from crm_helpers.local.server import LocalTiDB, _status_endpoint
from tests.conftest import outcome_within

#: A hang is reported as a failure after this many seconds instead of blocking the suite.
BOUND = 30.0

SILENT = b""
GARBAGE = {
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    "short-packet": b"\x05\x00\x00\x00\x0agarbage",
    "bytes": b"\xff" * 64,
    "ssh": b"SSH-2.0-OpenSSH_9.2\r\n",
}


@contextmanager
def fake_server(payload: bytes) -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections, sends `payload` and then stays silent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            accepted.append(client)
            if payload:
                client.sendall(payload)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for client in accepted:
            client.close()


def test_defaults_bound_every_wait():
    engine = create_engine("tidb://root@127.0.0.1:4000/x")
    _, options = engine.dialect.create_connect_args(engine.url)
    assert (options["connect_timeout"], options["read_timeout"], options["write_timeout"]) == (
        10, 300, 300)


def test_timeout_settings_reach_the_project_urls():
    settings = load_settings(environ={"TIDB_CONNECT_TIMEOUT": "2.5", "TIDB_READ_TIMEOUT": "40"},
                             env_file=None)
    engine = create_engine(settings.url())
    _, options = engine.dialect.create_connect_args(engine.url)
    assert (options["connect_timeout"], options["read_timeout"], options["write_timeout"]) == (
        2.5, 40, 40)


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_bad_timeout_setting_is_refused(value):
    with pytest.raises(ConfigError, match=f"TIDB_READ_TIMEOUT is '{value}'"):
        load_settings(environ={"TIDB_READ_TIMEOUT": value}, env_file=None)


def test_port_that_never_answers_is_reported_not_waited_on():
    with fake_server(SILENT) as port:
        url = f"tidb://root:Silent-Pw-1@127.0.0.1:{port}/x?connect_timeout=2"
        error = outcome_within(BOUND, lambda: check_connection(url))
    assert isinstance(error, TiDBProtocolError), error
    message = str(error)
    assert "no MySQL greeting within 2 s" in message
    assert "TIDB_PORT" in message and "TIDB_CONNECT_TIMEOUT" in message
    assert "Silent-Pw-1" not in message


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_port_that_answers_garbage_is_not_taken_for_tidb(kind):
    with fake_server(GARBAGE[kind]) as port:
        url = f"tidb://root@127.0.0.1:{port}/x"
        error = outcome_within(BOUND, lambda: tidb_engine(url))
    assert isinstance(error, TiDBProtocolError), error
    assert "did not act as a MySQL server" in str(error)


def test_plain_sqlalchemy_engine_and_read_frame_are_bounded_too():
    with fake_server(SILENT) as port:
        # A plain tidb:// engine: the dialect's bound, SQLAlchemy's OperationalError.
        engine = create_engine(f"tidb://root@127.0.0.1:{port}/x?connect_timeout=2")

        def query() -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        error = outcome_within(BOUND, query)
        assert isinstance(error, OperationalError) and error.orig.args[0] == 2012, error
        assert "no MySQL greeting within 2 s" in str(error)
        error = outcome_within(BOUND, lambda: read_frame(engine, "SELECT 1"))
        assert isinstance(error, OperationalError), error


def test_project_engine_names_the_settings_to_check():
    with fake_server(SILENT) as port:
        settings = load_settings(environ={"TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(port),
                                          "TIDB_CONNECT_TIMEOUT": "2"}, env_file=None)
        engine = create_engine(settings.url())

        def query() -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        error = outcome_within(BOUND, query)
        assert isinstance(error, TiDBProtocolError) and isinstance(error, OperationalError)
        assert "TIDB_CONNECT_TIMEOUT (now 2 s)" in str(error)


def test_statement_longer_than_the_read_timeout_is_reported(monkeypatch):
    monkeypatch.setenv("TIDB_READ_TIMEOUT", "1")
    engine = tidb_engine(load_settings().url())

    def slow() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT SLEEP(4)"))

    error = outcome_within(BOUND, slow)
    engine.dispose()
    assert isinstance(error, TiDBTimeout), error
    assert "TIDB_READ_TIMEOUT, now 1 s" in str(error)


def test_the_connect_timeout_does_not_cut_long_statements(monkeypatch):
    # Opening waits at most 1 s per answer, yet a 3 s statement gets its full read timeout.
    monkeypatch.setenv("TIDB_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("TIDB_READ_TIMEOUT", "20")
    engine = tidb_engine(load_settings().url())
    with engine.connect() as connection:
        assert connection.execute(text("SELECT SLEEP(3)")).scalar() == 0
    engine.dispose()


def test_status_endpoint_that_answers_garbage_counts_as_no_status():
    with fake_server(GARBAGE["ssh"]) as port:
        local = LocalTiDB(port=port + 1 if port < 65535 else port - 1, status_port=port)
        assert outcome_within(BOUND, lambda: _status_endpoint(local)) is None
    with fake_server(SILENT) as port:
        local = LocalTiDB(port=port + 1 if port < 65535 else port - 1, status_port=port)
        assert outcome_within(BOUND, lambda: _status_endpoint(local)) is None


# --- ports -------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["0", "70000", "-1", "abc", "4000.5"])
def test_invalid_port_in_tidb_url_is_refused(port):
    with pytest.raises(ConfigError, match="port") as caught:
        load_settings(environ={"TIDB_URL": f"tidb://root:Pw-In-Url-7@127.0.0.1:{port}/x"},
                      env_file=None)
    assert "Pw-In-Url-7" not in str(caught.value)


def test_tidb_url_without_port_means_4000():
    settings = load_settings(environ={"TIDB_URL": "tidb://root@db.example/x"}, env_file=None)
    assert settings.port == 4000


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_invalid_port_in_a_plain_engine_url_is_refused(port):
    # The dialect's own error: SQLAlchemy's ArgumentError, raised before any connection.
    with pytest.raises(ArgumentError, match=f"port in the URL is {port}"):
        create_engine(f"tidb://root@127.0.0.1:{port}/x")


@pytest.mark.parametrize("field", ["port", "status_port"])
@pytest.mark.parametrize("port", [0, 70000])
def test_local_tidb_refuses_invalid_ports(tmp_path, field, port):
    with pytest.raises(ConfigError, match="1 to 65535"):
        LocalTiDB(home=tmp_path, **{field: port})


def test_local_tidb_refuses_one_port_for_both(tmp_path):
    with pytest.raises(ConfigError, match="two different ports"):
        LocalTiDB(home=tmp_path, port=4999, status_port=4999)


@pytest.mark.parametrize("flag", ["--port", "--status-port"])
@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_cli_refuses_invalid_ports_without_a_traceback(tmp_path, flag, port):
    env = {"PATH": "/usr/bin:/bin", "TIDB_LOCAL_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "crm_helpers.local.cli", "up", flag, port],
                            env=env, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert f"{flag} is '{port}'; it must be a port number from 1 to 65535" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tidb.pid").exists()

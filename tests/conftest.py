"""Fixtures for the helper tests: a throwaway database and engines on the session's TiDB.

Also the shared pieces of the tests that run a TiDB of their own (`spare_tidb`, `cli_env`)
or wait on something that may hang (`outcome_within`).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, MetaData

from crm_helpers.analysis.generate import generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import (
    analysis_engine,
    analysis_orders,
    analysis_users,
    reset_analysis_tables,
)
from crm_helpers.config import Settings
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import TiDBStillStopping
from crm_helpers.local.server import (
    LocalTiDB,
    ServerTLS,
    local_tidb_status,
    start_local_tidb,
    stop_local_tidb,
)

if TYPE_CHECKING:
    from tests.bad_input import Ctx

#: Test modules whose outcome does not depend on where the session's TiDB is: they reach it
#: only through an engine built from the settings (which the notebooks and the tests left in
#: those passes build on every port and URL), or not at all. The second and third CI passes
#: (`make test-elsewhere`, `make test-external`) skip them by their marker; `make test` runs them.
SAME_EVERYWHERE = {
    # validation and refusals, decided before or apart from the connection
    "tests/test_bad_input.py",
    "tests/lesson/test_bad_input_lesson.py",
    "tests/analysis/test_bad_input_analysis.py",
    "tests/local/test_bad_input_local.py",
    "tests/test_bad_input_more.py",
    "tests/analysis/test_float32_loading.py",
    "tests/test_config.py",
    "tests/test_language.py",
    "tests/local/test_tidb_build.py",
    "tests/notebooks/test_notebook_models.py",
    "tests/packaging/test_packaging.py",
    "tests/lesson/test_model_checks.py",
    "tests/analysis/test_generate.py",
    # SQL semantics on a scratch database: the same rows and errors on any TiDB
    "tests/lesson/test_crm.py",
    "tests/lesson/test_transactions.py",
    "tests/analysis/test_frames.py",
    "tests/analysis/test_loading.py",
    "tests/analysis/test_loading_integrity.py",
    "tests/analysis/test_loading_read_back.py",
    "tests/analysis/test_reading.py",
    "tests/analysis/test_read_only.py",
    "tests/analysis/test_statistics.py",
    # the committed notebooks' text and outputs (nbval re-runs the notebooks in every pass)
    "tests/notebooks/test_notebook_lessons.py",
    "tests/notebooks/test_japanese_edition.py",
    "tests/notebooks/test_japanese_text.py",
    "tests/lesson/test_exercises.py",
    "tests/notebooks/test_exercise_notebooks.py",
    # the dialect's behaviour on a URL it is given (its connection options stay in every pass)
    "sqlalchemy-tidb/test/test_alembic.py",
    "sqlalchemy-tidb/test/test_async.py",
    "sqlalchemy-tidb/test/test_dialect.py",
    "sqlalchemy-tidb/test/test_dialect_sequences.py",
    "sqlalchemy-tidb/test/test_dialect_server.py",
    "sqlalchemy-tidb/test/test_dialect_tables.py",
    "sqlalchemy-tidb/test/test_dialect_vector.py",
    "sqlalchemy-tidb/test/test_errors.py",
    "sqlalchemy-tidb/test/test_stale_read.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(config.rootpath).as_posix() in SAME_EVERYWHERE:
            item.add_marker(pytest.mark.same_everywhere)


#: Every database and account a test makes on the session's TiDB, and the dialect's own tests'
#: databases, start with one of these. Such tests run beside others (make test's workers), so
#: a test that watches the whole server for changes leaves these names out.
THROWAWAY_PREFIXES = ("crm_pytest", "sqla_tidb_")


@contextmanager
def throwaway_database(settings: Settings, prefix: str = "crm_pytest") -> Iterator[str]:
    """The name of a new, empty database on `settings`' TiDB, dropped on leaving."""
    if not prefix.startswith(THROWAWAY_PREFIXES):
        raise ValueError(f"a throwaway database's name starts with one of {THROWAWAY_PREFIXES}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = tidb_engine(settings.url())
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
        yield name
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@contextmanager
def analysis_database_with(settings: Settings, prefix: str, tables: MetaData) -> Iterator[str]:
    """A throwaway database holding `tables` beside the analysis tables `analysis_engine` makes."""
    with throwaway_database(settings, prefix) as name:
        engine = analysis_engine(settings, database=name)
        tables.create_all(engine)
        engine.dispose()
        yield name


@contextmanager
def fresh_analysis_engine(settings: Settings, database: str, *, emptied: tuple[str, ...] = (),
                          users: int = 0) -> Iterator[Engine]:
    """An analysis engine on `database`: tables reset, `emptied` truncated, `users` loaded."""
    engine = analysis_engine(settings, database=database)
    reset_analysis_tables(engine)
    with engine.begin() as connection:
        for table in emptied:
            connection.exec_driver_sql(f"TRUNCATE TABLE {table}")
    if users:
        load_frame(engine, analysis_users, generate_users(users), progress=False)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def loaded_analysis_database(settings: Settings, prefix: str, users: int,
                             orders: int) -> Iterator[Engine]:
    """An engine on a throwaway analysis database holding `users` users and `orders` orders."""
    with throwaway_database(settings, prefix) as name:
        engine = analysis_engine(settings, database=name)
        try:
            load_frame(engine, analysis_users, generate_users(users), progress=False)
            load_frame(engine, analysis_orders, generate_orders(orders, users), progress=False)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def test_database(tidb_settings: Settings) -> Iterator[str]:
    """A database created for this test session and dropped at its end."""
    with throwaway_database(tidb_settings) as name:
        yield name


@pytest.fixture(scope="session")
def scratch_engine(tidb_settings: Settings, test_database: str) -> Iterator[Engine]:
    """An engine on the session's scratch database (`test_database`), as its admin user."""
    scratch_engine = tidb_engine(tidb_settings.url(test_database))
    yield scratch_engine
    scratch_engine.dispose()


@pytest.fixture(scope="session")
def bad_input_ctx(tidb_settings: Settings, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Ctx]:
    """The databases and engines every bad-input case runs on (tests/bad_input.py)."""
    from tests.bad_input import sweep_context  # it imports this module's free_port

    with sweep_context(tidb_settings, tmp_path_factory.mktemp("sweep")) as ctx:
        yield ctx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different TCP ports on 127.0.0.1 that nothing listens on right now."""
    # All probes stay bound until every port is chosen: two probes in a row may be handed the
    # same port (seen in CI: "The SQL port and the status port are both 46623"). Under
    # pytest-xdist each worker keeps to the ports that are its own modulo the number of
    # workers, so that two workers never pick the same one before either server binds it.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    ports: list[int] = []
    with ExitStack() as stack:
        while len(ports) < count:
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port % workers == worker:
                ports.append(port)
    return ports


@contextmanager
def spare_tidb(home: Path, *, start: bool = True, tls: ServerTLS | None = None,
               txn_total_size_limit: int | None = None) -> Iterator[LocalTiDB]:
    """A local TiDB of its own in `home` on two free ports, stopped on leaving, whatever happened.

    It is never the session's server: everything here goes by its own folder's pid file, so
    a test may stop, freeze or kill it. With `start=False` the test starts it itself.
    """
    port, status_port = free_ports(2)
    local = LocalTiDB(home=home, port=port, status_port=status_port, tls=tls,
                      txn_total_size_limit=txn_total_size_limit)
    try:
        if start:
            start_local_tidb(local)
        yield local
    finally:
        _stop_spare(local)


def _stop_spare(local: LocalTiDB) -> None:
    pid = local_tidb_status(local).pid
    if pid is None:
        stop_local_tidb(local)  # clears a stale pid file
        return
    os.kill(pid, signal.SIGCONT)  # a test may have left it frozen (SIGSTOP)
    try:
        stop_local_tidb(local, stall_timeout=30)
    except TiDBStillStopping:
        # A test server's data is worth nothing; a server left running is worse.
        os.kill(pid, signal.SIGKILL)
        stop_local_tidb(local)


#: `crm-tidb` as the tests run it: this interpreter's copy of the CLI.
CRM_TIDB = [sys.executable, "-m", "crm_helpers.local.cli"]


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """`folder` as a tmpfs of `size` (say "2m"), unmounted on leaving; skips where none mounts."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def cli_env(local: LocalTiDB, **extra: str) -> dict[str, str]:
    """This process's environment for `crm-tidb`, pointed at `local` (no TIDB_*/CA_PATH of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDB_", "CA_PATH"))}
    return {**env, "TIDB_LOCAL_HOME": str(local.home), "TIDB_PORT": str(local.port),
            "TIDB_STATUS_PORT": str(local.status_port), **extra}


def outcome_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run `call` in a thread: the exception it raised (None if none); fail if it hangs."""
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed back to the test, whatever it is
            result.append(exc)
        else:
            result.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"still waiting after {seconds:.0f} s: it hangs")
    return result[0]

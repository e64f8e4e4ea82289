"""Lifecycle of the project's local TiDB: one `tidb-server --store=unistore` process.

Data, logs and the pid file live in `.tidb/` at the project root (gitignored), so data
persists across `stop_local_tidb()` / `start_local_tidb()` until `fresh=True` wipes it.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pymysql
from sqlalchemy.engine import URL

from crm_helpers.config import (
    DEFAULT_PORT,
    DEFAULT_STATUS_PORT,
    LOCAL_HOST,
    PROJECT_ROOT,
    Settings,
    check_port,
    load_settings,
    mask_url,
)
from crm_helpers.engines import check_connection
from crm_helpers.errors import (
    ConfigError,
    PortInUse,
    TiDBDiskFull,
    TiDBStartTimeout,
    TiDBStillStopping,
    error_code,
)
from crm_helpers.local.build import tidb_server_binary
from crm_helpers.local.processes import (
    Report,
    alive,
    children,
    command_line,
    forget_pid,
    forget_stale_pid,
    hold_start_lock,
    running_pid,
    wait_for_exit,
    write_pid,
)
from crm_helpers.local.recovery import check_after_unclean_stop, record_damage
from crm_helpers.local.server_config import (
    MEMORY_LIMIT_VARIABLE,
    server_environment,
    server_memory_limit,
    write_config,
)

DEFAULT_HOME = PROJECT_ROOT / ".tidb"


@dataclass(frozen=True)
class ServerTLS:
    """A certificate and key for a local tidb-server to offer TLS with (PEM files).

    To refuse clients without TLS, run `SET GLOBAL require_secure_transport = ON` over a TLS
    connection (TiDB 8.5 has no configuration item for it any more).
    """

    cert: Path
    key: Path


@dataclass(frozen=True)
class LocalTiDB:
    """Where one local tidb-server keeps its files and which ports it listens on."""

    home: Path = DEFAULT_HOME
    port: int = DEFAULT_PORT
    status_port: int = DEFAULT_STATUS_PORT
    host: str = LOCAL_HOST
    #: TLS for the SQL port; None (the project's default) serves plain TCP on localhost only.
    tls: ServerTLS | None = None
    #: performance.txn-total-size-limit in bytes; None leaves TiDB's default, which TiDB v6.5+
    #: does not enforce (a transaction is bounded by tidb_mem_quota_query instead).
    txn_total_size_limit: int | None = None

    def __post_init__(self) -> None:
        check_port(self.port, "The SQL port (--port, TIDB_PORT)")
        check_port(self.status_port, "The status port (--status-port, TIDB_STATUS_PORT)")
        if self.port == self.status_port:
            raise ConfigError(
                f"The SQL port and the status port are both {self.port}; TiDB needs two "
                "different ports. Give another one with --status-port or TIDB_STATUS_PORT.")
        _check_home(self.home)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "tidb.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "tidb.pid"

    @property
    def running_marker(self) -> Path:
        """Written at start, removed once the server has shut down cleanly."""
        return self.home / "tidb.running"

    @property
    def stopping_marker(self) -> Path:
        """Written when `stop_local_tidb` asks the server to shut down."""
        return self.home / "tidb.stopping"

    @property
    def start_lock(self) -> Path:
        """Locked (flock) by whoever is starting the server, so two starts never overlap."""
        return self.home / "tidb.start.lock"

    @property
    def damage_file(self) -> Path:
        """The tables found damaged after an unclean stop, until they are repaired."""
        return self.home / "damaged-tables.json"

    def url(self, database: str | None = None) -> URL:
        """The root URL of this server (the local root user has no password)."""
        return URL.create("tidb", username="root", password="", host=self.host,
                          port=self.port, database=database, query={"charset": "utf8mb4"})


@dataclass(frozen=True)
class ServerStatus:
    """What `local_tidb_status()` found."""

    running: bool
    pid: int | None
    url: str
    version: str | None = None

    def __str__(self) -> str:
        if not self.running:
            return f"Local TiDB is not running (it would listen at {self.url})."
        return f"Local TiDB {self.version or ''} is running (pid {self.pid}) at {self.url}."


def local_tidb(settings: Settings | None = None) -> LocalTiDB:
    """The local server of the settings' ports, kept in `TIDB_LOCAL_HOME` (default `.tidb/`)."""
    settings = _settings(settings)
    # '~' as a shell would read it: a .env or a quoted value keeps it literal.
    home = Path(os.environ.get("TIDB_LOCAL_HOME") or DEFAULT_HOME).expanduser()
    return LocalTiDB(home=home, port=settings.port, status_port=settings.status_port)


def start_local_tidb(local: LocalTiDB | None = None, *, fresh: bool = False,
                     timeout: float = 180.0, report: Report | None = None) -> LocalTiDB:
    """Start the local TiDB (or find it already running) and return once it answers SQL.

    If the previous server died without a clean shutdown, every table of the project's
    databases is checked once it answers; damaged ones are reported through `report` (or as
    a `CrashDamageWarning`) and kept in `damage_file` until `crm-tidb repair`.
    """
    local = local or local_tidb()
    binary = tidb_server_binary()
    # A second `crm-tidb up` (or notebook) waits here until the first has started the server,
    # then finds it running: two starts at once would each launch a tidb-server.
    with hold_start_lock(local, timeout, report):
        return _start_locked(local, binary, fresh=fresh, timeout=timeout, report=report)


def _start_locked(local: LocalTiDB, binary: Path, *, fresh: bool, timeout: float,
                  report: Report | None) -> LocalTiDB:
    pid = running_pid(local)
    if pid is not None and local.stopping_marker.exists():
        # An interrupted `down`: let that clean shutdown finish before starting again.
        _wait_for_clean_exit(local, pid, report=report)
        pid = None
    if pid is not None and fresh:
        stop_local_tidb(local, report=report)
        pid = None
    if pid is not None:
        _check_same_ports(local, pid)
        try:
            _wait_until_ready(local, pid, timeout)
            return local
        except _ServerExited:
            # It was dying when we looked (a kill -9 takes a moment to finish): no server
            # runs, so start one, as after any unclean stop.
            wait_for_exit(pid, 10.0)
    unclean = not fresh and _stopped_uncleanly(local)
    forget_stale_pid(local)
    local.stopping_marker.unlink(missing_ok=True)
    _check_port_free(local.host, local.port, "--port", "TIDB_PORT")
    _check_port_free(local.host, local.status_port, "--status-port", "TIDB_STATUS_PORT")
    if fresh:
        shutil.rmtree(local.data_dir, ignore_errors=True)
        record_damage(local, [])
    limit = server_memory_limit()  # a bad value is refused before anything starts
    config = write_config(local)
    # Both ports on `local.host` only (the status port would otherwise listen on every interface).
    # TiDB reads --path as the URL unistore://PATH: '#', '?' or '%XX' in a folder's name would
    # cut the path or change it (its data would go elsewhere), so the path is percent-encoded.
    command = [str(binary), "--store=unistore", f"--path={quote(str(local.data_dir))}",
               f"--host={local.host}", f"-P={local.port}", f"--status-host={local.host}",
               f"--status={local.status_port}", f"--config={config}"]
    # Where this start's own output begins: a failure shows that, not an earlier server's log.
    log_starts = {path: path.stat().st_size if path.is_file() else 0
                  for path in (local.home / "tidb-stderr.log", local.log_file)}
    with open(local.home / "tidb-stderr.log", "ab") as stderr:
        # A session of its own: the server outlives `crm-tidb up` and ignores the
        # terminal's Ctrl-C aimed at a notebook or pytest run.
        proc = subprocess.Popen(command, cwd=local.home, stdin=subprocess.DEVNULL,
                                stdout=stderr, stderr=stderr, start_new_session=True,
                                env=server_environment())
    children[proc.pid] = proc
    write_pid(local.pid_file, proc.pid)
    local.running_marker.write_text(f"{proc.pid}\n")
    try:
        _wait_until_ready(local, proc.pid, timeout)
    except _ServerExited:
        forget_pid(local, proc.pid)
        wrote = _new_log_lines(log_starts)
        if "no space left on device" in wrote.lower():
            raise TiDBDiskFull(
                f"tidb-server could not start: the disk holding {local.data_dir} is full "
                f"({_free_space(local.home)} free; its store needs room for at least one "
                "value-log file of a few hundred MB). Free space on that disk, or set "
                "TIDB_LOCAL_HOME to a folder on a larger one (moving the folder there keeps the "
                f"data), then `crm-tidb up` again. Full logs: {local.home}") from None
        raise TiDBStartTimeout(
            f"tidb-server exited while starting (exit code {proc.returncode}). What it wrote:\n"
            f"{wrote}\nFull logs: {local.home}") from None
    _bound_memory(local, limit)
    if unclean:
        check_after_unclean_stop(local, report)
    return local


#: TiDB's answers to a tidb_server_memory_limit it does not accept (wrong value, wrong type).
_BAD_VALUE_CODES = {1231, 1232, 8164}


def _bound_memory(local: LocalTiDB, limit: str) -> None:
    """Set the started server's tidb_server_memory_limit (server_config.server_memory_limit)."""
    try:
        connection = pymysql.connect(host=local.host, port=local.port, user="root",
                                     password="", connect_timeout=10, read_timeout=30,
                                     write_timeout=30, ssl_disabled=True)
        with connection, connection.cursor() as cursor:
            cursor.execute("SET GLOBAL tidb_server_memory_limit = %s", (limit,))
    except pymysql.err.MySQLError as exc:
        if error_code(exc) in _BAD_VALUE_CODES:
            raise ConfigError(f"{MEMORY_LIMIT_VARIABLE} is {limit!r}, which TiDB refuses "
                              f"({exc.args[-1]}): give at least 512MB, a share from 1% to 99%, "
                              "or 0 for no bound; the server runs, with its earlier bound."
                              ) from None
        # Root has a password of the user's, or TLS is required: the bound set before stays.


def stop_local_tidb(local: LocalTiDB | None = None, *, stall_timeout: float = 120.0,
                    max_wait: float = 1800.0, report: Report | None = None) -> bool:
    """Stop the local TiDB cleanly (SIGTERM) and wait for it. False if none was running.

    It is not killed: a clean shutdown writes what the store holds in memory to disk, and a
    kill would lose the last committed transactions. The wait goes on while the server shows
    signs of work (CPU, disk writes, log lines); after `stall_timeout` s without any, or
    `max_wait` s in all, TiDBStillStopping is raised and the server is left running. The one
    exception is a store that stopped writing (a full disk): its shutdown can never finish,
    and after STORE_STOPPED_GRACE s it is killed (`_kill_stuck_store`).
    """
    local = local or local_tidb()
    pid = running_pid(local)
    if pid is None:
        forget_stale_pid(local)
        local.stopping_marker.unlink(missing_ok=True)
        return False
    # The marker lets an interrupted `down` be finished by the next `up`; on a full disk it
    # cannot be written, and the server must stop all the same (it frees no space running).
    with contextlib.suppress(OSError):
        local.stopping_marker.write_text(f"{pid}\n")
    os.kill(pid, signal.SIGTERM)
    _wait_for_clean_exit(local, pid, stall_timeout=stall_timeout, max_wait=max_wait,
                         report=report)
    return True


def local_tidb_status(local: LocalTiDB | None = None) -> ServerStatus:
    """Whether the local TiDB runs, its pid, URL and version."""
    local = local or local_tidb()
    pid = running_pid(local)
    url = mask_url(local.url())
    if pid is None:
        return ServerStatus(running=False, pid=None, url=url)
    info = _status_endpoint(local)
    return ServerStatus(running=True, pid=pid, url=url,
                        version=info.get("version") if info else None)


def ensure_tidb(settings: Settings | None = None) -> Settings:
    """Make sure a TiDB answers: the user's (TIDB_URL / TIDB_HOST) or the local one."""
    settings = _settings(settings)
    if not settings.external:
        start_local_tidb(local_tidb(settings))
    check_connection(settings.url())
    return settings


def _settings(settings: Settings | None) -> Settings:
    if settings is None:
        return load_settings()
    if not isinstance(settings, Settings):
        raise ConfigError(f"Expected Settings (from crm_helpers.config.load_settings()), not "
                          f"{type(settings).__name__}; call it without arguments to use the "
                          "environment and .env.")
    return settings


def _stopped_uncleanly(local: LocalTiDB) -> bool:
    """True if the last server started here ended without its store's clean close."""
    marker = local.running_marker
    if not marker.exists():
        return False  # never started here, or stopped cleanly
    # unistore writes this file as the last step of a clean shutdown.
    lock_dump = local.data_dir / "lock_store"
    return not (lock_dump.exists() and lock_dump.stat().st_mtime >= marker.stat().st_mtime)


def _wait_for_clean_exit(local: LocalTiDB, pid: int, *, stall_timeout: float = 120.0,
                         max_wait: float = 1800.0, report: Report | None = None) -> None:
    """Wait for a server that was sent SIGTERM to exit, while it shows signs of work."""
    started = last_work = time.monotonic()
    activity = _activity(local, pid)
    next_report = started + 3.0
    while alive(pid):
        time.sleep(0.2)
        now = time.monotonic()
        if now - started > STORE_STOPPED_GRACE and (reason := _store_stopped_writing(local)):
            _kill_stuck_store(local, pid, reason, report)
            break
        if (current := _activity(local, pid)) != activity:
            activity, last_work = current, now
        waited = now - started
        if now - last_work > stall_timeout or waited > max_wait:
            raise TiDBStillStopping(
                f"tidb-server (pid {pid}) has been shutting down for {waited:.0f} s "
                f"({now - last_work:.0f} s without any sign of work). It is left running, "
                f"because killing it loses the transactions it has not written to disk yet. "
                f"See the end of {local.log_file}; run `crm-tidb down` again to keep waiting. "
                f"Only if it never ends: `kill -9 {pid}`, then `crm-tidb up` checks the tables.")
        if report and now >= next_report:
            report(f"Waiting for tidb-server (pid {pid}) to finish its clean shutdown "
                   f"({waited:.0f} s so far): it finishes open transactions and writes its "
                   f"in-memory data to {local.data_dir}. Ctrl-C stops waiting and leaves it "
                   "to finish by itself.")
            next_report = now + 10.0
    children.pop(pid, None)
    forget_pid(local, pid)
    local.stopping_marker.unlink(missing_ok=True)
    if not _stopped_uncleanly(local):
        local.running_marker.unlink(missing_ok=True)


#: Seconds a server whose store stopped writing gets to exit by itself after SIGTERM.
STORE_STOPPED_GRACE = 15.0
#: Less free space than this on the data disk: the store can write nothing more.
STORE_FULL_BYTES = 2**20
# What badger (TiDB's local store) logs when a write fails; the goroutine that failed (the
# memtable flusher, the value-log writer) then returns for good, and the store's Close,
# which hands it the last memtable, waits forever: the clean shutdown can never finish.
_STORE_WRITE_FAILED = (b"error while writing to level 0", b"handle requests failed")
#: How much of the end of tidb.log is searched for those lines.
_LOG_TAIL_BYTES = 4 * 2**20


def _store_stopped_writing(local: LocalTiDB) -> str | None:
    """Why the server's store can never finish a clean shutdown, or None if it still can."""
    try:
        free = shutil.disk_usage(local.data_dir).free
    except OSError:
        free = None
    if free is not None and free < STORE_FULL_BYTES:
        return f"the disk holding {local.data_dir} is full ({free / 2**20:.1f} MB free)"
    try:
        with open(local.log_file, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            tail = log.read()
    except OSError:
        return None
    tail = tail[tail.rfind(b"Welcome to TiDB"):]  # this server's own lines only
    line = next((line for line in tail.splitlines()
                 if any(text in line for text in _STORE_WRITE_FAILED)), None)
    if line is None:
        return None
    return f"its store failed a write and stopped writing ({line.decode(errors='replace')[:300]})"


def _kill_stuck_store(local: LocalTiDB, pid: int, reason: str, report: Report | None) -> None:
    """SIGKILL a server whose clean shutdown cannot finish (_store_stopped_writing says why).

    What it acknowledged is in its value log, which the next start replays; the start after
    an unclean stop also checks every table (crm_helpers.local.recovery).
    """
    if report:
        report(f"tidb-server (pid {pid}) cannot finish its clean shutdown: {reason}. Its store "
               "stops for good after a failed write and then waits forever at shutdown, so it "
               "is killed. Free space on that disk before `crm-tidb up`, which replays the "
               "store's log and checks every table.")
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid, 30.0)


def _activity(local: LocalTiDB, pid: int) -> tuple[int, ...]:
    """Signs that a process is working: CPU ticks (in steps of 0.2 s), bytes written, log size."""
    signs = []
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        signs.append((int(fields[11]) + int(fields[12])) // 20)  # utime + stime, in 1/100 s
    except (OSError, IndexError, ValueError):
        pass
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                signs.append(int(line.split()[1]))
    except (OSError, ValueError):
        pass
    for path in (local.log_file, local.home / "tidb-stderr.log"):
        try:
            signs.append(path.stat().st_size)
        except OSError:
            signs.append(-1)
    return tuple(signs)


# --- the folder: its lock and pid file ---------------------------------------------------

def _free_space(folder: Path) -> str:
    """The free space of `folder`'s disk, e.g. "12 MB" ("unknown" if it cannot be read)."""
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.0f} MB"
    except OSError:
        return "unknown"


def _check_home(home: Path) -> None:
    """ConfigError if `home` (TIDB_LOCAL_HOME) cannot be a folder: it, or a parent, is a file."""
    for path in (home, *home.parents):
        if path.exists():
            if path.is_dir():
                return
            named = "it is" if path == home else f"{path} is"
            raise ConfigError(
                f"TIDB_LOCAL_HOME is {home}, but {named} a file, not a folder: the local TiDB "
                "keeps its data, logs and pid file in a folder there. Set TIDB_LOCAL_HOME to a "
                "folder (it is created if missing), or unset it to use .tidb/ in the project.")


def _check_same_ports(local: LocalTiDB, pid: int) -> None:
    """ConfigError if the server running in `local.home` listens on other ports than `local`'s."""
    # Otherwise the wait below would poll ports nobody listens on until it times out, or find
    # another server there and take it for this folder's.
    arguments = command_line(pid).split()
    port = next((a.removeprefix("-P=") for a in arguments if a.startswith("-P=")), None)
    status = next((a.removeprefix("--status=") for a in arguments
                   if a.startswith("--status=")), None)
    if (port, status) in ((None, None), (str(local.port), str(local.status_port))):
        return
    raise ConfigError(
        f"The local TiDB in {local.home} already runs (pid {pid}) on ports {port}/{status}, "
        f"not on {local.port}/{local.status_port}: use TIDB_PORT={port} TIDB_STATUS_PORT="
        f"{status} (crm-tidb up --port {port} --status-port {status}), stop it first with "
        "`crm-tidb down`, or give this server another folder with TIDB_LOCAL_HOME.")


def _check_port_free(host: str, port: int, flag: str, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"Port {port} on {host} is already in use by another program, so the local "
                f"TiDB cannot listen there. Stop that program, or pick another port: "
                f"`crm-tidb up {flag} {port + 1}` or `{variable}={port + 1} make lab`."
            ) from None


def _status_endpoint(local: LocalTiDB) -> dict | None:
    url = f"http://{local.host}:{local.status_port}/status"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        return None


def _answers_sql(local: LocalTiDB) -> bool:
    """Whether the SQL port answers as a MySQL server does; no password is needed for that."""
    try:
        connection = pymysql.connect(host=local.host, port=local.port, user="root",
                                     password="", connect_timeout=2, read_timeout=2,
                                     write_timeout=2, ssl_disabled=True)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except pymysql.err.MySQLError as exc:
        # An error the server sent itself (e.g. 1045 when root has a password, 3159 when it
        # requires TLS) proves it is up; codes 2000-2999 are PyMySQL's own (no answer).
        code = error_code(exc)
        return code is not None and not 2000 <= code < 3000
    except OSError:
        return False


class _ServerExited(Exception):
    """The process waited on is gone (the caller knows whether it was starting or dying)."""


def _wait_until_ready(local: LocalTiDB, pid: int, timeout: float) -> None:
    """Poll the status endpoint, then a real query, until both answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise _ServerExited(pid)
        if _status_endpoint(local) is not None and _answers_sql(local):
            return
        time.sleep(0.25)
    raise TiDBStartTimeout(
        f"tidb-server (pid {pid}) did not answer on port {local.port} within {timeout:.0f} s. "
        f"It is left running; see {local.log_file}, or stop it with `crm-tidb down`.")


def _new_log_lines(starts: dict[Path, int], lines: int = 15) -> str:
    """The last `lines` lines each log file got since the offsets in `starts`."""
    text = ""
    for path, offset in starts.items():
        if path.is_file():
            with open(path, "rb") as log:
                log.seek(offset)
                new = log.read().decode(errors="replace").splitlines()[-lines:]
            if new:
                text += f"{path.name}:\n" + "\n".join(new) + "\n"
    return text.strip() or "(nothing: it exited before writing a line)"

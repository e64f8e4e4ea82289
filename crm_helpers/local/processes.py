"""The local tidb-server's process as its folder and /proc show it: the pid file, the start lock.

Which pid is this folder's server, whether it is alive, and who is starting one: the
bookkeeping that `crm_helpers.local.server` starts and stops servers by.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from crm_helpers.errors import ConfigError, LocalTiDBBusy

if TYPE_CHECKING:
    from crm_helpers.local.server import LocalTiDB

Report = Callable[[str], None]

# Processes started by this Python process, kept so that stopping them also reaps them.
children: dict[int, subprocess.Popen] = {}


@contextlib.contextmanager
def hold_start_lock(local: LocalTiDB, timeout: float, report: Report | None) -> Iterator[None]:
    """Hold `local.start_lock` (waiting up to `timeout` s for another start to finish)."""
    try:
        local.home.mkdir(parents=True, exist_ok=True)
        lock = open(local.start_lock, "a+b")  # noqa: SIM115 - closed below, which unlocks
    except OSError as exc:
        raise ConfigError(
            f"Cannot use {local.home} (TIDB_LOCAL_HOME) for the local TiDB: {exc.strerror}. "
            "Point TIDB_LOCAL_HOME at a folder you may write to.") from None
    with lock:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if report and not told:
                    report(f"Another start of the local TiDB in {local.home} is under way; "
                           "waiting for it to finish.")
                    told = True
                if time.monotonic() >= deadline:
                    raise LocalTiDBBusy(
                        f"Another start of the local TiDB in {local.home} (a `crm-tidb up` or "
                        f"a notebook) has not finished after {timeout:.0f} s. Wait for it and "
                        "run `crm-tidb status`; `fuser -v "
                        f"{local.start_lock}` names the process holding it.") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def forget_pid(local: LocalTiDB, pid: int) -> None:
    """Remove the pid file if it still names `pid` (never another, live server's pid)."""
    if pid_in_file(local) == pid:
        local.pid_file.unlink(missing_ok=True)


def forget_stale_pid(local: LocalTiDB) -> None:
    """Remove the pid file if the process it names is no tidb-server any more."""
    pid = pid_in_file(local)
    # Read again after the check: a start may have written its new server's pid meanwhile.
    if running_pid(local) is None and pid_in_file(local) == pid:
        local.pid_file.unlink(missing_ok=True)


def write_pid(path: Path, pid: int) -> None:
    """Write `pid` to `path` at once (renamed into place): no reader ever sees it half-written."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(f"{pid}\n")
    os.replace(partial, path)


def pid_in_file(local: LocalTiDB) -> int | None:
    """The pid `local`'s pid file names, None without a readable one."""
    try:
        return int(local.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running_pid(local: LocalTiDB) -> int | None:
    """The pid in the pid file if that process is alive and is a tidb-server."""
    pid = pid_in_file(local)
    if pid is None or not alive(pid):
        return None
    arguments = command_line(pid)
    if not arguments:
        # Exiting (e.g. just killed): its memory is gone but its sockets may not be yet.
        wait_for_exit(pid, 10.0)
        return None
    if "tidb-server" not in arguments:
        return None  # the pid was reused by an unrelated process
    return pid


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not; our own children are reaped)."""
    child = children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return process_state(pid) != "Z"


def process_state(pid: int) -> str:
    """The state letter /proc gives process `pid` ("?" if it cannot be read)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[-1].split()[0]


def command_line(pid: int) -> str:
    """Process `pid`'s command line, its arguments joined by spaces ("" once it is gone)."""
    proc_cmdline = Path(f"/proc/{pid}/cmdline")
    if proc_cmdline.exists():
        return proc_cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    result = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True,
                            text=True, check=False)
    return result.stdout


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` s for process `pid` to end; whether it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            children.pop(pid, None)
            return True
        time.sleep(0.1)
    return False

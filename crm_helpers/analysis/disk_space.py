"""A load that fills a disk: the client's temporary folder (TMPDIR) or the local TiDB's data folder.

Each batch travels as a CSV file in the client's temporary folder (`loader`); a full one is
`temp_file_error`'s NoSpaceLeft. When the local TiDB's disk fills up, its store logs "no space
left on device" and the LOAD DATA waiting on it never answers (measured: a 300 MB folder, a
1,000,000-order load, the client gave up after its 300 s read timeout with "the server stopped
or was killed" while the server still ran). `ServerDiskWatch` reads the server's log during the
load and cuts the load's connections as soon as that line appears, so the load ends with
NoSpaceLeft at once, naming the folder and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pymysql
from sqlalchemy import Engine

from crm_helpers.errors import ConfigError, LoadFailed, NoSpaceLeft
from crm_helpers.local.server import LocalTiDB, local_tidb

#: What the OS says when a file cannot grow: disk full, quota exceeded, file size limit.
NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
#: A disk with less free space than this is taken for full when a batch fails on it.
FULL_DISK_BYTES = 64 * 2**20
#: A disk with less free space than this while a load runs is full: the store cannot write.
EMPTY_DISK_BYTES = 2**20
#: TiDB's store (unistore, on badger) writes this in its log when a write finds the disk full.
DISK_FULL_LOG_TEXT = b"no space left on device"


def temp_file_error(table_name: str, rows: int, exc: OSError) -> LoadFailed:
    """The client could not write a batch's CSV file to its temporary folder (TMPDIR)."""
    folder = tempfile.gettempdir()
    done = ("Nothing of this batch reached TiDB; batches committed before stay, and the "
            "same load run again resumes.")
    if exc.errno in NO_SPACE_ERRNOS:
        return NoSpaceLeft(
            f"The temporary folder {folder} is full ({exc.strerror}): each batch of "
            f"{table_name} travels to TiDB as a CSV file written there ({rows:,} rows this "
            f"time). {done} Free space in {folder}, or point TMPDIR at a folder with room "
            "(e.g. `export TMPDIR=$HOME/tmp` before starting Jupyter), or give load_frame a "
            "smaller batch_rows.")
    return LoadFailed(
        f"Could not write the CSV file of a batch of {table_name} to the temporary folder "
        f"{folder} ({exc.strerror}). {done} Make {folder} writable, or point TMPDIR at a "
        "folder you may write to.")


class ServerDiskWatch:
    """Watches the local TiDB's log, while a load runs, for its disk filling up.

    Only for an engine that talks to the project's local TiDB (its port); for any other
    server `found` stays None and the watch does nothing.
    """

    def __init__(self, engine: Engine, table_name: str, interval: float = 1.0) -> None:
        self.table_name = table_name
        self.local = _local_server_of(engine)
        self.interval = interval
        #: The first log line saying the disk is full, once one was seen.
        self.found: str | None = None
        self._offset = _size(self.local.log_file) if self.local else 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_full: Callable[[], None]) -> None:
        """Check the log every `interval` s in a thread; once it says the disk is full, call
        `on_full()`, and again each interval until `stop()`."""
        if self.local is None:
            return

        def watch() -> None:
            while not self._stop.wait(self.interval):
                if self.check():
                    # Again each interval until stopped: a worker that opened its connection
                    # just after a cut would otherwise wait out its read timeout (300 s).
                    on_full()

        self._thread = threading.Thread(target=watch, name="crm-load disk watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def check(self) -> bool:
        """Read the log written since the last check; True once it says the disk is full.

        A disk with no room left at all counts too: the log lives on that disk, so TiDB's
        line about it may never be written, and the load would wait out its read timeout.
        """
        if self.found is not None or self.local is None:
            return self.found is not None
        free = None
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(self.local.home).free
        if free is not None and free < EMPTY_DISK_BYTES:
            self.found = (f"(nothing in its log, which is on the same disk) no space left: "
                          f"{free} bytes free on the disk of {self.local.data_dir}")
            return True
        with contextlib.suppress(OSError), open(self.local.log_file, "rb") as log:
            log.seek(self._offset)
            new = log.read()
            # Up to the last whole line: a line being written is read again next time.
            whole = new[:new.rfind(b"\n") + 1]
            self._offset += len(whole)
            for line in whole.splitlines():
                if DISK_FULL_LOG_TEXT in line.lower():
                    self.found = line.decode(errors="replace")[:400]
                    break
        return self.found is not None

    def error(self, exc: BaseException | None = None) -> NoSpaceLeft | None:
        """NoSpaceLeft if the server's disk is full (its log, its error or its free space)."""
        said = " ".join(str(e) for e in (exc, exc and exc.__cause__) if e is not None)
        self.check()
        free = None
        if self.local is not None:
            with contextlib.suppress(OSError):
                free = shutil.disk_usage(self.local.home).free
        if (self.found is None and "no space left" not in said.lower()
                and (free is None or free >= FULL_DISK_BYTES)):
            return None
        folder = self.local.data_dir if self.local else "TiDB's data folder"
        evidence = self.found or (said.splitlines()[0][:300] if said else "")
        return NoSpaceLeft(
            f"Loading {self.table_name} stopped because TiDB's disk is full: the disk of "
            f"{folder} ({_megabytes(free)} free now) could not take the batch. TiDB said: "
            f"{evidence or '(nothing)'}. Batches committed before stay; this one was rolled "
            "back. Free space on that disk, or move TIDB_LOCAL_HOME to a larger one "
            "(`crm-tidb down`, move the folder, set TIDB_LOCAL_HOME, `crm-tidb up`); then "
            "restart the server (`crm-tidb down`, `crm-tidb up`: a store that met a full disk "
            "does not recover by itself) and run the same load again: it resumes. A smaller "
            "data set (fewer orders) needs less space.")


def cut_connections(connections: Iterable[object]) -> None:
    """Shut the sockets of PyMySQL connections, so statements waiting on them fail at once.

    Each cut connection fails its next write with PyMySQL's OperationalError 2013: PyMySQL
    itself, when a cut lands while it sends a LOAD DATA file, closes the socket and then
    writes the file's end marker to it, which raised a bare AttributeError ('NoneType'
    object has no attribute 'settimeout') that no database error handler catches.
    """
    for connection in list(connections):
        driver = getattr(connection, "driver_connection", connection)
        if driver is None or getattr(driver, "write_packet", None) is _cut_write:
            continue
        with contextlib.suppress(AttributeError, TypeError):
            driver.write_packet = _cut_write  # on this connection object only
        sock = getattr(driver, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _cut_write(payload: bytes) -> None:
    raise pymysql.err.OperationalError(
        2013, "Lost connection to MySQL server during query (cut: the server's disk is full)")


def _local_server_of(engine: Engine) -> LocalTiDB | None:
    """The project's local TiDB if `engine` talks to it (same host and port), else None."""
    try:
        local = local_tidb()
    except ConfigError:
        return None
    url = engine.url
    if url.port != local.port or url.host not in (local.host, "localhost"):
        return None
    return local


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _megabytes(free: int | None) -> str:
    return "unknown" if free is None else f"{free / 2**20:.0f} MB"

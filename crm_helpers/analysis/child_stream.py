"""Chunked reads at connectorx's speed that still time out: connectorx streams in a child process.

connectorx's Arrow stream holds Python's GIL while it waits for TiDB, so inside this process
no thread could give up on a frozen server. In a child process it holds only the child's GIL:
the child writes Arrow record batches to a pipe (Arrow's IPC stream format), and this process
waits at most the read timeout for each piece of it, kills the child and raises TiDBTimeout
when nothing comes. The URL, password included, reaches the child on its standard input,
never on its command line (which `ps` shows to every user).

The child is `arrow_child.py`, run as a script: it imports connectorx and pyarrow only, so
it starts in a fraction of a second (this package's imports would take seconds).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from crm_helpers.errors import CrmError

_CHILD = Path(__file__).with_name("arrow_child.py")


class ChildStreamFailed(CrmError):
    """The child process ended with an error before or while it sent its batches."""


def child_tables(url: str, sql: str, chunksize: int, seconds: float,
                 timed_out: Any) -> Iterator[pa.Table]:
    """The query's rows as Arrow tables of `chunksize` rows (the last one fewer), from a child.

    No rows give one empty table (with the result's columns), as pandas gives one empty
    frame. `timed_out()` gives the exception raised when the child sends nothing for
    `seconds` (it is killed first). ChildStreamFailed carries the child's error text.
    """
    pending: list[pa.RecordBatch] = []
    rows = 0
    yielded = False
    schema = pa.schema([])
    for batch in _child_batches(url, sql, chunksize, seconds, timed_out):
        schema = batch.schema
        if not batch.num_rows:
            continue
        pending.append(batch)
        rows += batch.num_rows
        while rows >= chunksize:
            table = pa.Table.from_batches(pending, schema)
            yield table.slice(0, chunksize)
            yielded = True
            rest = table.slice(chunksize)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows or not yielded:
        yield pa.Table.from_batches(pending, schema)


def _child_batches(url: str, sql: str, chunksize: int, seconds: float,
                   timed_out: Any) -> Iterator[pa.RecordBatch]:
    """The record batches the child sends (an empty one first: the result's columns)."""
    child = subprocess.Popen([sys.executable, str(_CHILD)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdin is not None and child.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write(json.dumps({"url": url, "sql": sql,
                                          "batch_size": chunksize}).encode())
            child.stdin.close()
        pipe = io.BufferedReader(_PatientPipe(child, seconds, timed_out), 1 << 20)
        try:
            reader = pa.ipc.open_stream(pipe)
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)
            yield from reader
        except (pa.ArrowInvalid, OSError) as exc:
            raise ChildStreamFailed(_child_error(child) or str(exc)) from None
        if child.wait() != 0:
            raise ChildStreamFailed(_child_error(child) or f"exit code {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


class _PatientPipe(io.RawIOBase):
    """The child's stdout, waiting at most `seconds` for each read before giving up on it."""

    def __init__(self, child: subprocess.Popen, seconds: float, timed_out: Any) -> None:
        self.child = child
        self.fd = child.stdout.fileno()  # type: ignore[union-attr]
        self.seconds = seconds
        self.timed_out = timed_out

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        deadline = time.monotonic() + self.seconds
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if ready:
                data = os.read(self.fd, len(buffer))
                buffer[:len(data)] = data
                return len(data)
            if left <= 0:
                self.child.kill()
                raise self.timed_out()


def _child_error(child: subprocess.Popen) -> str:
    """The last line the child wrote to its stderr (its exception), once it has ended."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5)
    text = child.stderr.read().decode(errors="replace") if child.stderr else ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""

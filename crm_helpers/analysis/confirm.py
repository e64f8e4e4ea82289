"""Committed batches count as loaded only once they are on disk whole.

On the local TiDB (unistore) a transaction's keys wait as locks in memory until committed.
A transaction committed in one step (1PC, `txn_commit_mode` "1pc") is written committed, all
keys at once, before COMMIT returns: it is on disk whole then. With TiDB's settings on unistore
(1PC off, 16 KB commit batches) a load's batches commit in two phases instead: COMMIT returns
once a first batch of keys is written, TiDB commits the rest in the background, and a hard kill
in that moment loses them (the README's "Durability"). Reading such a batch back finishes that
(`resume.read_back`). Read right after COMMIT, it mostly waits for the background commit and
competes with it; here it runs on a second connection once a later batch has been committed,
so the background commit has had a load's time to finish, and several waiting batches are
read back in one go.

While batches load, only their rows are counted (through the primary key): an index holds
every batch's entries side by side, so counting it would wait for the batches still being
committed (measured: 17 s for two batches of 100,000 on a busy machine, against under 1 s
through the primary key). Once no batch is loading any more, `finish` counts every batch read
back through the primary key and each index in one go. A batch shows as loaded (progress)
once its rows are read back; the load returns only after the final count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine, Table

from crm_helpers.analysis.resume import CommittedBatch, read_back, read_back_wanted

#: The commit mode (`@@tidb_last_txn_info`) of a transaction written whole before COMMIT returned.
ONE_STEP_COMMIT = "1pc"
#: Later commits a batch waits for before it is read back: time for its background commit
#: (1 measured 7 to 15 s per read-back of two 100,000-row batches on a busy machine).
LATER_COMMITS = 3


class Confirmer:
    """Reads committed batches back on its own connection and thread, then reports them done."""

    def __init__(self, engine: Engine, table: Table, done: Callable[[CommittedBatch], None],
                 connections: list) -> None:
        self._engine = engine
        self._table = table
        self._done = done
        # The caller's list of open connections (cut all at once when the server's disk fills).
        self._connections = connections
        self._changed = threading.Condition()
        self._waiting: list[tuple[int, CommittedBatch]] = []
        self._read: list[CommittedBatch] = []  # rows read back, indexes not yet
        self._commits = 0
        self._finishing = False
        self._thread: threading.Thread | None = None
        self._connection = None
        #: The exception that ended the read-backs, if one did.
        self.error: BaseException | None = None

    def start(self) -> None:
        """Open the connection; read back only where it is needed (the local TiDB)."""
        self._connection = self._engine.raw_connection()
        self._connections.append(self._connection)
        if read_back_wanted(self._connection.cursor()):
            self._thread = threading.Thread(target=self._run, name="crm-read-back", daemon=True)
            self._thread.start()

    def committed(self, batch: CommittedBatch, *, in_one_step: bool = False) -> None:
        """A batch's COMMIT returned: done once read back, at once if committed in one step."""
        if self._thread is None:
            self._done(batch)
            return
        with self._changed:
            if not in_one_step:
                self._waiting.append((self._commits, batch))
            self._commits += 1
            self._changed.notify_all()
        if in_one_step:
            self._done(batch)

    def finish(self) -> None:
        """No more commits are coming: read back what is waiting.

        The connection stays in `connections` for the loader to release: it knows whether the
        load cut it (a cut one is discarded, not reset, see `loader._release`).
        """
        with self._changed:
            self._finishing = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        cursor = self._connection.cursor()
        try:
            while group := self._next_group():
                read_back(cursor, self._table, group, through_indexes=False)
                self._read.extend(group)
                for batch in group:
                    self._done(batch)
            if self._read:  # no batch is loading any more: the indexes' turn
                read_back(cursor, self._table, self._read)
        except BaseException as exc:  # handed to the loading thread, which raises it
            self.error = exc

    def _next_group(self) -> list[CommittedBatch]:
        """Every waiting batch, once the oldest has seen LATER_COMMITS commits or loading ended."""
        with self._changed:
            while not (self._finishing or (
                    self._waiting and self._commits > self._waiting[0][0] + LATER_COMMITS)):
                self._changed.wait()
            group = [batch for _, batch in self._waiting]
            self._waiting.clear()
            return group

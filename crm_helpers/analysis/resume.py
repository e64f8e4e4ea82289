"""What makes a load resumable and safe across a hard kill of the local TiDB.

Rows are identified by their primary key: a batch whose keys are all present already is
skipped, so re-running a load adds nothing and an interrupted load resumes from its committed
batches. A hard kill of the local TiDB can leave a batch partly written and a table's indexes
disagreeing with its rows (see the README's "Durability"). So a load first checks the table
(`ADMIN CHECK TABLE`) and repairs its indexes, and rewrites a partly present batch whole once
its rows are shown to be this frame's. After each commit the batch's rows and index entries
are read back (counted), which has TiDB finish writing the batch instead of doing it in the
background; `confirm.Confirmer` runs `read_back` on a connection of its own while the next batches
load.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pymysql
from sqlalchemy import Engine, Table, func, select

from crm_helpers.analysis.progress import tqdm
from crm_helpers.analysis.statistics import NO_PRIVILEGE_CODES
from crm_helpers.config import sql_identifier
from crm_helpers.errors import LoadFailed, TableDamaged, error_code
from crm_helpers.local.recovery import check_table, repair_table

#: Read each batch back after its commit before it counts as loaded (benchmarks/crash_window.py).
READ_BACK_AFTER_COMMIT = True


def batches_to_load(engine: Engine, table: Table, key: str, batches: list[pd.DataFrame],
                     bar: tqdm) -> list[pd.DataFrame]:
    """The batches not (wholly) in the table; a half-written one is deleted to be loaded again."""
    with engine.connect() as connection:
        present = [_rows_present(connection, table, key, batch) for batch in batches]
    if any(0 < count < len(batch) for count, batch in zip(present, batches, strict=True)):
        # Only a hard kill of the local TiDB leaves part of a batch: check the whole table.
        repair_if_damaged(engine, table, force=True)
    todo = []
    with engine.connect() as connection:
        for batch, count in zip(batches, present, strict=True):
            if count == len(batch):
                bar.update(len(batch))
                continue
            if count:
                _remove_partial_batch(connection, table, key, batch, count)
            todo.append(batch)
    return todo


def _rows_present(connection, table: Table, key: str, batch: pd.DataFrame) -> int:
    """How many of the batch's keys the table holds (keys in sorted order)."""
    first, last = int(batch[key].iloc[0]), int(batch[key].iloc[-1])
    if last - first + 1 == len(batch):  # contiguous keys: the range holds exactly these
        conditions = [table.c[key].between(first, last)]
    else:  # gaps: rows in them are not this batch's, so count the keys themselves
        keys = batch[key].astype("int64").tolist()
        conditions = [table.c[key].in_(keys[start:start + 10_000])
                      for start in range(0, len(keys), 10_000)]
    present = sum(connection.execute(select(func.count()).select_from(table).where(condition))
                  .scalar_one() for condition in conditions)
    connection.rollback()  # end the read's transaction before LOAD DATA opens its own
    return present


def _remove_partial_batch(connection, table: Table, key: str, batch: pd.DataFrame,
                          present: int) -> None:
    """Delete a batch's rows left by a crash, once they are shown to be this batch's rows."""
    first, last = int(batch[key].iloc[0]), int(batch[key].iloc[-1])
    in_range = table.c[key].between(first, last)
    stored = pd.DataFrame(connection.execute(select(table).where(in_range).order_by(table.c[key]))
                          .mappings().all(), columns=list(batch.columns))
    expected = batch[batch[key].isin(stored[key])]
    if len(expected) != len(stored) or not _same_rows(stored, expected):
        connection.rollback()
        raise LoadFailed(
            f"{table.name} already holds {present} of the {len(batch)} rows with {key} "
            f"{first}..{last}, and they differ from this frame's: loaded by something else. "
            "Empty the table (reset_analysis_tables) and load again.")
    # A batch is one transaction, so a part of one can only be what a hard kill of the local
    # TiDB left; it is deleted and loaded again whole.
    connection.execute(table.delete().where(in_range))
    connection.commit()


def _same_rows(stored: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """True if two frames with the same columns, in the same key order, hold the same values."""
    return all(
        stored[column].astype(str).tolist() == expected[column].astype(str).tolist()
        for column in expected.columns)


def repair_if_damaged(engine: Engine, table: Table, *, force: bool = False) -> None:
    """If the table's rows and indexes disagree, repair the indexes (or refuse to load).

    Unless `force`, ADMIN CHECK TABLE runs only when the row count and an index's entry count
    differ: counting is cheap, and every damage a kill leaves that counts cannot show also
    leaves a half-written batch or makes LOAD DATA fail, which force the check.
    """
    database = engine.url.database
    try:
        with engine.connect() as connection:
            if not force and _counts_agree(connection, table):
                return
            health = check_table(connection, database, table.name)
            connection.rollback()
    except pymysql.err.MySQLError as exc:
        if error_code(exc) in NO_PRIVILEGE_CODES:
            return  # this user may not check; a damaged table is still reported when loading
        raise
    if health.ok:
        return
    repaired = repair_table(engine, database, table.name)
    if repaired.problem:
        raise TableDamaged(
            f"{database}.{table.name} is damaged ({repaired.problem}), and repairing its "
            "indexes did not fix it. Empty it with reset_analysis_tables(engine) and load "
            "again, or start the local TiDB from empty data with `crm-tidb up --fresh`.")


def _counts_agree(connection, table: Table) -> bool:
    """True if the table has as many rows as each of its indexes has entries."""
    indexes = sorted(index.name for index in table.indexes)
    if not indexes:
        return True
    quoted = sql_identifier(table.name, formatted=True)
    ignore = ", ".join(sql_identifier(name, formatted=True) for name in indexes)
    rows = connection.exec_driver_sql(
        f"SELECT COUNT(*) FROM {quoted} IGNORE INDEX ({ignore})").scalar_one()
    for name in indexes:
        entries = connection.exec_driver_sql(
            f"SELECT COUNT(*) FROM {quoted} FORCE INDEX ({sql_identifier(name, formatted=True)})"
        ).scalar_one()
        if entries != rows:
            connection.rollback()
            return False
    connection.rollback()
    return True


@dataclass(frozen=True)
class CommittedBatch:
    """A batch whose COMMIT has returned: its key range, its rows, and its commit's timestamp."""

    first: int
    last: int
    rows: int
    commit_ts: int


def read_back_wanted(cursor) -> bool:
    """True if committed batches must be read back: on the local TiDB (unistore), unless off."""
    return READ_BACK_AFTER_COMMIT and _on_unistore(cursor)


def _on_unistore(cursor) -> bool:
    """True if the server stores data in unistore (the local TiDB), asked once per connection.

    TiKV writes a commit durably, so there the read-back would only cost time.
    """
    connection = cursor.connection
    known = getattr(connection, "_crm_on_unistore", None)
    if known is None:
        cursor.execute("SELECT tidb_version()")
        known = "Store: unistore" in cursor.fetchone()[0]
        cursor.execute("ROLLBACK")  # end the read's transaction
        connection._crm_on_unistore = known
    return known


def read_back(cursor, table: Table, batches: list[CommittedBatch], *,
              through_indexes: bool = True) -> None:
    """Count committed batches' rows through the primary key and entries through each index.

    Counting meets every key TiDB has not yet committed in the background, and has TiDB commit
    it there and then (see the README's "Durability"). Nothing is fetched: one count per
    index over the batches' key ranges. Both counts come from one snapshot, so they must
    agree, and the rows must be at least the batches' own; if not, raises TableDamaged.
    Without `through_indexes` only the rows are counted: a range of the primary key holds no
    other batch's keys, while an index scan meets (and waits for) batches still committing.
    """
    key = sql_identifier(table.primary_key.columns.values()[0].name, formatted=True)
    name = sql_identifier(table.name, formatted=True)
    spans = _joined_ranges(batches)
    ranges = " OR ".join([f"{key} BETWEEN %s AND %s"] * len(spans))
    bounds = [bound for span in spans for bound in span]
    indexes = sorted(index.name for index in table.indexes)
    try:
        ignore = (" IGNORE INDEX (" + ", ".join(sql_identifier(index, formatted=True)
                                                for index in indexes) + ")") if indexes else ""
        cursor.execute(f"SELECT COUNT(*) FROM {name}{ignore} WHERE {ranges}", bounds)
        rows = cursor.fetchone()[0]
        entries = {}
        for index in indexes if through_indexes else []:
            cursor.execute(f"SELECT COUNT(*) FROM {name} FORCE INDEX "
                           f"({sql_identifier(index, formatted=True)}) WHERE {ranges}", bounds)
            entries[index] = cursor.fetchone()[0]
    finally:
        cursor.execute("ROLLBACK")  # end the read's transaction (one snapshot for all counts)
    committed = sum(batch.rows for batch in batches)
    wrong = {index: count for index, count in entries.items() if count != rows}
    if rows < committed or wrong:
        raise TableDamaged(
            f"Read back after COMMIT, {table.name} holds {rows:,} rows where {committed:,} were "
            f"just committed (index entries: {entries}): the committed batches did not all "
            "arrive. Run the same load again: it checks the table, repairs its indexes and "
            "rewrites what is missing.")


def _joined_ranges(batches: list[CommittedBatch]) -> list[tuple[int, int]]:
    """The batches' key ranges, those that touch joined: one BETWEEN is cheaper to test than ten.

    Touching ranges hold no key between them, so the joined range counts the same rows.
    """
    spans: list[list[int]] = []
    for batch in sorted(batches, key=lambda batch: batch.first):
        if spans and batch.first <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], batch.last)
        else:
            spans.append([batch.first, batch.last])
    return [(first, last) for first, last in spans]

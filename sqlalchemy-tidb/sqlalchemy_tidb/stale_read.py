"""TiDB's stale reads as execution options: read data as it was a moment ago.

Two options, on an engine, a connection, a session's connection or one statement:

- `tidb_read_staleness=N` (whole seconds, 0 or more): the connection's reads may be up to N
  seconds old (session variable `tidb_read_staleness = -N`). TiDB picks the read timestamp
  within that window. It is a connection setting, so it goes on an engine or a connection
  (`session.connection(execution_options=...)`, `Session(bind=engine.execution_options(...))`);
  on a single statement (`select(...).execution_options(...)`, or `execute(...)`'s and
  `session.execute(...)`'s `execution_options=`) it is refused, not silently ignored. The
  pool sets it back to 0 when the connection returns.
- `tidb_as_of_timestamp=<datetime or ISO text>`: each SELECT reads the data as it was at that
  instant (`FROM t AS OF TIMESTAMP ...` for every table the SELECT names). An aware datetime is
  exact; a naive one, or text without an offset, is this machine's local time, as Python's
  `datetime.timestamp()` reads it. Writes, and SQL sent with `exec_driver_sql`, are left alone;
  a `text()` read is refused, since its SQL cannot be changed safely.

Stale reads only reach back to TiDB's GC safe point (`tidb_gc_life_time`, 10 minutes by default),
and TiDB refuses AS OF TIMESTAMP inside a transaction that has written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, TextClause
from sqlalchemy.engine.characteristics import ConnectionCharacteristic
from sqlalchemy.sql.expression import Alias, Join, TableClause

from sqlalchemy_tidb.exc import InvalidDialectOption

#: The execution option that makes a connection's reads up to N seconds old.
READ_STALENESS = "tidb_read_staleness"
#: The execution option that makes SELECTs read the data of one past instant.
AS_OF_TIMESTAMP = "tidb_as_of_timestamp"

_ONE_STATEMENT = (
    f"{READ_STALENESS} is a connection setting and does nothing on one statement: put "
    "it on the engine or connection (connection.execution_options(...), or "
    "session.connection(execution_options={...})), or give this statement "
    f"{AS_OF_TIMESTAMP}=<a past instant>.")

# TiDB keeps the variable in a 32-bit integer; far more than any GC life time anyway.
_MAX_STALENESS = 2**31 - 1


def staleness_seconds(value: Any) -> int:
    """The `tidb_read_staleness` option as whole seconds; InvalidDialectOption if it is not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_STALENESS:
        raise InvalidDialectOption(
            f"{READ_STALENESS} is {value!r}; give how old a read may be in whole seconds, "
            "0 or more, such as tidb_read_staleness=5 (0 turns stale reads off). TiDB reads "
            "at a timestamp within that many seconds before now.")
    return value


def as_of_epoch(value: Any) -> float:
    """The `tidb_as_of_timestamp` option as seconds since 1970; InvalidDialectOption if unusable."""
    when = _as_datetime(value)
    try:
        epoch = when.timestamp()  # a naive datetime is taken as local time
    except (OverflowError, OSError, ValueError):
        epoch = -1.0
    if epoch < 0:
        raise InvalidDialectOption(
            f"{AS_OF_TIMESTAMP} is {value!r}, before 1970: give a recent past instant (stale "
            "reads reach back to TiDB's GC safe point, 10 minutes by default).")
    if epoch > time.time():
        raise InvalidDialectOption(
            f"{AS_OF_TIMESTAMP} is {value!r}, which is in the future (a naive datetime or text "
            "without an offset is this machine's local time): TiDB can only read data as it "
            "was in the past. Give an earlier instant, e.g. datetime.now(timezone.utc) - "
            "timedelta(seconds=5).")
    return epoch


def as_of_clause(value: Any) -> str:
    """The `AS OF TIMESTAMP ...` clause for a past instant, as TiDB reads it after a table name."""
    # FROM_UNIXTIME gives the instant in the session's time zone, which is how TiDB then
    # reads it: the same instant whatever the server's or session's time zone is.
    return f"AS OF TIMESTAMP FROM_UNIXTIME({as_of_epoch(value):.6f})"


def read_as_of(statement: Select, value: Any, dialect_name: str = "tidb") -> Select:
    """`statement` with every table of its FROM read as of the instant `value`."""
    clause = as_of_clause(value)
    # A SELECT of no table (SELECT 1) reads nothing from the past; a table inside a subquery
    # needs read_as_of() on that subquery (else TiDB says "can not set different time", 8135).
    tables = list(_tables_read(statement.get_final_froms()))
    for table in tables:
        # The hint is part of the statement's cache key, so each instant compiles on its own.
        statement = statement.with_hint(table, clause, dialect_name=dialect_name)
    return statement


def check_execution_options(options: Mapping[str, Any]) -> None:
    """Refuse a stale-read option with an unusable value when it is given, not when used."""
    if READ_STALENESS in options:
        staleness_seconds(options[READ_STALENESS])
    if options.get(AS_OF_TIMESTAMP) is not None:
        as_of_epoch(options[AS_OF_TIMESTAMP])


def apply_as_of_timestamp(connection: Any, statement: Any, multiparams: Any, params: Any,
                          execution_options: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """The `before_execute` listener: AS OF TIMESTAMP on SELECTs given the option."""
    if _staleness_for_one_statement(connection, statement, execution_options):
        # SQLAlchemy would ignore a connection characteristic given to one statement.
        raise InvalidDialectOption(_ONE_STATEMENT)
    value = execution_options.get(AS_OF_TIMESTAMP)
    if value is None:
        return statement, multiparams, params
    if isinstance(statement, Select):
        return read_as_of(statement, value, connection.dialect.name), multiparams, params
    if isinstance(statement, TextClause):
        raise InvalidDialectOption(
            f"{AS_OF_TIMESTAMP} cannot be applied to a text() statement: its SQL is not "
            "changed. Write the clause into the SQL after each table, e.g. "
            f"f\"SELECT * FROM t {{sqlalchemy_tidb.stale_read.as_of_clause(when)}}\", or "
            "use select().")
    return statement, multiparams, params  # writes and DDL read the current data


def refuse_staleness_on_driver_sql(connection: Any, cursor: Any, statement: str,
                                   parameters: Any, context: Any, executemany: bool) -> None:
    """The `before_cursor_execute` listener: refuse `tidb_read_staleness` given to one
    `exec_driver_sql()` call (before_execute does not see those)."""
    if (context is not None and getattr(context, "compiled", None) is None
            and _staleness_for_one_statement(connection, None, context.execution_options)):
        raise InvalidDialectOption(_ONE_STATEMENT)


def _staleness_for_one_statement(connection: Any, statement: Any,
                                 execution_options: Mapping[str, Any]) -> bool:
    """Whether `tidb_read_staleness` was given to this statement or this execute() call.

    `execution_options` merges the statement's, the connection's (with the engine's) and those
    of `execute(..., execution_options=...)` / `session.execute(...)`: a value there that the
    connection itself does not carry came with the statement or the call.
    """
    if READ_STALENESS in getattr(statement, "_execution_options", {}):
        return True
    if READ_STALENESS not in execution_options:
        return False
    on_connection = connection.get_execution_options()
    return (READ_STALENESS not in on_connection
            or on_connection[READ_STALENESS] != execution_options[READ_STALENESS])


class ReadStalenessCharacteristic(ConnectionCharacteristic):
    """The `tidb_read_staleness` execution option: a connection's reads up to N seconds old."""

    # TiDB picks a transaction's read timestamp when it starts: set it between transactions.
    transactional = True

    def set_characteristic(self, dialect: Any, dbapi_conn: Any, value: Any) -> None:
        self._set(dbapi_conn, -staleness_seconds(value))

    def reset_characteristic(self, dialect: Any, dbapi_conn: Any) -> None:
        self._set(dbapi_conn, 0)

    def get_characteristic(self, dialect: Any, dbapi_conn: Any) -> Any:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.tidb_read_staleness")
            return -int(cursor.fetchone()[0])

    @staticmethod
    def _set(dbapi_conn: Any, value: int) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET SESSION tidb_read_staleness = {int(value)}")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidDialectOption(
        f"{AS_OF_TIMESTAMP} is {value!r}; give a datetime (best with a time zone) or ISO text "
        "such as '2024-01-01 12:00:00' or '2024-01-01T12:00:00+00:00', a moment in the recent "
        "past.")


def _tables_read(froms: Any) -> Any:
    """The tables (and table aliases) a FROM list reads, looking inside joins."""
    for from_ in froms:
        if isinstance(from_, Join):
            yield from _tables_read((from_.left, from_.right))
        elif isinstance(from_, TableClause) or (
                isinstance(from_, Alias) and isinstance(from_.element, TableClause)):
            yield from_

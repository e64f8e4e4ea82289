"""Stale reads on a real TiDB: tidb_as_of_timestamp and tidb_read_staleness.

Each test writes row "before", waits, notes an instant (or lets the staleness window fall
between the two writes), writes row "after", and reads the past: "before" must be there and
"after" must not. Measured on the local TiDB (unistore, v8.5): AS OF TIMESTAMP reads exactly
the instant given, and tidb_read_staleness=N reads N seconds back (a row 0.1 s old is not
seen with N=1, a row 2.5 s old is); the gaps below leave seconds of room on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy_tidb import InvalidDialectOption

# Seconds between the two writes; the stale read lands in the middle of this gap.
GAP = 4.0
STALENESS = 2


@pytest.fixture
def single_connection_engine(database_url: URL) -> Iterator[Engine]:
    """A tidb:// engine whose pool holds one connection, so each checkout reuses it."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def notes(engine: Engine) -> Iterator[Table]:
    """An empty table `stale_notes` (name, written in order)."""
    table = Table("stale_notes", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(20), nullable=False))
    table.drop(engine, checkfirst=True)
    table.create(engine)
    yield table
    table.drop(engine)


def write(engine: Engine, notes: Table, name: str) -> None:
    with engine.begin() as connection:
        connection.execute(notes.insert().values(name=name))


def names(result: object) -> list[str]:
    return sorted(result)  # type: ignore[call-overload]


def instant_between_two_writes(engine: Engine, notes: Table) -> datetime:
    """Write "before", note the instant half a gap later, write "after" half a gap after that."""
    write(engine, notes, "before")
    time.sleep(GAP / 2)
    instant = datetime.now(UTC)
    time.sleep(GAP / 2)
    write(engine, notes, "after")
    return instant


def test_a_statement_as_of_an_instant_sees_what_was_written_before_it(
        engine: Engine, notes: Table) -> None:
    instant = instant_between_two_writes(engine, notes)
    query = select(notes.c.name)
    with engine.connect() as connection:
        past = connection.execute(query.execution_options(tidb_as_of_timestamp=instant))
        assert names(past.scalars()) == ["before"]
        # The same statement without the option, after the cached stale one, reads the present.
        assert names(connection.execute(query).scalars()) == ["after", "before"]


def test_as_of_takes_naive_local_time_and_iso_text(engine: Engine, notes: Table) -> None:
    instant = instant_between_two_writes(engine, notes)
    local_naive = instant.astimezone().replace(tzinfo=None)
    with engine.connect() as connection:
        for given in (local_naive, local_naive.isoformat(sep=" "), instant.isoformat()):
            query = select(notes.c.name).execution_options(tidb_as_of_timestamp=given)
            assert names(connection.execute(query).scalars()) == ["before"], given
            connection.rollback()


def test_a_session_bound_to_an_as_of_engine_reads_the_past_with_the_orm(
        engine: Engine, notes: Table) -> None:
    instant = instant_between_two_writes(engine, notes)
    joined = notes.join(notes.alias("other"), notes.c.id == notes.alias("other").c.id)
    with Session(bind=engine.execution_options(tidb_as_of_timestamp=instant)) as session:
        assert names(session.scalars(select(notes.c.name))) == ["before"]
        assert names(session.scalars(select(notes.c.name).select_from(joined))) == ["before"]


def test_read_staleness_on_a_session_reads_seconds_back_and_is_reset_in_the_pool(
        single_connection_engine: Engine, notes: Table) -> None:
    engine = single_connection_engine
    write(engine, notes, "before")
    time.sleep(GAP)
    write(engine, notes, "after")  # read well within STALENESS seconds of this write
    with Session(engine) as session:
        session.connection(execution_options={"tidb_read_staleness": STALENESS})
        assert names(session.scalars(select(notes.c.name))) == ["before"]
    with engine.connect() as connection:  # the same connection, back from the pool
        assert connection.exec_driver_sql("SELECT @@SESSION.tidb_read_staleness").scalar() == "0"
        assert names(connection.execute(select(notes.c.name)).scalars()) == ["after", "before"]


def test_read_staleness_on_a_connection_is_reset_when_it_returns_to_the_pool(
        single_connection_engine: Engine, notes: Table) -> None:
    engine = single_connection_engine
    with engine.connect() as connection:
        connection.execution_options(tidb_read_staleness=STALENESS)
        assert connection.exec_driver_sql("SELECT @@SESSION.tidb_read_staleness").scalar() \
            == f"-{STALENESS}"
        raw = connection.connection.dbapi_connection
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection is raw
        assert connection.exec_driver_sql("SELECT @@SESSION.tidb_read_staleness").scalar() == "0"


@pytest.mark.parametrize("value", [-1, -0.5, 1.5, "5", None, True])
def test_read_staleness_refuses_what_is_not_whole_seconds(engine: Engine, value: object) -> None:
    with pytest.raises(InvalidDialectOption, match="whole seconds, 0 or more"):
        engine.execution_options(tidb_read_staleness=value)


# The instants are made when the test runs: made at collection, "five minutes ahead" could be
# in the past by the time a long suite reaches the test.
@pytest.mark.parametrize("future", [
    lambda: datetime.now(UTC) + timedelta(hours=1),
    lambda: (datetime.now() + timedelta(minutes=5)).isoformat(),
], ids=["aware datetime in an hour", "local ISO text in 5 minutes"])
def test_as_of_refuses_a_future_instant(engine: Engine, future) -> None:
    value = future()
    with pytest.raises(InvalidDialectOption, match="in the future"):
        engine.execution_options(tidb_as_of_timestamp=value)
    with engine.connect() as connection, pytest.raises(InvalidDialectOption, match="future"):
        connection.execute(select(1).execution_options(tidb_as_of_timestamp=value))


@pytest.mark.parametrize("value", ["yesterday", 1700000000, "2024-13-01 00:00:00"])
def test_as_of_refuses_what_is_not_an_instant(engine: Engine, value: object) -> None:
    with pytest.raises(InvalidDialectOption, match="give a datetime"):
        engine.execution_options(tidb_as_of_timestamp=value)


def test_as_of_refuses_text_it_cannot_rewrite(engine: Engine, notes: Table) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    statement = text("SELECT name FROM stale_notes").execution_options(
        tidb_as_of_timestamp=past)
    with engine.connect() as connection, pytest.raises(InvalidDialectOption, match=r"text\(\)"):
        connection.execute(statement)


def test_read_staleness_on_one_statement_is_refused_not_ignored(engine: Engine,
                                                                notes: Table) -> None:
    query = select(notes.c.name).execution_options(tidb_read_staleness=STALENESS)
    with engine.connect() as connection, pytest.raises(InvalidDialectOption,
                                                       match="connection setting"):
        connection.execute(query)


@pytest.mark.parametrize("where", ["connection.execute", "session.execute", "exec_driver_sql"])
def test_read_staleness_given_to_one_execute_call_is_refused_not_ignored(
        engine: Engine, notes: Table, where: str) -> None:
    options = {"tidb_read_staleness": STALENESS}
    with pytest.raises(InvalidDialectOption, match="connection setting"):
        if where == "session.execute":
            with Session(engine) as session:
                session.execute(select(notes.c.name), execution_options=options)
        else:
            with engine.connect() as connection:
                if where == "exec_driver_sql":
                    connection.exec_driver_sql("SELECT name FROM stale_notes",
                                               execution_options=options)
                else:
                    connection.execute(select(notes.c.name), execution_options=options)


def test_read_staleness_of_the_session_connection_may_be_repeated_on_its_statements(
        single_connection_engine: Engine, notes: Table) -> None:
    engine = single_connection_engine
    write(engine, notes, "before")
    time.sleep(GAP)
    write(engine, notes, "after")
    options = {"tidb_read_staleness": STALENESS}
    with Session(engine) as session:
        session.connection(execution_options=options)
        # The same value as the connection's changes nothing, so it is not refused.
        assert names(session.scalars(select(notes.c.name), execution_options=options)) \
            == ["before"]

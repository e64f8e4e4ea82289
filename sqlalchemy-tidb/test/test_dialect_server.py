"""tidb:// and TiDB as a server: isolation levels, version strings, MySQL gates, SKIP LOCKED."""

from __future__ import annotations

import warnings

import pymysql
import pytest
from sqlalchemy import (
    Column,
    Double,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    cast,
    create_engine,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import ArgumentError, NotSupportedError, OperationalError
from sqlalchemy_tidb import (
    ISOLATION_LEVELS,
    InvalidDialectOption,
    IsolationLevelUnsupported,
    SharedLocksUnsupported,
    TiDBDialect,
    UnsupportedByTiDB,
    UnsupportedIsolationLevel,
    is_tidb_cloud,
    parse_tidb_version,
)

# TiDB's own error for an isolation level it does not have.
ISOLATION_NOT_SUPPORTED = 8048


@pytest.fixture
def url(database_url):
    return database_url


# -- versions -----------------------------------------------------------------------------

@pytest.mark.parametrize(("reported", "expected", "cloud"), [
    ("8.0.11-TiDB-CLOUD.202603.9", (2026, 3, 9), True),
    ("8.0.11-TiDB-cloud.202512.12", (2025, 12, 12), True),
    ("8.0.11-TiDB-v8.5.6", (8, 5, 6), False),
    ("8.0.11-TiDB-v7.5.2-serverless", (7, 5, 2), False),
])
def test_cloud_and_release_version_strings(reported, expected, cloud):
    assert parse_tidb_version(reported) == expected
    assert is_tidb_cloud(reported) is cloud


def test_a_cloud_version_opens_every_release_gate():
    assert parse_tidb_version("8.0.11-TiDB-CLOUD.202603.9") > parse_tidb_version(
        "8.0.11-TiDB-v99.9.9")


def test_local_tidb_is_not_cloud(engine):
    with engine.connect():
        pass
    assert engine.dialect.tidb_cloud is False


# -- isolation levels ---------------------------------------------------------------------

@pytest.mark.parametrize(("level", "advice"), [
    ("SERIALIZABLE", r"SELECT \.\.\. FOR UPDATE"), ("READ UNCOMMITTED", "Use READ COMMITTED")])
def test_tidb_itself_refuses_missing_levels_with_8048_which_is_translated(engine, level,
                                                                         advice):
    with engine.connect() as connection, pytest.raises(IsolationLevelUnsupported,
                                                       match=advice) as raised:
        connection.exec_driver_sql(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")
    # Still the OperationalError SQLAlchemy raises for it, with the driver's error as .orig.
    assert isinstance(raised.value, OperationalError)
    assert raised.value.orig.args[0] == ISOLATION_NOT_SUPPORTED


def test_only_tidbs_levels_are_advertised(engine):
    with engine.connect() as connection:
        levels = engine.dialect.get_isolation_level_values(connection.connection.dbapi_connection)
    assert set(levels) == {*ISOLATION_LEVELS, "AUTOCOMMIT"}


@pytest.mark.parametrize(("level", "tidb_name"), [
    ("READ COMMITTED", "READ-COMMITTED"), ("REPEATABLE READ", "REPEATABLE-READ")])
def test_tidbs_levels_work_on_the_engine(url, level, tidb_name):
    engine = create_engine(url, isolation_level=level)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT @@transaction_isolation")) == tidb_name
            assert connection.get_isolation_level() == level
    finally:
        engine.dispose()


def test_autocommit_level_commits_each_statement(url, engine):
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS autocommitted")
        connection.exec_driver_sql("CREATE TABLE autocommitted (id INT PRIMARY KEY)")
    auto = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with auto.connect() as connection:
            connection.exec_driver_sql("INSERT INTO autocommitted VALUES (1)")
            # no commit: AUTOCOMMIT already did
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT COUNT(*) FROM autocommitted")) == 1
    finally:
        auto.dispose()
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE autocommitted")


@pytest.mark.parametrize("level", ["SERIALIZABLE", "READ UNCOMMITTED", "read_uncommitted"])
def test_create_engine_refuses_a_missing_level_at_once(url, level):
    with pytest.raises(UnsupportedIsolationLevel, match="not available on TiDB") as raised:
        create_engine(url, isolation_level=level)
    assert "READ COMMITTED" in str(raised.value)
    # still an ArgumentError, as SQLAlchemy raises for levels a dialect lacks
    assert isinstance(raised.value, ArgumentError)


@pytest.mark.parametrize("level", ["SERIALIZABLE", "READ UNCOMMITTED"])
def test_execution_option_refuses_a_missing_level_before_sending(engine, level):
    with engine.connect() as connection, pytest.raises(UnsupportedIsolationLevel,
                                                       match=r"FOR UPDATE|READ COMMITTED"):
        connection.execution_options(isolation_level=level)


def test_engine_execution_option_refuses_a_missing_level_at_connect(engine):
    serializable = engine.execution_options(isolation_level="SERIALIZABLE")
    with pytest.raises(UnsupportedIsolationLevel):
        serializable.connect()


def test_a_made_up_level_still_gets_sqlalchemys_error(url):
    engine = create_engine(url, isolation_level="SOMETIMES")
    try:
        with pytest.raises(ArgumentError, match="Invalid value 'SOMETIMES'"):
            engine.connect()
    finally:
        engine.dispose()


# -- MySQL version gates that are wrong for TiDB ---------------------------------------------

@pytest.mark.parametrize(("type_", "sql_type"), [(Float(), "FLOAT"), (Double(), "DOUBLE")])
def test_float_cast_is_compiled_and_tidb_runs_it(engine, type_, sql_type):
    statement = select(cast(literal("1.5"), type_))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SQLAlchemy's "CAST will be skipped" is a warning
        compiled = str(statement.compile(dialect=engine.dialect))
        with engine.connect() as connection:
            value = connection.scalar(statement)
    assert f"AS {sql_type})" in compiled
    assert value == 1.5
    assert isinstance(value, float)


def test_upsert_uses_values_which_tidb_has_not_the_mysql_alias(engine, url):
    metadata = MetaData()
    counters = Table("counters", metadata, Column("name", String(10), primary_key=True),
                     Column("hits", Integer))
    metadata.create_all(engine)
    dialect_claiming_newer_mysql = create_engine(url)
    try:
        with dialect_claiming_newer_mysql.connect() as connection:
            pass
        # what SQLAlchemy would do for a TiDB claiming MySQL >= 8.0.20, then our correction
        newer = dialect_claiming_newer_mysql.dialect
        newer.server_version_info = (8, 4, 0)
        newer._initialize_mysql(None)
        assert newer._requires_alias_for_on_duplicate_key is True
        newer._correct_mysql_version_gates()
        for target in (engine, dialect_claiming_newer_mysql):
            upsert = mysql_insert(counters).values(name="home", hits=1)
            upsert = upsert.on_duplicate_key_update(hits=counters.c.hits + upsert.inserted.hits)
            assert "VALUES(hits)" in str(upsert.compile(dialect=target.dialect))
            with target.begin() as connection:
                connection.execute(upsert)
                connection.execute(upsert)
        with engine.connect() as connection:
            assert connection.execute(select(counters.c.hits)).scalar_one() == 4
    finally:
        dialect_claiming_newer_mysql.dispose()
        metadata.drop_all(engine)


def test_float_cast_compiles_before_any_connection():
    compiled = str(select(cast(literal(2), Float)).compile(dialect=TiDBDialect()))
    assert "CAST(" in compiled and "AS FLOAT)" in compiled


# -- FOR UPDATE SKIP LOCKED ---------------------------------------------------------------

@pytest.fixture
def queue(engine):
    metadata = MetaData()
    jobs = Table("jobs", metadata, Column("id", Integer, primary_key=True),
                 Column("task", String(20)))
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(jobs.insert(), [{"id": 1, "task": "first"}, {"id": 2, "task": "next"}])
    yield jobs
    metadata.drop_all(engine)


def test_skip_locked_is_refused_with_advice(engine, queue):
    statement = select(queue).with_for_update(skip_locked=True)
    with pytest.raises(UnsupportedByTiDB, match="does not do it"):
        str(statement.compile(dialect=engine.dialect))
    with engine.connect() as connection, pytest.raises(UnsupportedByTiDB):
        connection.execute(statement)


def test_shared_locks_get_an_error_that_warns_about_noop(engine, queue):
    with engine.connect() as connection, pytest.raises(SharedLocksUnsupported,
                                                       match="no shared row locks") as raised:
        connection.execute(select(queue).with_for_update(read=True))
    # Still SQLAlchemy's NotSupportedError for TiDB's 1235, as on mysql+pymysql.
    assert isinstance(raised.value, NotSupportedError)
    assert raised.value.orig.args[0] == 1235


def test_nowait_and_plain_for_update_still_compile(engine, queue):
    with engine.begin() as connection:
        assert connection.execute(select(queue.c.id).with_for_update(nowait=True)
                                  .order_by(queue.c.id)).scalars().all() == [1, 2]


def _raw_connection(url, mode):
    connection = pymysql.connect(host=url.host, port=url.port or 4000, user=url.username,
                                 password=url.password or "", database=url.database,
                                 read_timeout=30, write_timeout=30, connect_timeout=10)
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION tidb_txn_mode = '{mode}'")
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 2")
    return connection


@pytest.mark.parametrize("mode", ["pessimistic", "optimistic"])
def test_tidb_ignores_skip_locked(database_url, queue, mode):
    """Why it is refused: TiDB returns a row another transaction has locked, and locks none."""
    holder = _raw_connection(database_url, mode)
    taker = _raw_connection(database_url, mode)
    probe = _raw_connection(database_url, "pessimistic")
    try:
        with holder.cursor() as held, taker.cursor() as taking, probe.cursor() as probing:
            held.execute("BEGIN")
            held.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE")
            taking.execute("BEGIN")
            taking.execute("SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED")
            taken = [row[0] for row in taking.fetchall()]
            # does the taker now hold row 2, which it was given?
            probing.execute("BEGIN")
            probing.execute("SELECT id FROM jobs WHERE id = 2 FOR UPDATE NOWAIT")
            probed = [row[0] for row in probing.fetchall()]
            for cursor in (probing, taking, held):
                cursor.execute("ROLLBACK")
        assert taken == [1, 2]  # row 1 is locked by `holder`, and is not skipped
        assert probed == [2]  # and the taker locked nothing
    finally:
        for connection in (holder, taker, probe):
            connection.close()


def test_nowait_does_fail_fast_on_a_locked_row(database_url, queue):
    holder = _raw_connection(database_url, "pessimistic")
    taker = _raw_connection(database_url, "pessimistic")
    try:
        with holder.cursor() as held, taker.cursor() as taking:
            held.execute("BEGIN")
            held.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE")
            taking.execute("BEGIN")
            with pytest.raises(pymysql.MySQLError) as raised:
                taking.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT")
            assert raised.value.args[0] == 3572
            taking.execute("ROLLBACK")
            held.execute("ROLLBACK")
    finally:
        holder.close()
        taker.close()


# -- transaction mode ---------------------------------------------------------------------

def txn_mode(connection) -> str:
    return connection.scalar(text("SELECT @@SESSION.tidb_txn_mode"))


def test_txn_mode_execution_option_on_engine_and_connection(url):
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        optimistic = engine.execution_options(tidb_txn_mode="optimistic")
        with optimistic.connect() as connection:
            assert txn_mode(connection) == "optimistic"
        # the pooled connection is set back to the server's default afterwards
        with engine.connect() as connection:
            assert txn_mode(connection) == "pessimistic"
            connection.commit()  # the mode applies to transactions begun afterwards
            connection.execution_options(tidb_txn_mode="OPTIMISTIC")
            assert txn_mode(connection) == "optimistic"
            assert connection.get_execution_options()["tidb_txn_mode"] == "OPTIMISTIC"
        with engine.connect() as connection:
            assert txn_mode(connection) == "pessimistic"
    finally:
        engine.dispose()


def test_txn_mode_from_create_engine(url):
    engine = create_engine(url, execution_options={"tidb_txn_mode": "optimistic"})
    try:
        with engine.connect() as connection:
            assert txn_mode(connection) == "optimistic"
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["careful", None, 1])
def test_unknown_txn_mode_is_refused(engine, mode):
    with engine.connect() as connection, pytest.raises(InvalidDialectOption,
                                                       match="pessimistic"):
        connection.execution_options(tidb_txn_mode=mode)


def test_txn_mode_cannot_change_inside_a_transaction(engine):
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        with pytest.raises(Exception, match="tidb_txn_mode may not be altered"):
            connection.execution_options(tidb_txn_mode="optimistic")


def test_optimistic_read_committed_is_refused_because_tidb_reads_a_snapshot(url, engine):
    # what TiDB does: in optimistic mode READ COMMITTED reads stay on the first snapshot
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS counter")
        connection.exec_driver_sql("CREATE TABLE counter (id INT PRIMARY KEY, n INT)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (1, 1)")
    raw = create_engine(url, isolation_level="READ COMMITTED",
                        connect_args={"init_command": "SET SESSION tidb_txn_mode='optimistic'"})
    both = create_engine(url, isolation_level="READ COMMITTED",
                         execution_options={"tidb_txn_mode": "optimistic"})
    pessimistic = create_engine(url, isolation_level="READ COMMITTED")
    try:
        with raw.connect() as connection:
            first = connection.scalar(text("SELECT n FROM counter"))
            with engine.begin() as other:
                other.exec_driver_sql("UPDATE counter SET n = 2")
            second = connection.scalar(text("SELECT n FROM counter"))
        assert (first, second) == (1, 1)  # a committed change is not seen: not READ COMMITTED
        with pytest.raises(UnsupportedByTiDB, match="ignores READ COMMITTED in optimistic"):
            both.connect()
        with pessimistic.connect() as connection:
            assert connection.scalar(text("SELECT @@tidb_txn_mode")) == "pessimistic"
            assert connection.get_isolation_level() == "READ COMMITTED"
    finally:
        for made in (raw, both, pessimistic):
            made.dispose()
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE counter")

"""tidb+asyncmy:// against the real TiDB: the TiDB additions of tidb://, through asyncio."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, Sequence, String, Table, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy_tidb import VECTOR, InvalidDialectOption, WriteConflict, run_transaction_async
from sqlalchemy_tidb.asyncmy import TiDBDialect_asyncmy

pytest.importorskip("asyncmy")


@pytest.fixture(scope="module")
def async_url(database_url: URL) -> URL:
    """The session's database, through the async driver."""
    return database_url.set(drivername="tidb+asyncmy")


def run(url: URL, work: Callable[[AsyncEngine], Awaitable[Any]], **options: Any) -> Any:
    """Run `work(engine)` on a fresh async engine in its own event loop, then dispose of it."""
    async def main() -> Any:
        engine = create_async_engine(url, **options)
        try:
            return await work(engine)
        finally:
            await engine.dispose()
    return asyncio.run(main())


def test_the_async_url_gives_the_tidb_dialect_and_reads_the_tidb_version(async_url: URL) -> None:
    async def work(engine: AsyncEngine) -> tuple[Any, ...]:
        async with engine.connect() as connection:
            version = (await connection.execute(text("SELECT VERSION()"))).scalar()
        return version, engine.dialect.tidb_version

    version, tidb_version = run(async_url, work)
    assert "-TiDB-" in version
    assert type(create_async_engine(async_url).dialect) is TiDBDialect_asyncmy
    assert tidb_version is not None and tidb_version >= (6, 2)
    assert version.split("-TiDB-v")[1].startswith(".".join(map(str, tidb_version)))


def test_a_lost_write_conflict_is_a_write_conflict_and_an_operational_error(
        async_url: URL) -> None:
    import asyncmy

    table = f"conflict_{secrets.token_hex(3)}"

    async def work(engine: AsyncEngine) -> BaseException:
        optimistic = engine.execution_options(tidb_txn_mode="optimistic")
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT)")
            await connection.exec_driver_sql(f"INSERT INTO {table} VALUES (1, 0)")
        async with optimistic.connect() as first, optimistic.connect() as second:
            await first.exec_driver_sql(f"UPDATE {table} SET n = 1 WHERE id = 1")
            await second.exec_driver_sql(f"UPDATE {table} SET n = 2 WHERE id = 1")
            await first.commit()
            with pytest.raises(OperationalError) as raised:
                await second.commit()
        async with engine.connect() as connection:
            n = (await connection.exec_driver_sql(f"SELECT n FROM {table}")).scalar()
        assert n == 1, "the first writer's commit stands"
        return raised.value

    error = run(async_url, work)
    assert isinstance(error, WriteConflict)
    assert isinstance(error.orig, asyncmy.errors.OperationalError)
    assert error.error_code == 9007
    assert "run_transaction" in str(error)


def test_tidb_txn_mode_is_set_per_connection_and_checked(async_url: URL) -> None:
    async def work(engine: AsyncEngine) -> list[str]:
        modes = []
        for mode in ("optimistic", "pessimistic"):
            async with engine.execution_options(tidb_txn_mode=mode).connect() as connection:
                modes.append((await connection.exec_driver_sql(
                    "SELECT @@SESSION.tidb_txn_mode")).scalar())
        with pytest.raises(InvalidDialectOption, match="not a TiDB transaction mode"):
            engine.execution_options(tidb_txn_mode="eager")
        async with engine.connect() as connection:
            with pytest.raises(InvalidDialectOption, match="not a TiDB transaction mode"):
                await connection.execution_options(tidb_txn_mode="eager")
        return modes

    assert run(async_url, work) == ["optimistic", "pessimistic"]


def test_sequences_and_auto_random_keys_come_back_from_inserts(async_url: URL) -> None:
    suffix = secrets.token_hex(3)
    metadata = MetaData()
    numbered = Table(f"numbered_{suffix}", metadata,
                     Column("id", Integer, Sequence(f"numbers_{suffix}", start=100),
                            primary_key=True),
                     Column("name", String(20)))
    scattered = Table(f"scattered_{suffix}", metadata,
                      Column("id", BigInteger, primary_key=True, tidb_auto_random=5),
                      Column("name", String(20)))

    async def work(engine: AsyncEngine) -> tuple[Any, ...]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            first, second, key = [
                (await connection.execute(table.insert(), {"name": name})).inserted_primary_key
                for table, name in ((numbered, "a"), (numbered, "b"), (scattered, "c"))]
            stored = (await connection.execute(
                select(scattered.c.name).where(scattered.c.id == key[0]))).scalar()
            ddl = (await connection.exec_driver_sql(
                f"SHOW CREATE TABLE scattered_{suffix}")).one()[1]
            has_sequence = await connection.run_sync(
                lambda sync: engine.dialect.has_sequence(sync, f"numbers_{suffix}"))
        return first[0], second[0], stored, ddl, has_sequence

    first, second, stored, ddl, has_sequence = run(async_url, work)
    assert (first, second) == (100, 101)
    assert has_sequence
    assert stored == "c"
    assert "AUTO_RANDOM(5)" in ddl


def test_a_vector_goes_in_and_comes_back(async_url: URL) -> None:
    metadata = MetaData()
    docs = Table(f"docs_{secrets.token_hex(3)}", metadata,
                 Column("id", Integer, primary_key=True), Column("embedding", VECTOR(3)))

    async def work(engine: AsyncEngine) -> tuple[Any, ...]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(docs.insert(), [{"id": 1, "embedding": [1.0, 2.5, -3.0]},
                                                     {"id": 2, "embedding": [0.0, 1.0, 0.0]}])
            back = (await connection.execute(select(docs.c.embedding).where(docs.c.id == 1)))
            nearest = await connection.execute(
                select(docs.c.id).order_by(docs.c.embedding.l2_distance([0.0, 1.0, 0.1])))
            return list(back.scalar()), list(nearest.scalars())

    embedding, nearest = run(async_url, work)
    assert embedding == [1.0, 2.5, -3.0]
    assert nearest == [2, 1]


def test_a_utf8_password_logs_in(async_url: URL) -> None:
    user, password = f"async_{secrets.token_hex(3)}", "Pässwort-日本"

    async def create(engine: AsyncEngine) -> None:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")

    async def whoami(engine: AsyncEngine) -> str:
        async with engine.connect() as connection:
            return (await connection.exec_driver_sql("SELECT CURRENT_USER()")).scalar()

    async def drop(engine: AsyncEngine) -> None:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")

    run(async_url, create)
    try:
        as_user = URL.create(async_url.drivername, user, password, async_url.host, async_url.port)
        assert run(as_user, whoami) == f"{user}@127.0.0.1"
    finally:
        run(async_url, drop)


def test_write_timeout_is_refused_and_read_timeout_bounds_a_statement(async_url: URL) -> None:
    with pytest.raises(InvalidDialectOption, match="write_timeout cannot be honoured"):
        create_async_engine(async_url.update_query_dict({"write_timeout": "5"}))

    async def slow(engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT SLEEP(3)")

    with pytest.raises(OperationalError):
        run(async_url.update_query_dict({"read_timeout": "1"}), slow)


def test_tls_asked_for_from_a_server_without_it_is_refused_clearly(async_url: URL) -> None:
    async def offers_tls(engine: AsyncEngine) -> bool:
        async with engine.connect():
            return engine.dialect.uses_tls

    if run(async_url, offers_tls):
        pytest.skip("this TiDB offers TLS; the refusal needs one without it")

    async def connect(engine: AsyncEngine) -> None:
        async with engine.connect():
            pass

    with pytest.raises(OperationalError, match="the server does not offer it") as raised:
        run(async_url.update_query_dict({"ssl_verify_cert": "true"}), connect)
    assert raised.value.orig.args[0] == 2026


def test_a_port_that_is_not_mysql_is_named_within_the_connect_timeout(async_url: URL) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        silent = async_url.set(host="127.0.0.1", port=listener.getsockname()[1])

        async def connect(engine: AsyncEngine) -> None:
            async with engine.connect():
                pass

        with pytest.raises(OperationalError, match="sent no MySQL greeting within 1 s"):
            run(silent.update_query_dict({"connect_timeout": "1"}), connect)
    finally:
        listener.close()


def test_run_transaction_async_runs_the_loser_of_a_write_conflict_again(async_url: URL) -> None:
    table = f"counter_{secrets.token_hex(3)}"

    async def work(engine: AsyncEngine) -> tuple[int, list[int]]:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT)")
            await connection.exec_driver_sql(f"INSERT INTO {table} VALUES (1, 0)")
        optimistic = engine.execution_options(tidb_txn_mode="optimistic")
        both_read = asyncio.Barrier(2)
        retried: list[int] = []

        async def increment(connection: Any) -> None:
            n = (await connection.exec_driver_sql(f"SELECT n FROM {table} WHERE id = 1")).scalar()
            if not retried:  # the first attempts: both read 0 before either writes
                await both_read.wait()
            await connection.exec_driver_sql(f"UPDATE {table} SET n = {n + 1} WHERE id = 1")

        await asyncio.gather(*(run_transaction_async(
            optimistic, increment, max_backoff=0.01,
            on_retry=lambda attempt, error, pause: retried.append(error.orig.args[0]))
            for _ in range(2)))
        async with engine.connect() as connection:
            n = (await connection.exec_driver_sql(f"SELECT n FROM {table}")).scalar()
        return n, retried

    n, retried = run(async_url, work)
    assert retried == [9007], "one of the two lost the conflict and ran again"
    assert n == 2, "both increments are counted"


def test_run_transaction_async_refuses_a_session_or_connection(async_url: URL) -> None:
    async def work(engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            with pytest.raises(ArgumentError, match="AsyncEngine or async_sessionmaker"):
                await run_transaction_async(connection, lambda c: c.execute(text("SELECT 1")))

    run(async_url, work)

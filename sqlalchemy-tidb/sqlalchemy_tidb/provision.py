"""Provisioning hooks that let SQLAlchemy's compliance suite run against `tidb://` URLs.

SQLAlchemy's test plugin calls `Dialect.load_provisioning()`, which imports the module
`provision` next to the module that defines the dialect class: for `TiDBDialect`
(`sqlalchemy_tidb.base`) that is this module. Importing it registers, for the backend name
`tidb`, the hooks SQLAlchemy keeps for `mysql` in `sqlalchemy.dialects.mysql.provision`
(which is not loaded for a third-party backend name): creating and dropping the test
databases with their `test_schema` / `test_schema_2` companions, temporary tables, and
deleting from every table with foreign-key checks off.

Only the compliance suites import this module (test/compliance/); it needs pytest.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.testing.provision import (
    configure_follower,
    create_db,
    delete_from_all_tables,
    drop_db,
    set_default_schema_on_connection,
    temp_table_keyword_args,
)

#: The schemas the suite expects next to its main database, as suffixes of that database's name.
TEST_SCHEMA_SUFFIXES = ("_test_schema", "_test_schema_2")

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


def test_database_names(ident: str) -> list[str]:
    """The databases the suite uses for one run: `ident` and its two test schemas."""
    if not _PLAIN_NAME.fullmatch(ident):
        raise ValueError(f"{ident!r} is not usable as a test database name: use letters, digits "
                       "and underscores (at most 41), starting with a letter.")
    return [ident, *(ident + suffix for suffix in TEST_SCHEMA_SUFFIXES)]


@create_db.for_db("tidb")
def _tidb_create_db(cfg: Any, eng: Engine, ident: str) -> None:
    """Create (afresh) the suite's database and its two test schemas."""
    _tidb_drop_db(cfg, eng, ident)
    with eng.begin() as conn:
        for name in test_database_names(ident):
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


@drop_db.for_db("tidb")
def _tidb_drop_db(cfg: Any, eng: Engine, ident: str) -> None:
    """Drop the suite's database and its test schemas; absent ones are fine."""
    with eng.begin() as conn:
        for name in test_database_names(ident):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


@configure_follower.for_db("tidb")
def _tidb_configure_follower(config: Any, ident: str) -> None:
    config.test_schema, config.test_schema_2 = test_database_names(ident)[1:]


@temp_table_keyword_args.for_db("tidb")
def _tidb_temp_table_keyword_args(cfg: Any, eng: Any) -> dict[str, list[str]]:
    # TiDB has had local temporary tables (CREATE TEMPORARY TABLE) since v5.3.
    return {"prefixes": ["TEMPORARY"]}


@set_default_schema_on_connection.for_db("tidb")
def _tidb_set_default_schema(cfg: Any, dbapi_connection: Any, schema_name: str) -> None:
    # A MySQL "schema" is a database; USE switches the connection's default one.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"USE `{schema_name}`")
    finally:
        cursor.close()


@delete_from_all_tables.for_db("tidb")
def _tidb_delete_from_all_tables(connection: Connection, cfg: Any, metadata: Any) -> None:
    # Rows are deleted table by table; foreign keys (enforced since TiDB 6.6) would refuse
    # some orders of deletion, so they are off for the duration, as for MySQL.
    connection.exec_driver_sql("SET foreign_key_checks = 0")
    try:
        delete_from_all_tables.call_original(connection, cfg, metadata)
    finally:
        connection.exec_driver_sql("SET foreign_key_checks = 1")

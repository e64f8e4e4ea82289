"""The tidb:// dialect against the real server: version, URLs, savepoints, rollback, XA."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy_tidb import NotTiDB, TiDBDialect, UnsupportedByTiDB, parse_tidb_version


@pytest.mark.parametrize(("reported", "expected"), [
    ("8.0.11-TiDB-v8.5.6", (8, 5, 6)),
    ("8.0.11-TiDB-v7.5.2-serverless", (7, 5, 2)),
    ("5.7.25-TiDB-v6.1.0", (6, 1, 0)),
    ("8.0.11-TiDB-v8.5.6-dirty", (8, 5, 6)),
    ("8.0.11-TiDB-v8.5.8-ac41d7e3c8fc", (8, 5, 8)),
    ("8.0.11-TiDB-None", None),
])
def test_parse_tidb_version(reported, expected):
    assert parse_tidb_version(reported) == expected


def test_a_mysql_server_is_not_taken_for_tidb():
    with pytest.raises(NotTiDB, match=r"8\.0\.36"):
        parse_tidb_version("8.0.36")


def test_engine_reports_tidb_version(engine):
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert isinstance(engine.dialect, TiDBDialect)
    assert engine.dialect.tidb_version[:2] == (8, 5)
    assert engine.dialect.server_version_info[:3] == (8, 0, 11)


def test_tutorial_url_string_works_unchanged(database_url, test_database):
    url = database_url.render_as_string(hide_password=False)
    engine = create_engine(url, echo=False)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT DATABASE()")).scalar() == test_database
    engine.dispose()


def test_tidb_scheme_resolves_through_the_entry_point_alone():
    # A fresh interpreter that never imports the package: only the entry point can help.
    code = ("import sqlalchemy as sa;"
            "print(type(sa.create_engine('tidb://root:@127.0.0.1:4000/x').dialect).__name__);"
            "print(type(sa.create_engine('tidb+pymysql://root:@127.0.0.1:4000/x').dialect)"
            ".__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["TiDBDialect", "TiDBDialect"]


@pytest.fixture
def notes(engine):
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS notes")
        connection.exec_driver_sql("CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(20))")
    yield "notes"
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS notes")


def bodies(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT body FROM notes ORDER BY id")).scalars())


def test_rollback_discards_the_transaction(engine, notes):
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO notes VALUES (1, 'draft')"))
        connection.rollback()
    assert bodies(engine) == []


def test_savepoint_rolls_back_only_the_nested_part(engine, notes):
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO notes VALUES (1, 'kept')"))
        nested = connection.begin_nested()
        connection.execute(text("INSERT INTO notes VALUES (2, 'undone')"))
        nested.rollback()
        connection.execute(text("INSERT INTO notes VALUES (3, 'also kept')"))
    assert bodies(engine) == ["kept", "also kept"]


def test_savepoints_are_refused_clearly_before_tidb_6_2(database_url, notes):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        engine.dialect.tidb_version = (6, 1, 0)
        with pytest.raises(UnsupportedByTiDB, match=r"6\.2"):
            connection.begin_nested()
    engine.dispose()


def test_tidb_itself_has_no_xa(engine):
    with engine.connect() as connection, pytest.raises(Exception, match=r"(?i)xa|syntax"):
        connection.exec_driver_sql("XA START 'crm'")


def test_two_phase_is_refused_with_advice(engine):
    with engine.connect() as connection, pytest.raises(UnsupportedByTiDB, match="XA"):
        connection.begin_twophase()

"""What a URL may say: any password, known options only, timeouts that are numbers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy_tidb import InvalidDialectOption

PASSWORDS = ["pässwörd-ünïcödé-日本", "pässwörd-ü1", "emoji-🔑-key", "plain-ascii-Pw-1",
             "quote'and\"back\\slash", "spaces and @:/?#[]%"]


@pytest.fixture
def account(tidb_url: URL, test_database: str) -> Iterator[tuple[str, URL]]:
    """A throwaway user name on the test server, dropped afterwards."""
    name = f"sqla_tidb_pw_{secrets.token_hex(3)}"
    server = create_engine(tidb_url)
    try:
        yield name, server.url
    finally:
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
        server.dispose()


@pytest.mark.parametrize("password", PASSWORDS)
def test_any_password_tidb_accepts_logs_in(account, tidb_url, test_database, password):
    name, _ = account
    server = create_engine(tidb_url)
    with server.begin() as connection:
        connection.exec_driver_sql("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, password))
        connection.exec_driver_sql(f"GRANT SELECT ON `{test_database}`.* TO '{name}'@'%%'")
    server.dispose()
    url = tidb_url.set(username=name, password=password, database=test_database)
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT CURRENT_USER()")).scalar().startswith(name)
    engine.dispose()
    wrong = create_engine(url.set(password=password + "x"))
    with pytest.raises(OperationalError) as refused, wrong.connect():
        pass
    assert refused.value.orig.args[0] == 1045
    wrong.dispose()


@pytest.mark.parametrize("query", ["foo=bar", "ssl_mode=REQUIRED", "conect_timeout=5"])
def test_an_unknown_url_option_is_refused_by_name(tidb_url, query):
    name = query.split("=")[0]
    with pytest.raises(InvalidDialectOption, match=name) as refused:
        create_engine(tidb_url.update_query_string(query, append=True))
    assert isinstance(refused.value, ArgumentError)


@pytest.mark.parametrize("query", ["connect_timeout=abc", "read_timeout=-5", "write_timeout=0",
                                   "read_timeout=inf", "connect_timeout="])
def test_a_timeout_that_is_not_a_number_of_seconds_is_refused(tidb_url, query):
    name, value = query.split("=")
    url = tidb_url.update_query_string(query, append=True)
    if value == "":  # an empty option means "the default", as for every option
        with create_engine(url).connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        return
    with pytest.raises(InvalidDialectOption, match=f"{name} is '{value}'"):
        create_engine(url)


def test_fractional_timeouts_are_kept(tidb_url):
    engine = create_engine(
        tidb_url.update_query_string("connect_timeout=2.5&read_timeout=0.5", append=True))
    _, options = engine.dialect.create_connect_args(engine.url)
    assert (options["connect_timeout"], options["read_timeout"]) == (2.5, 0.5)
    with engine.connect() as connection, pytest.raises(OperationalError) as slow:
        connection.execute(text("SELECT SLEEP(3)"))
    assert "timed out" in str(slow.value)

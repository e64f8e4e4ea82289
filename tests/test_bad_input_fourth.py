"""The hostile-input sweep, fourth round: inputs of the issue's kinds that no round had tried.

Same harness as the other sweep modules (tests/bad_input.py). Bad inputs must end in a clear
project error that writes nothing; the valid ones here (a `Case` with `accepts`: NumPy
scalars, unsigned and float32 and DECIMAL results, unicode passwords, odd table names) must be
accepted and give back exactly what was given. The one table of outcomes for the whole
session is printed with `pytest -s`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import BigInteger, Column, Double, Float, MetaData, String, Table, text

from crm_helpers import config, engines
from crm_helpers.analysis import frames, generate, loader, reading, schema
from crm_helpers.lesson import accounts
from crm_helpers.local import server
from tests.bad_input import (
    ENGINE,
    USER,
    Case,
    case_param,
    cli_call,
    env_file_call,
    load,
    orders_frame,
    runner_call,
    spoiled,
    swept,
)


# ---------------------------------------------------------------------------- helpers
def url_settings(url: str) -> Callable[[Any], Any]:
    """load_settings with TIDB_URL alone."""
    return runner_call(config.load_settings, {"TIDB_URL": url}, env_file=None)


def env_settings(**variables: str) -> Callable[[Any], Any]:
    """load_settings with these variables alone."""
    return runner_call(config.load_settings, variables, env_file=None)


def first(frame: pd.DataFrame, column: str = "v") -> Any:
    """The first value of `column` as a plain Python value."""
    value = frame[column].iloc[0]
    return value.item() if isinstance(value, np.generic) else value


def read(sql: str, **params: Any) -> Callable[[Any], Any]:
    return runner_call(reading.read_frame, ENGINE, sql, params=params or None)


def same_as_read_sql(sql: str, **params: Any) -> Callable[[Any, Any], bool]:
    """The check that read_frame gave the values and dtypes pandas.read_sql gives."""
    def accepts(frame: pd.DataFrame, ctx: Any) -> bool:
        with ctx.analysis.connect() as connection:
            other = pd.read_sql(frames.bound_statement(sql, params or None), connection)
        assert list(frame.columns) == list(other.columns)
        for position in range(frame.shape[1]):
            mine, theirs = frame.iloc[:, position], other.iloc[:, position]
            assert (mine.tolist(), mine.dtype) == (theirs.tolist(), theirs.dtype)
        return True
    return accepts


@contextlib.contextmanager
def own_table(ctx: Any, *columns: Column, name: str | None = None) -> Iterator[Table]:
    """A table of one case in the analysis database, dropped afterwards."""
    table = Table(name or f"sweep4_{secrets.token_hex(3)}", MetaData(),
                  Column("id", BigInteger, primary_key=True, autoincrement=False), *columns)
    table.create(ctx.analysis)
    try:
        yield table
    finally:
        table.drop(ctx.analysis)


def loaded_back(*columns: Column, values: Any, name: str | None = None
                ) -> Callable[[Any], Any]:
    """Load `values` as column `v` of a table of the case's own; the rows TiDB gives back."""
    def call(ctx: Any) -> Any:
        with own_table(ctx, *columns, name=name) as table:
            frame = pd.DataFrame({"id": range(1, len(values) + 1)})
            frame[columns[0].name] = values
            loader.load_frame(ctx.analysis, table, frame, progress=False)
            with ctx.analysis.connect() as connection:
                return [tuple(row)[1:] for row in connection.execute(
                    table.select().order_by(table.c.id))]
    return call


def rows_are(*expected: tuple) -> Callable[[Any, Any], bool]:
    return lambda rows, ctx: rows == list(expected)


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def home_of(value: str) -> Callable[[Any], Any]:
    def call(ctx: Any) -> Any:
        with environment(TIDB_LOCAL_HOME=value):
            return server.local_tidb(ctx.settings).home
    return call


def unicode_password_login(ctx: Any) -> Any:
    """ensure_app_user with a password beyond Latin-1; then log in through both read paths."""
    password = "pässwörd-日本-🔑"
    accounts.ensure_app_user(ctx.admin, USER, password, ctx.crm_database)
    engine = engines.tidb_engine(ctx.settings.url(ctx.crm_database, user=USER,
                                                  password=password))
    try:
        with engine.connect() as connection:
            user = connection.execute(text("SELECT CURRENT_USER()")).scalar_one()
        frame = reading.read_frame(engine, "SELECT CURRENT_USER() AS u")
        return user, first(frame, "u"), frame.attrs["read_path"]
    finally:
        engine.dispose()


def arrow_decimals(values: list[str], precision: int, scale: int) -> pd.Series:
    return pd.Series([Decimal(value) for value in values],
                     dtype=pd.ArrowDtype(pa.decimal128(precision, scale)))


CASES: list[Case] = [
    # read_frame: values the analysts' frames hold, and the result types TiDB sends back
    Case("read_frame-param-uint64-max", read("SELECT :v AS v", v=np.uint64(2**64 - 1)), "",
         accepts=lambda frame, ctx: first(frame) == 2**64 - 1),
    Case("read_frame-param-2**63", read("SELECT :v AS v", v=2**63), "",
         accepts=lambda frame, ctx: first(frame) == 2**63),
    Case("read_frame-bigint-unsigned-column", read(
        "SELECT CAST(18446744073709551615 AS UNSIGNED) AS v"), "",
         accepts=lambda frame, ctx: first(frame) == 2**64 - 1),
    Case("read_frame-float-column", read("SELECT CAST(9.99 AS FLOAT) AS v"), "",
         accepts=same_as_read_sql("SELECT CAST(9.99 AS FLOAT) AS v")),
    Case("read_frame-decimal-column", read("SELECT CAST(12.34 AS DECIMAL(10,2)) AS v"), "",
         accepts=same_as_read_sql("SELECT CAST(12.34 AS DECIMAL(10,2)) AS v")),
    Case("read_frame-decimal-scale-20", read(
        "SELECT CAST('0.12345678901234567890' AS DECIMAL(30,20)) AS v"), "",
         accepts=same_as_read_sql(
             "SELECT CAST('0.12345678901234567890' AS DECIMAL(30,20)) AS v")),
    Case("read_frame-param-float32", read("SELECT :v AS v", v=np.float32(0.1)), "",
         accepts=same_as_read_sql("SELECT :v AS v", v=np.float32(0.1))),
    Case("read_frame-param-float", read("SELECT :v AS v", v=0.1), "",
         accepts=same_as_read_sql("SELECT :v AS v", v=0.1)),
    Case("read_frame-duplicate-column-names", read("SELECT 1 AS a, 2 AS a"), "",
         accepts=lambda frame, ctx: list(frame.columns) == ["a", "a"]
         and frame.iloc[0].tolist() == [1, 2]),
    Case("read_frame-chunksize-np-int64", lambda ctx: [len(chunk) for chunk in reading.read_frame(
        ctx.analysis, "SELECT oid FROM orders", chunksize=np.int64(40))], "",
         accepts=lambda sizes, ctx: sizes == [40, 40, 20]),
    Case("read_frame-param-unicode-quotes", read("SELECT :v AS v", v="ü'日本\\🎉%s"), "",
         accepts=lambda frame, ctx: first(frame) == "ü'日本\\🎉%s"),

    # load_frame: the one exactness rule for every number type, and odd dtypes
    # (new oids: a frame the checks let through is written, not taken for a resumed load)
    Case("load_frame-longdouble-price", lambda ctx: load(ctx, spoiled(
        oid=lambda f: f["oid"] + 10_000, price=lambda f: f["price"].astype(np.longdouble) / 3)),
         "exactly"),
    Case("load_frame-arrow-decimal-inexact", lambda ctx: load(ctx, spoiled(
        oid=lambda f: f["oid"] + 10_000,
        price=lambda f: arrow_decimals(["0.1000000000000000000001"] * len(f), 38, 22))),
         "exactly"),
    Case("load_frame-arrow-decimal-exact", loaded_back(
        Column("v", Double), values=arrow_decimals(["12.34", "0.5"], 10, 2)), "",
         accepts=rows_are((12.34,), (0.5,))),
    Case("load_frame-object-float32-into-double", loaded_back(
        Column("v", Double), values=pd.Series([np.float32(0.1), np.float32(2.5)],
                                              dtype=object)), "",
         accepts=rows_are((0.1,), (2.5,))),
    Case("load_frame-object-float32-into-float", loaded_back(
        Column("v", Float), values=pd.Series([np.float32(0.1)], dtype=object)), "",
         accepts=lambda rows, ctx: str(np.float32(rows[0][0])) == "0.1"),
    Case("load_frame-arrow-date32-times", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: pd.Series([dt.date(2025, 1, 2)] * len(f),
                                       dtype=pd.ArrowDtype(pa.date32())))), "ordered_at"),
    Case("load_frame-object-huge-int-oid", lambda ctx: load(ctx, spoiled(
        oid=lambda f: pd.Series([2**70, *f["oid"].tolist()[1:]], dtype=object))), "outside"),
    Case("load_frame-object-int-oid", loaded_back(
        Column("v", BigInteger), values=pd.Series([5, None, -(2**63)], dtype=object)), "",
         accepts=rows_are((5,), (None,), (-(2**63),))),
    Case("load_frame-object-text-among-prices", lambda ctx: load(ctx, spoiled(
        price=lambda f: pd.Series(["2.5", *f["price"].tolist()[1:]], dtype=object))),
         "numbers"),
    Case("load_frame-nullable-Float64", loaded_back(
        Column("v", Double), values=pd.array([0.1, None], dtype="Float64")), "",
         accepts=rows_are((0.1,), (None,))),
    Case("load_frame-arrow-timestamp", loaded_back(
        Column("v", schema.analysis_orders.c.ordered_at.type),
        values=pd.Series(pd.to_datetime(["2025-01-02 03:04:05"])).astype(
            pd.ArrowDtype(pa.timestamp("us")))), "",
         accepts=rows_are((dt.datetime(2025, 1, 2, 3, 4, 5),))),
    Case("load_frame-datetime64-seconds", loaded_back(
        Column("v", schema.analysis_orders.c.ordered_at.type),
        values=pd.Series(np.array(["1000-01-01T00:00:00", "9999-12-31T23:59:59"],
                                  dtype="datetime64[s]"))), "",
         accepts=rows_are((dt.datetime(1000, 1, 1),), (dt.datetime(9999, 12, 31, 23, 59, 59),))),
    Case("load_frame-text-escapes-and-emoji", loaded_back(
        Column("v", String(50)), values=["a\r\nb\tc", "\\N", "NULL", "🎉" * 50, '"q",x']), "",
         accepts=rows_are(("a\r\nb\tc",), ("\\N",), ("NULL",), ("🎉" * 50,), ('"q",x',))),
    Case("load_frame-category-text", loaded_back(
        Column("v", String(5)), values=pd.Series(["a", None, "a"], dtype="category")), "",
         accepts=rows_are(("a",), (None,), ("a",))),
    Case("load_frame-table-name-quotes-unicode", loaded_back(
        Column("v", BigInteger), values=[3, 4], name="заказы %`'\" x"), "",
         accepts=rows_are((3,), (4,))),
    Case("load_frame-empty-frame", lambda ctx: load(ctx, orders_frame().iloc[:0]), "",
         accepts=lambda report, ctx: report.rows == 0 and report.loaded == 0),

    # URL and .env syntax
    Case("load_settings-TIDB_URL-latin-1-escape", url_settings(
        "tidb://root:p%E4ss@127.0.0.1:4000/x"), "UTF-8"),
    Case("load_settings-TIDB_URL-at-in-query", url_settings(
        "tidb://root@127.0.0.1:4000/x?init_command=SET%20@a%3D1"), "'@'.*%40"),
    Case("load_settings-TIDB_URL-fragment", url_settings("tidb://root@127.0.0.1:4000/x#frag"),
         "'#'.*%23"),
    Case("load_settings-TIDB_URL-option-twice", url_settings(
        "tidb://root@127.0.0.1:4000/x?read_timeout=5&read_timeout=6"), "read_timeout.*once"),
    Case("load_settings-TIDB_URL-unicode-password", url_settings(
        "tidb://root:p%C3%A4ss%F0%9F%94%91@127.0.0.1:4000/x"), "",
         accepts=lambda settings, ctx: settings.password == "päss🔑"),
    Case("load_settings-TIDB_HOST-with-port", env_settings(TIDB_HOST="127.0.0.1:4000"),
         "TIDB_HOST.*TIDB_PORT"),
    Case("load_settings-TIDB_HOST-with-scheme", env_settings(TIDB_HOST="tidb://db.example"),
         "TIDB_HOST.*host name"),
    Case("load_settings-TIDB_HOST-with-space", env_settings(TIDB_HOST="db.example "),
         "TIDB_HOST.*space"),
    Case("load_settings-CRM_APP_USER-33-chars", env_settings(CRM_APP_USER="u" * 33), "32"),
    Case("load_settings-env-crlf-unicode-password", env_file_call(
        "TIDB_PASSWORD=päss-日本\r\nTIDB_PORT=4100\r\n".encode()), "",
         accepts=lambda s, ctx: (s.password, s.port) == ("päss-日本", 4100)),
    Case("load_settings-env-bom-export-quotes", env_file_call(
        b"\xef\xbb\xbfexport TIDB_PASSWORD='p\"w\\x #1'\n"), "",
         accepts=lambda s, ctx: s.password == 'p"w\\x #1'),

    # accounts and connections
    Case("ensure_app_user-unicode-password-logs-in", unicode_password_login, "",
         accepts=lambda result, ctx: result[0] == result[1] == f"{USER}@%"),
    Case("ensure_app_user-33-char-user", lambda ctx: accounts.ensure_app_user(
        ctx.admin, "u" * 33, "Good-Password-1", ctx.crm_database), "32"),
    Case("privilege_probe-empty-statement", runner_call(
        accounts.privilege_probe_frame, ENGINE, ["SELECT 1", "  "]), "empty"),
    Case("tidb_engine-host-empty-label", lambda ctx: engines.tidb_engine(
        f"tidb://root@a..b:{ctx.settings.port}/x"), "host name"),
    Case("tidb_engine-unicode-host", lambda ctx: engines.tidb_engine(
        f"tidb://root@ホスト.invalid:{ctx.settings.port}/x"), "ホスト"),

    # the local TiDB and crm-tidb with odd environments
    Case("local_tidb-home-with-tilde", home_of("~/crm-sweep-home"), "",
         accepts=lambda home, ctx: home == Path.home() / "crm-sweep-home"),
    Case("cli-build-cache-is-a-file", cli_call("build"), "TIDB_CRM_CACHE", cli=True,
         env={"TIDB_CRM_CACHE": "/etc/hostname"}),
    Case("cli-build-relative-xdg-cache", cli_call("build"), "", cli=True,
         env={"XDG_CACHE_HOME": "relative-cache"},
         accepts=lambda exit_code, ctx: exit_code == 0),
    Case("cli-up-with-TIDB_HOST", cli_call("up"), "TIDB_HOST.*nothing", cli=True,
         env={"TIDB_HOST": "localhost", "TIDB_PORT": "{free}"}),
    Case("cli-up-port-with-TIDB_URL", cli_call("up", "--port", "4999"), "--port.*TIDB_URL",
         cli=True, env={"TIDB_URL": "tidb://root@127.0.0.1:{free}/x"}),
    Case("cli-up-same-ports", cli_call("up"), "both", cli=True,
         env={"TIDB_PORT": "4998", "TIDB_STATUS_PORT": "4998"}),
    Case("generate_orders-np-int64-size", runner_call(generate.generate_orders, np.int64(5),
                                                      np.int64(3)), "",
         accepts=lambda frame, ctx: len(frame) == 5 and frame["uid"].between(1, 3).all()),
]


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_fourth_round_input_is_refused_clearly_or_accepted_exactly(bad_input_ctx, case):
    assert swept(case, bad_input_ctx) == case.expected

"""Bad input at the analysis stack (frames, reading, schema, loading, generation): a clear
error, nothing written.

One of the bad-input sweep's modules; what counts as clear, and the table of counts, are in
tests/bad_input.py.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import BigInteger, Column, MetaData, Table, delete

from crm_helpers.analysis import frames, generate, loader, reading, schema
from crm_helpers.lesson.models import Order, User
from tests.bad_input import (
    ENGINE,
    Case,
    Shade,
    at,
    case_param,
    crm_orders,
    functions_swept,
    keyless,
    load,
    orders_frame,
    runner_call,
    session_call,
    spoiled,
    swept,
    text_keyed,
)

#: What this module's cases give bad input to (the first part of each case's id).
SWEPT = {
    "query_frame", "users_frame", "orders_frame", "records_frame", "tidb_version_frame",
    "variables_frame", "explain_analyze", "tidy_dtypes", "read_frame", "load_frame",
    "load_generated", "analysis_engine", "reset_analysis_tables", "generate_users",
    "generate_orders", "default_user_count",
}

CASES: list[Case] = [
    # analysis/frames.py
    Case("query_frame-None-runner", runner_call(frames.query_frame, None, "SELECT 1"),
         "Engine"),
    Case("query_frame-int-sql", runner_call(frames.query_frame, ENGINE, 42), "SQL text"),
    Case("query_frame-delete", runner_call(frames.query_frame, ENGINE, "DELETE FROM orders"),
         "DELETE"),
    Case("query_frame-session-delete",
         session_call(frames.query_frame, "DELETE FROM orders WHERE oid = 1"), "DELETE"),
    Case("query_frame-syntax-error", runner_call(frames.query_frame, ENGINE, "SELECT FROM"),
         "syntax|SQL"),
    Case("query_frame-no-table", runner_call(frames.query_frame, ENGINE, "SELECT * FROM nope"),
         "nope"),
    Case("query_frame-wrong-param", runner_call(frames.query_frame, ENGINE, "SELECT :a", b=1),
         "parameters"),
    Case("users_frame-None", runner_call(frames.users_frame, None), "Engine"),
    Case("orders_frame-text", runner_call(frames.orders_frame, "engine"), "Engine"),
    Case("records_frame-short-record", runner_call(frames.records_frame, [("Ben",)],
                                                   ["name", "price"]), "2 values"),
    Case("records_frame-None", runner_call(frames.records_frame, None, ["a"]), "list of tuples"),
    Case("records_frame-text-columns", runner_call(frames.records_frame, [("a", 1)], "ab"),
         "column names"),
    Case("tidb_version_frame-None", runner_call(frames.tidb_version_frame, None), "Engine"),
    Case("variables_frame-text", runner_call(frames.variables_frame, ENGINE, "autocommit"),
         "list of variable names"),
    Case("variables_frame-None", runner_call(frames.variables_frame, ENGINE, None),
         "list of variable names"),
    Case("variables_frame-empty", runner_call(frames.variables_frame, ENGINE, []),
         "non-empty"),
    Case("explain_analyze-delete", runner_call(frames.explain_analyze_frame, ENGINE,
                                               "DELETE FROM orders"), "DELETE"),
    Case("explain_analyze-None", runner_call(frames.explain_analyze_frame, ENGINE, None),
         "SQL text"),
    Case("tidy_dtypes-None", runner_call(frames.tidy_dtypes, None), "DataFrame"),

    # analysis/reading.py
    Case("read_frame-delete", runner_call(reading.read_frame, ENGINE,
                                          "DELETE FROM orders WHERE oid = 2"), "DELETE"),
    Case("read_frame-two-statements", runner_call(reading.read_frame, ENGINE,
                                                  "SELECT 1; DROP TABLE orders"),
         "more than one statement"),
    Case("read_frame-delete-construct", runner_call(reading.read_frame, ENGINE,
                                                    delete(schema.analysis_orders)), "Delete"),
    Case("read_frame-outfile", runner_call(reading.read_frame, ENGINE,
                                           "SELECT * FROM orders INTO OUTFILE '/tmp/o'"),
         "INTO"),
    Case("read_frame-None-engine", runner_call(reading.read_frame, None, "SELECT 1"), "Engine"),
    Case("read_frame-None-query", runner_call(reading.read_frame, ENGINE, None), "SQL text"),
    Case("read_frame-chunksize-0", runner_call(reading.read_frame, ENGINE, "SELECT 1",
                                               chunksize=0), "chunksize"),
    Case("read_frame-chunksize-neg", runner_call(reading.read_frame, ENGINE, "SELECT 1",
                                                 chunksize=-1), "chunksize"),
    Case("read_frame-wrong-param", runner_call(reading.read_frame, ENGINE, "SELECT :a AS a",
                                               params={"b": 1}), "parameters"),
    Case("read_frame-params-text", runner_call(reading.read_frame, ENGINE, "SELECT 1",
                                               params="a"), "params"),
    Case("read_frame-unbound-param", runner_call(reading.read_frame, ENGINE, "SELECT :a AS a"),
         "without a value"),
    Case("query_frame-unbound-param", runner_call(frames.query_frame, ENGINE, "SELECT :a AS a"),
         "without a value"),
    Case("read_frame-object-param", runner_call(reading.read_frame, ENGINE, "SELECT :a AS a",
                                                params={"a": object()}), "Parameter 'a'"),
    Case("read_frame-chunks-no-table", lambda ctx: list(reading.read_frame(
        ctx.analysis, "SELECT * FROM nope", chunksize=10)), "nope"),
    Case("read_frame-no-table", runner_call(reading.read_frame, ENGINE, "SELECT * FROM nope"),
         "nope"),

    # analysis/schema.py and analysis/loader.py
    Case("load_frame-None-frame", lambda ctx: load(ctx, None), "DataFrame"),
    Case("load_frame-dict-frame", lambda ctx: load(ctx, {"oid": [1]}), "DataFrame"),
    Case("load_frame-table-name", lambda ctx: load(ctx, orders_frame(), "orders"), "Table"),
    Case("load_frame-None-engine", lambda ctx: loader.load_frame(
        None, schema.analysis_orders, orders_frame(), progress=False), "Engine"),
    Case("load_frame-batch-rows--1", lambda ctx: load(ctx, orders_frame(), batch_rows=-1),
         "batch_rows"),
    Case("load_frame-batch-rows-0", lambda ctx: load(ctx, orders_frame(), batch_rows=0),
         "batch_rows"),
    Case("load_frame-batch-rows-1.5", lambda ctx: load(ctx, orders_frame(), batch_rows=1.5),
         "batch_rows"),
    Case("load_frame-workers-0", lambda ctx: load(ctx, orders_frame(), workers=0), "workers"),
    Case("load_frame-workers--1", lambda ctx: load(ctx, orders_frame(), workers=-1), "workers"),
    Case("load_frame-duplicate-key", lambda ctx: load(ctx, at(orders_frame(), "oid", 250, 3),
                                                      batch_rows=100), "primary key"),
    # The analysis orders hold oids 1..100: 99 is there, 101 is not, so 101 must not be skipped.
    Case("load_frame-partly-present-keys", lambda ctx: load(ctx, orders_frame(3).assign(
        oid=[99, 101, 102]).iloc[:2], batch_rows=2), "already holds"),
    Case("load_frame-missing-column", lambda ctx: load(ctx, orders_frame().drop(
        columns=["price"])), "missing"),
    Case("load_frame-extra-column", lambda ctx: load(ctx, orders_frame().assign(note="x")),
         "unexpected"),
    Case("load_frame-text-prices", lambda ctx: load(ctx, spoiled(
        price=lambda f: f["price"].astype(str))), "must hold numbers"),
    Case("load_frame-nan-price", lambda ctx: load(ctx, at(orders_frame(), "price", 7, np.nan)),
         "no value"),
    Case("load_frame-negative-price", lambda ctx: load(ctx, at(orders_frame(), "price", 7,
                                                               -1.0)), "negative"),
    Case("load_frame-inf-price", lambda ctx: load(ctx, at(orders_frame(), "price", 7, np.inf)),
         "not finite"),
    Case("load_frame-orphan-uid", lambda ctx: load(ctx, at(orders_frame(), "uid", 3, 999_999)),
         "refer to no row"),
    Case("load_frame-float-uid", lambda ctx: load(ctx, spoiled(
        uid=lambda f: f["uid"] + 0.5)), "integers"),
    Case("load_frame-huge-uid", lambda ctx: load(ctx, at(orders_frame(), "uid", 3, 2**40)),
         "outside"),
    Case("load_frame-text-times", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: f["ordered_at"].astype(str))), "datetimes"),
    Case("load_frame-tz-aware", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: f["ordered_at"].dt.tz_localize("Asia/Tokyo"))), "time zone"),
    Case("load_frame-year-999", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: f["ordered_at"].to_numpy("datetime64[s]")
        - np.timedelta64(1100 * 365, "D"))), "1000 to 9999"),
    Case("load_frame-fractional-seconds", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: f["ordered_at"] + pd.Timedelta("1ms"))), "fractions"),
    Case("load_frame-long-name", lambda ctx: load(ctx, at(generate.generate_users(10), "name",
                                                          2, "x" * 51), schema.analysis_users),
         "longer than 50"),
    Case("load_frame-int-name", lambda ctx: load(ctx, at(generate.generate_users(10), "name",
                                                         2, 42), schema.analysis_users),
         "must hold text"),
    Case("load_frame-unknown-gender", lambda ctx: load(ctx, generate.generate_users(10).assign(
        gender="robot"), schema.analysis_users), "not one of"),
    Case("load_frame-surrogate", lambda ctx: load(ctx, at(generate.generate_users(10), "name",
                                                          2, "a\ud800"), schema.analysis_users),
         "UTF-8"),
    Case("load_frame-keyless-table", lambda ctx: load(ctx, pd.DataFrame({"name": ["a"]}),
                                                      keyless), "primary key"),
    Case("load_frame-text-key", lambda ctx: load(ctx, pd.DataFrame({"code": ["a"]}),
                                                 text_keyed), "primary key"),
    Case("load_frame-crm-negative-price", lambda ctx: loader.load_frame(
        ctx.crm, Order.__table__, crm_orders([2.5, -5.0]), progress=False), "negative"),
    Case("load_frame-crm-inexact-price", lambda ctx: loader.load_frame(
        ctx.crm, Order.__table__, crm_orders([123456789.99]), progress=False), "exactly"),
    Case("load_frame-crm-orphan", lambda ctx: loader.load_frame(
        ctx.crm, Order, crm_orders([1.0], [77]), progress=False), "refer to no row"),
    Case("load_frame-crm-uid-0", lambda ctx: loader.load_frame(
        ctx.crm, User, pd.DataFrame({"uid": [0], "name": ["Zed"], "gender": ["Male"]}),
        progress=False), "0"),
    Case("load_frame-no-local-infile", lambda ctx: loader.load_frame(
        ctx.plain_crm, User, pd.DataFrame({"uid": [50], "name": ["Zed"], "gender": ["Male"]}),
        progress=False), "local_infile"),
    Case("load_generated-negative", runner_call(loader.load_generated, ENGINE, -5), "-5"),
    Case("load_generated-text", runner_call(loader.load_generated, ENGINE, "100"), "'100'"),
    Case("load_generated-huge", runner_call(loader.load_generated, ENGINE, 10**12), "memory"),
    Case("load_generated-bad-seed", runner_call(loader.load_generated, ENGINE, 1_000, seed=-1,
                                                progress=False), "seed"),
    Case("load_generated-batch-0", runner_call(loader.load_generated, ENGINE, 1_000,
                                               batch_rows=0, progress=False), "batch_rows"),
    Case("analysis_engine-injection", lambda ctx: schema.analysis_engine(
        ctx.settings, database="x`; DROP DATABASE test; --"), "letters, digits"),
    Case("analysis_engine-None-db", lambda ctx: schema.analysis_engine(ctx.settings,
                                                                        database=None), "None"),
    Case("analysis_engine-empty-db", lambda ctx: schema.analysis_engine(ctx.settings,
                                                                         database=""), "''"),
    Case("analysis_engine-bad-settings", runner_call(schema.analysis_engine, "settings"),
         "Settings"),
    Case("analysis_engine-mysql", lambda ctx: schema.analysis_engine(ctx.settings,
                                                                      database="mysql"), "mysql"),
    Case("reset_analysis_tables-crm-engine", lambda ctx: schema.reset_analysis_tables(ctx.crm),
         "not an analysis database"),
    Case("load_generated-crm-engine", lambda ctx: loader.load_generated(ctx.crm, 1_000,
                                                                         progress=False),
         "not an analysis database"),
    Case("reset_analysis_tables-None", runner_call(schema.reset_analysis_tables, None),
         "Engine"),

    # analysis/generate.py
    Case("generate_users-negative", runner_call(generate.generate_users, -1), "-1"),
    Case("generate_users-float", runner_call(generate.generate_users, 2.5), "2.5"),
    Case("generate_users-text", runner_call(generate.generate_users, "10"), "'10'"),
    Case("generate_users-bool", runner_call(generate.generate_users, True), "True"),
    Case("generate_users-neg-seed", runner_call(generate.generate_users, 10, seed=-1), "seed"),
    Case("generate_users-text-seed", runner_call(generate.generate_users, 10, seed="x"),
         "seed"),
    Case("generate_orders-negative", runner_call(generate.generate_orders, -5), "-5"),
    Case("generate_orders-0-users", runner_call(generate.generate_orders, 10, n_users=0),
         "n_users"),
    Case("generate_orders-neg-users", runner_call(generate.generate_orders, 10, n_users=-3),
         "n_users"),
    Case("generate_users-huge", runner_call(generate.generate_users, 10**9), "memory"),
    Case("generate_orders-huge", runner_call(generate.generate_orders, 10**12), "memory"),
    Case("generate_orders-nan", runner_call(generate.generate_orders, float("nan")), "nan"),
    Case("default_user_count-None", runner_call(generate.default_user_count, None), "None"),

    # ------------------------------------------------ second round (issue 18): hostile values
    # read_frame/query_frame parameters: what would be sent changed is refused, naming it
    *[Case(f"read_frame-param-{label}", runner_call(reading.read_frame, ENGINE,
                                                   "SELECT 1 AS one WHERE 1 IN :v",
                                                   params={"v": value}), wrong)
      for label, value, wrong in [
          ("enum", Shade.dark, "Parameter 'v'.*Enum"),
          ("timedelta", timedelta(minutes=5), "Parameter 'v'.*seconds"),
          ("np-timedelta64", np.timedelta64(5, "s"), "Parameter 'v'.*duration"),
          ("nan", float("nan"), "Parameter 'v'.*None"),
          ("np-inf", np.float64("inf"), "Parameter 'v'.*finite"),
          ("NaT", pd.NaT, "Parameter 'v'.*None"),
          ("pd-NA", pd.NA, "Parameter 'v'.*None"),
          ("decimal-nan", Decimal("NaN"), "Parameter 'v'.*finite"),
          ("ns-timestamp", pd.Timestamp("2025-01-01 00:00:00.000000001"), "nanoseconds"),
          ("tz-timestamp", pd.Timestamp("2025-01-01", tz="UTC"), "time zone"),
          ("mixed-list", [1, "1"], "mixes"),
          ("int-float-list", [1, 2.5], "mixes"),
          ("nested-list", [[1, 2]], "list inside a list"),
          ("2d-array", np.ones((2, 2)), "2-dimensional"),
          ("complex", 1 + 2j, "complex"),
          ("np-complex", np.complex128(1), "complex"),
          ("surrogate", "a\ud800", "UTF-8"),
          ("dict", {"a": 1}, "dict"),
      ]],
    Case("read_frame-param-int-name", runner_call(reading.read_frame, ENGINE, "SELECT 1 AS a",
                                                  params={1: 2}), "Parameter name 1"),
    Case("query_frame-param-enum", runner_call(frames.query_frame, ENGINE, "SELECT :g AS g",
                                               g=Shade.dark), "Parameter 'g'.*Enum"),
    Case("query_frame-param-nan-in-list", runner_call(frames.query_frame, ENGINE,
                                                      "SELECT 1 AS a WHERE 1 IN :u",
                                                      u=[1.0, float("nan")]), "None"),
    Case("load_frame-complex128-price", lambda ctx: load(ctx, spoiled(
        price=lambda f: f["price"].astype("complex128"))), "complex"),
    Case("load_frame-object-complex-price", lambda ctx: load(ctx, at(orders_frame(), "price", 4,
                                                                     1 + 0j)), "numbers"),
    Case("load_frame-crm-decimal-rounds-up", lambda ctx: loader.load_frame(
        ctx.crm, Order.__table__, crm_orders([Decimal("9.999999999999999999")]),
        progress=False), "exactly"),
    Case("load_frame-crm-decimal-underflows", lambda ctx: loader.load_frame(
        ctx.crm, Order.__table__, crm_orders([Decimal("1E-400")]), progress=False), "exactly"),
    Case("load_frame-double-decimal-inexact", lambda ctx: load(ctx, at(
        orders_frame(), "price", 4, Decimal("0.1000000000000000000001"))), "exactly"),
    Case("load_frame-double-int-2**53+1", lambda ctx: load(ctx, spoiled(price=lambda f: pd.Series(
        [2**53 + 1, *f["price"].tolist()[1:]], dtype=object))), "exactly"),
    Case("load_frame-decimal-snan", lambda ctx: load(ctx, at(orders_frame(), "price", 4,
                                                             Decimal("sNaN"))), "numbers|NaN"),
    Case("load_frame-bool-prices", lambda ctx: load(ctx, spoiled(
        price=lambda f: f["price"] > 50)), "must hold numbers"),
    Case("load_frame-uint64-huge-oid", lambda ctx: load(ctx, spoiled(
        oid=lambda f: f["oid"].astype("uint64") + np.uint64(2**63))), "outside"),
    Case("load_frame-nullable-NA-price", lambda ctx: load(ctx, spoiled(
        price=lambda f: pd.array([None, *f["price"].tolist()[1:]], dtype="Float64"))),
         "no value"),

    # names: one rule (fullmatch), and no user names without a visible character
    Case("analysis_engine-trailing-newline", lambda ctx: schema.analysis_engine(
        ctx.settings, database="rel_nl\n"), "rel_nl"),
    Case("analysis_engine-dot", lambda ctx: schema.analysis_engine(ctx.settings,
                                                                    database="crm.x"), "crm.x"),
    Case("analysis_engine-zero-width", lambda ctx: schema.analysis_engine(
        ctx.settings, database="crm\u200b"), "letters, digits"),
    Case("load_frame-crm-invisible-name", lambda ctx: loader.load_frame(
        ctx.crm, User, pd.DataFrame({"uid": [60], "name": ["\u3000"], "gender": ["Male"]}),
        progress=False), "visible|empty"),

    # sizes
    Case("load_frame-60000-columns", lambda ctx: load(ctx, pd.DataFrame(
        np.zeros((2, 60_000)), columns=[f"c{i}" for i in range(60_000)])), "unexpected"),
    Case("load_frame-int-column-names", lambda ctx: load(ctx, pd.DataFrame(
        np.zeros((2, 4)))), "missing"),
    Case("read_frame-param-100k-list", runner_call(
        reading.read_frame, ENGINE, "SELECT 1 AS a WHERE 1 IN :u",
        params={"u": [*range(99_999), "x"]}), "mixes"),

    # names with quotes: a table that is not there, named like an injection
    Case("load_frame-missing-odd-table", lambda ctx: load(
        ctx, pd.DataFrame({"id": [1]}), Table("no`such'table", MetaData(),
                                              Column("id", BigInteger, primary_key=True,
                                                     autoincrement=False))),
         "no`such'table"),
]


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_bad_input_gets_a_clear_error_and_writes_nothing(bad_input_ctx, case):
    assert swept(case, bad_input_ctx) == "clear"


def test_the_sweep_reaches_every_function_here():
    assert functions_swept(CASES) >= SWEPT



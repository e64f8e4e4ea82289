"""The hostile-input sweep, third round: new inputs of the issue's kinds (issue 18).

Same harness as the other sweep modules (tests/bad_input.py: `Case`, `swept`, the session's
`bad_input_ctx`): each case must end in a clear project error that says what to do, and write
nothing. The one table of outcomes for the whole session is printed with `pytest -s`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import BigInteger, Column, Float, MetaData, Table

from crm_helpers import config
from crm_helpers.analysis import frames, generate, loader, reading, schema
from crm_helpers.lesson import operations
from tests.bad_input import (
    ENGINE,
    Case,
    at,
    case_param,
    cli_call,
    env_file_call,
    load,
    orders_frame,
    runner_call,
    session_call,
    spoiled,
    swept,
)


def url_settings(url: str):
    """load_settings with TIDB_URL alone."""
    return runner_call(config.load_settings, {"TIDB_URL": url}, env_file=None)


measures = Table("sweep_measures", MetaData(), Column("id", BigInteger, primary_key=True,
                                                      autoincrement=False),
                 Column("value", Float))

CASES: list[Case] = [
    # URL syntax: percent signs, brackets, options
    *[Case(f"load_settings-TIDB_URL-{label}", url_settings(url), wrong)
      for label, url, wrong in [
          ("bare-percent-in-password", "tidb://root:50%off@127.0.0.1:4000/x", "%25"),
          ("percent-at-end-of-password", "tidb://root:pw%@127.0.0.1:4000/x", "%25"),
          ("one-hex-digit-after-percent", "tidb://root:pw%4@127.0.0.1:4000/x", "%25"),
          ("percent-in-user", "tidb://ro%ot:pw@127.0.0.1:4000/x", "%25"),
          ("unclosed-ipv6-bracket", "tidb://root@[::1:4000/x", "URL|host"),
          ("read-timeout-zero", "tidb://root@127.0.0.1:4000/x?read_timeout=0", "read_timeout"),
          ("connect-timeout-word", "tidb://root@127.0.0.1:4000/x?connect_timeout=ten",
           "connect_timeout"),
          ("unknown-ssl-option", "tidb://root@127.0.0.1:4000/x?ssl_mode=REQUIRED", "ssl_mode"),
          ("database-with-backquote", "tidb://root@127.0.0.1:4000/cr%60m", "cr`m"),
          ("database-with-semicolon", "tidb://root@127.0.0.1:4000/crm;drop", "crm;drop"),
          ("scheme-uppercase-typo", "tibd://root@127.0.0.1:4000/x", "tibd"),
      ]],
    # .env syntax
    *[Case(f"load_settings-env-{label}", env_file_call(content), wrong)
      for label, content, wrong in [
          ("port-with-underscore", b"TIDB_PORT=40_00\n", "1 to 65535"),
          ("port-with-inline-text", b"TIDB_PORT=4000abc\n", "1 to 65535"),
          ("timeout-negative", b"TIDB_READ_TIMEOUT=-1\n", "seconds"),
          ("db-name-quoted-space", b"TIDB_DB_NAME='crm app'\n", "letters, digits"),
          ("db-name-backquote", b"TIDB_DB_NAME=crm`x\n", "letters, digits"),
          ("app-user-quote", b"CRM_APP_USER=crm'app\n", "letters, digits"),
          ("ca-path-missing", b"CA_PATH=/no/such/ca.pem\n", "not a file"),
          ("url-bare-percent", b"TIDB_URL=tidb://root:a%zz@127.0.0.1:4000/x\n", "%25"),
      ]],
    # unicode in the tutorial's operations
    Case("add_users-nul-in-name", session_call(operations.add_users, [("Ev\x00e", "Female")]),
         "NUL|control|character"),
    Case("add_users-51-emoji", session_call(operations.add_users, [("\U0001f600" * 51,
                                                                    "Female")]), "51"),
    Case("add_users-combining-only", session_call(operations.add_users, [("\u0301\u0301",
                                                                          "Male")]),
         "visible|empty"),
    Case("add_users-gender-fullwidth", session_call(operations.add_users,
                                                    [("Eve", "\uff26emale")]), "emale"),
    # NumPy / pandas dtypes into the loader
    Case("load_frame-float32-negative-prices", lambda ctx: load(ctx, spoiled(
        price=lambda f: (-f["price"]).astype("float32"))), "negative"),
    Case("load_frame-timedelta-times", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: f["ordered_at"] - f["ordered_at"].min())), "datetimes"),
    Case("load_frame-categorical-prices", lambda ctx: load(ctx, spoiled(
        price=lambda f: f["price"].astype("category"))), "numbers|category"),
    Case("load_frame-arrow-string-uid", lambda ctx: load(ctx, spoiled(
        uid=lambda f: f["uid"].astype(str).astype(pd.ArrowDtype(pa.string())))), "uid"),
    Case("load_frame-period-times", lambda ctx: load(ctx, spoiled(
        ordered_at=lambda f: f["ordered_at"].dt.to_period("D"))), "datetimes"),
    Case("load_frame-duplicate-column-names", lambda ctx: load(ctx, pd.concat(
        [orders_frame(), orders_frame()[["price"]]], axis=1)), "price"),
    Case("load_frame-multiindex-columns", lambda ctx: load(ctx, orders_frame().set_axis(
        pd.MultiIndex.from_tuples([(c, "x") for c in orders_frame().columns]), axis=1)),
         "column"),
    Case("load_frame-nullable-int-NA-uid", lambda ctx: load(ctx, spoiled(
        uid=lambda f: pd.array([None, *f["uid"].tolist()[1:]], dtype="Int64"))), "uid"),
    Case("load_frame-float32-inf", lambda ctx: load(ctx, at(orders_frame(), "price", 3,
                                                            np.float32("inf"))), "finite"),
    Case("load_frame-double-float32-huge-into-float", lambda ctx: loader.load_frame(
        ctx.analysis, measures, pd.DataFrame({"id": [1], "value": [1e39]}), progress=False),
         "too large"),
    # names with quotes
    Case("analysis_engine-backquote", lambda ctx: schema.analysis_engine(
        ctx.settings, database="crm`x"), "letters, digits"),
    Case("analysis_engine-quote-and-semicolon", lambda ctx: schema.analysis_engine(
        ctx.settings, database="x';DROP"), "letters, digits"),
    Case("read_frame-param-name-with-quote", runner_call(
        reading.read_frame, ENGINE, "SELECT 1 AS a", params={"a'b": 1}), "a'b"),
    # parameters: NumPy / pandas values
    Case("read_frame-param-np-datetime64-nat", runner_call(
        reading.read_frame, ENGINE, "SELECT :t AS t", params={"t": np.datetime64("NaT")}),
         "Parameter 't'"),
    Case("read_frame-param-pd-NA-in-list", runner_call(
        reading.read_frame, ENGINE, "SELECT 1 AS a WHERE 1 IN :u",
        params={"u": [1, pd.NA]}), "None|NA"),
    Case("query_frame-param-series", runner_call(
        frames.query_frame, ENGINE, "SELECT 1 AS a WHERE 1 IN :u",
        u=pd.Series([1, 2]).to_frame()), "Parameter 'u'"),
    # sizes
    Case("generate_orders-10**12", runner_call(generate.generate_orders, 10**12, 10), "orders"),
    Case("read_frame-chunksize-float", runner_call(reading.read_frame, ENGINE,
                                                   "SELECT 1 AS a", chunksize=1e5), "chunksize"),
    Case("read_frame-64k-query", runner_call(reading.read_frame, ENGINE,
                                             "SELECT 1 AS a; " * 5000), "one"),
    # the CLI
    Case("cli-up-port-with-plus", cli_call("up", "--port", "+4000"), "port", cli=True),
    Case("cli-url-bare-percent", cli_call("url"), "%25",
         cli=True, env={"TIDB_URL": "tidb://root:50%off@127.0.0.1:{free}/x"}),
]


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_new_bad_input_gets_a_clear_error_and_writes_nothing(bad_input_ctx, case):
    assert swept(case, bad_input_ctx) == "clear"

"""read_frame: the fast path and the fallback give the same frame."""

from __future__ import annotations

import enum
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from crm_helpers.analysis import reading
from crm_helpers.analysis.reading import read_frame
from crm_helpers.analysis.schema import analysis_orders
from crm_helpers.errors import CrmError, InvalidInput
from tests.conftest import loaded_analysis_database

JOINED = ("SELECT o.oid, o.uid, u.name, u.gender, o.price, o.ordered_at FROM orders o "
          "JOIN users u ON u.uid = o.uid WHERE o.price > :floor ORDER BY o.oid")
MONTHLY = ("SELECT DATE_FORMAT(ordered_at, '%Y-%m') AS month, COUNT(*) AS orders "
           "FROM orders GROUP BY month ORDER BY month")


@pytest.fixture(scope="module")
def loaded_analysis_engine(tidb_settings):
    with loaded_analysis_database(tidb_settings, "crm_pytest_read", users=300,
                                  orders=5_000) as loaded_analysis_engine:
        yield loaded_analysis_engine


def both_paths(engine, monkeypatch, query, **kwargs):
    fast = read_frame(engine, query, **kwargs)
    monkeypatch.setattr(reading, "connectorx", None)
    slow = read_frame(engine, query, **kwargs)
    return fast, slow


def test_fast_path_and_fallback_agree_on_values_and_dtypes(loaded_analysis_engine, monkeypatch):
    fast, slow = both_paths(loaded_analysis_engine, monkeypatch, JOINED, params={"floor": 50.0})
    assert (fast.attrs["read_path"], slow.attrs["read_path"]) == ("connectorx", "pandas.read_sql")
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.dtypes.astype(str).to_dict() == {
        "oid": "int64", "uid": "int64", "name": "str", "gender": "category",
        "price": "float64", "ordered_at": "datetime64[us]"}
    assert (fast["price"] > 50).all()


def test_percent_signs_in_sql_survive_the_fast_path(loaded_analysis_engine, monkeypatch):
    fast, slow = both_paths(loaded_analysis_engine, monkeypatch, MONTHLY)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["month"].iloc[0] == "2025-01" and fast["orders"].sum() == 5_000


def test_select_statements_are_accepted(loaded_analysis_engine):
    statement = select(analysis_orders).where(analysis_orders.c.uid == 7)
    frame = read_frame(loaded_analysis_engine, statement)
    assert (frame["uid"] == 7).all() and len(frame) > 0


def test_chunks_are_bounded_and_add_up(loaded_analysis_engine, monkeypatch):
    whole = read_frame(loaded_analysis_engine, "SELECT * FROM orders ORDER BY oid")
    for path in ("connectorx", "pandas.read_sql"):
        chunks = list(read_frame(loaded_analysis_engine, "SELECT * FROM orders ORDER BY oid",
                                 chunksize=1_200))
        assert max(len(chunk) for chunk in chunks) <= 1_200
        assert {chunk.attrs["read_path"] for chunk in chunks} == {path}
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole,
                                      check_like=False)
        monkeypatch.setattr(reading, "connectorx", None)


def test_chunks_of_an_empty_result_are_one_empty_frame_on_both_paths(
        loaded_analysis_engine, monkeypatch):
    query = "SELECT oid, price FROM orders WHERE oid < 0"
    fast = list(read_frame(loaded_analysis_engine, query, chunksize=10))
    monkeypatch.setattr(reading, "connectorx", None)
    slow = list(read_frame(loaded_analysis_engine, query, chunksize=10))
    assert [len(chunk) for chunk in fast] == [len(chunk) for chunk in slow] == [0]
    assert list(fast[0].columns) == list(slow[0].columns) == ["oid", "price"]


def test_a_chunked_query_the_server_refuses_gets_the_clear_error(loaded_analysis_engine):
    with pytest.warns(UserWarning, match="connectorx could not run"), \
            pytest.raises(CrmError, match="no_such_column"):
        list(read_frame(loaded_analysis_engine, "SELECT no_such_column FROM orders", chunksize=10))


def test_tls_urls_are_verified_by_connectorx_or_take_the_pymysql_path(loaded_analysis_engine):
    def fast_path(**options: str) -> str | None:
        tls = loaded_analysis_engine.url.update_query_dict(options)
        return reading._connectorx_url(type("EngineWithTLS", (), {"url": tls})())

    assert "ssl-mode" not in reading._connectorx_url(loaded_analysis_engine)
    assert fast_path(ssl_ca="/etc/ssl/ca.pem").endswith(
        "?ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fetc%2Fssl%2Fca.pem")
    assert fast_path(ssl_verify_cert="true").endswith("?ssl-mode=VERIFY_IDENTITY")
    # What connectorx cannot do as PyMySQL would stays on PyMySQL's path.
    assert fast_path(ssl_ca="/etc/ssl/ca.pem", ssl_verify_identity="false") is None
    assert fast_path(ssl_cert="/etc/ssl/me.pem", ssl_key="/etc/ssl/me.key") is None
    assert fast_path(ssl_capath="/etc/ssl/certs") is None


def test_a_fast_path_failure_falls_back_with_a_warning(loaded_analysis_engine, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported column type")

    monkeypatch.setattr(reading.connectorx, "read_sql", broken)
    with pytest.warns(UserWarning, match="unsupported column type"):
        frame = read_frame(loaded_analysis_engine, "SELECT COUNT(*) AS n FROM orders")
    assert frame.attrs["read_path"] == "pandas.read_sql" and frame["n"].item() == 5_000


class Shade(enum.Enum):
    dark = 1


# Values analysts have at hand, and what TiDB must give back for each on both read paths.
ANALYST_VALUES = [
    (np.int64(7), 7), (np.int32(-3), -3), (np.float64(2.5), 2.5), (np.bool_(True), 1),
    (np.uint8(200), 200), (np.str_("Ben"), "Ben"), (Decimal("12.25"), 12.25),
    (pd.Timestamp("2025-03-04 05:06:07"), pd.Timestamp("2025-03-04 05:06:07")),
    (np.datetime64("2025-03-04T05:06:07"), pd.Timestamp("2025-03-04 05:06:07")),
    (b"\x00\xff'\\", b"\x00\xff'\\"), ("50% off, it's \\ here", "50% off, it's \\ here"),
]


@pytest.mark.parametrize(("value", "expected"), ANALYST_VALUES,
                         ids=[type(value).__name__ + str(i) for i, (value, _) in
                              enumerate(ANALYST_VALUES)])
def test_analysts_values_are_bound_the_same_on_both_paths(
        loaded_analysis_engine, monkeypatch, value, expected):
    fast, slow = both_paths(loaded_analysis_engine, monkeypatch, "SELECT :v AS v",
                            params={"v": value})
    for frame in (fast, slow):
        got = frame["v"].item()
        if isinstance(expected, float):
            got = float(got)
        elif isinstance(expected, pd.Timestamp):
            got = pd.Timestamp(got)
        assert got == expected, (frame.attrs["read_path"], got)


@pytest.mark.parametrize("values", [(3, 5, 8), [3, 5, 8], np.array([3, 5, 8]),
                                    pd.Series([3, 5, 8]), {3, 5, 8}, [np.int64(3), 5, 8]])
def test_a_sequence_binds_in(loaded_analysis_engine, monkeypatch, values):
    fast, slow = both_paths(loaded_analysis_engine, monkeypatch,
                            "SELECT oid FROM orders WHERE oid IN :u "
                            "ORDER BY oid", params={"u": values})
    assert fast["oid"].tolist() == slow["oid"].tolist() == [3, 5, 8]


def test_an_empty_sequence_matches_nothing(loaded_analysis_engine, monkeypatch):
    fast, slow = both_paths(loaded_analysis_engine, monkeypatch,
                            "SELECT oid FROM orders WHERE oid IN :u",
                            params={"u": []})
    assert fast.empty and slow.empty


@pytest.mark.parametrize(("value", "wrong"), [
    (Shade.dark, "Enum member.*name"), (timedelta(hours=1), "duration.*seconds"),
    (np.timedelta64(5, "s"), "duration"), (float("nan"), "None for NULL"),
    (np.float64("inf"), "finite"), (pd.NaT, "None for NULL"),
    (pd.Timestamp("2025-01-01 00:00:00.000000001"), "nanoseconds"),
    (pd.Timestamp("2025-01-01", tz="Asia/Tokyo"), "time zone"),
    ([1, 2.5], "mixes.*float.*int"), ([[1, 2]], "list inside a list"),
    (np.zeros((2, 2)), "2-dimensional"), (1 + 2j, "complex"), ("a\ud800", "UTF-8"),
])
def test_values_that_would_change_are_refused_on_both_paths(
        loaded_analysis_engine, monkeypatch, value, wrong):
    for path in ("connectorx", None):
        if path is None:
            monkeypatch.setattr(reading, "connectorx", None)
        with pytest.raises(InvalidInput, match=f"Parameter 'v'.*{wrong}"):
            read_frame(loaded_analysis_engine, "SELECT 1 AS one WHERE 1 IN :v", params={"v": value})

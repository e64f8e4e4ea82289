"""load_frame stores exactly what the frame holds, or refuses before writing anything."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import BigInteger, Column, Float, MetaData, String, Table, Text, select
from sqlalchemy.orm import Session

from crm_helpers.analysis.encoding import csv_text
from crm_helpers.analysis.generate import generate_orders, generate_users
from crm_helpers.analysis.loader import LocalInfileDisabled, load_frame
from crm_helpers.analysis.schema import (
    analysis_engine,
    analysis_orders,
    analysis_users,
)
from crm_helpers.analysis.validation import InvalidFrame
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import InvalidInput, InvalidPrice, LoadFailed
from crm_helpers.lesson.models import Order, User
from crm_helpers.lesson.operations import add_orders, reset_crm_tables
from tests.conftest import analysis_database_with, fresh_analysis_engine, throwaway_database

texts_metadata = MetaData()
texts = Table(
    "texts", texts_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=True),
    Column("label", String(40), nullable=False),
)

# Every kind of text that CSV quoting or LOAD DATA escaping could turn into something else.
AWKWARD = [
    "C:\\new\\table", "\\N", "abc\\", "\\", "\\\\", '"', '""', "'", "a,b", "a\tb", "a\nb",
    "a\r\nb", "\r", "a\0b", "\0", "\\0", "\\t", "\\n", "NULL", "null", "", " ", "  lead",
    "trail  ", "😀", "𝄞 music", "日本語", "\x1a", "\\Z", "\"quoted\"", "x\\\"y", ",", "\\,",
    "end\\\n", "é" * 40, "\u2028", "\ufeffbom",
]


@pytest.fixture(scope="module")
def database(tidb_settings):
    with analysis_database_with(tidb_settings, "crm_pytest_integrity", texts_metadata) as name:
        yield name


@pytest.fixture
def empty_engine(tidb_settings, database):
    """An analysis engine on the module's database with every table empty."""
    with fresh_analysis_engine(tidb_settings, database, emptied=("texts",)) as engine:
        yield engine


def stored_texts(engine) -> dict[str, list]:
    """The texts table's columns as plain lists (None stays None)."""
    with engine.connect() as connection:
        rows = connection.execute(select(texts).order_by(texts.c.id)).all()
    return {name: [row[position] for row in rows]
            for position, name in enumerate(["id", "body", "label"])}


def assert_round_trip(engine, bodies: list[str | None], batch_rows: int = 1_000) -> None:
    frame = pd.DataFrame({
        "id": np.arange(1, len(bodies) + 1, dtype="int64"),
        "body": pd.Series(bodies, dtype=object),
        "label": [(body or "none")[:40] for body in bodies],
    })
    load_frame(engine, texts, frame, batch_rows=batch_rows, progress=False)
    stored = stored_texts(engine)
    assert stored["id"] == frame["id"].tolist()
    for given, back in zip(bodies, stored["body"], strict=True):
        assert back == given, f"{given!r} came back as {back!r}"
    assert stored["label"] == frame["label"].tolist()


def test_awkward_strings_round_trip_exactly(empty_engine):
    assert_round_trip(empty_engine, AWKWARD)


def test_null_and_empty_string_stay_different(empty_engine):
    assert_round_trip(empty_engine, [None, "", "\\N", "NULL", None])
    stored = stored_texts(empty_engine)
    assert [body is None for body in stored["body"]] == [True, False, False, False, True]


def test_random_strings_round_trip_exactly(empty_engine):
    # Property: any text survives, built from the characters escaping is about plus a wide
    # range of code points (4-byte UTF-8 included); several batches, several workers.
    rng = random.Random(9)
    alphabet = list("\\\"',\t\n\r\0\x1aNZ0ntb ") + [
        chr(rng.choice([rng.randrange(32, 0xD800), rng.randrange(0xE000, 0x110000)]))
        for _ in range(200)]
    bodies = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
              for _ in range(2_000)]
    bodies += [None] * 50
    rng.shuffle(bodies)
    assert_round_trip(empty_engine, bodies, batch_rows=300)


def test_csv_text_escapes_what_load_data_unescapes():
    frame = pd.DataFrame({"id": [1, 2], "body": ["C:\\new\\table", None], "label": ['"', ""]})
    assert csv_text(texts, frame) == '1,"C:\\\\new\\\\table","\\""\n2,\\N,""\n'


def test_duplicate_keys_are_refused_before_any_batch(empty_engine):
    load_frame(empty_engine, analysis_users, generate_users(50), progress=False)
    orders = generate_orders(301, 50)
    orders.loc[250, "oid"] = 3  # a duplicate that sits in the third batch of 100
    with pytest.raises(InvalidFrame, match=r"primary key.*2 rows \(rows 2, 250\).*oid \[3\]"):
        load_frame(empty_engine, analysis_orders, orders, batch_rows=100, progress=False)
    with empty_engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one() == 0


@pytest.mark.parametrize("option", [{"batch_rows": -1}, {"batch_rows": 0}, {"batch_rows": 2.5},
                                    {"batch_rows": True}, {"batch_rows": "100"},
                                    {"workers": 0}, {"workers": -3}, {"workers": None}])
def test_batch_rows_and_workers_must_be_positive_whole_numbers(empty_engine, option):
    load_frame(empty_engine, analysis_users, generate_users(50), progress=False)
    name = next(iter(option))
    with pytest.raises(InvalidInput, match=f"{name} is .*whole number above 0"):
        load_frame(empty_engine, analysis_orders, generate_orders(100, 50), progress=False,
                   **option)
    with empty_engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one() == 0


def test_timezone_aware_times_are_refused_not_shifted(empty_engine):
    load_frame(empty_engine, analysis_users, generate_users(50), progress=False)
    orders = generate_orders(100, 50)
    orders["ordered_at"] = orders["ordered_at"].dt.tz_localize("Europe/Berlin")
    with pytest.raises(InvalidFrame, match=r"time zone \(Europe/Berlin\).*tz_convert"):
        load_frame(empty_engine, analysis_orders, orders, progress=False)


def test_fractions_of_seconds_are_refused_not_cut(empty_engine):
    load_frame(empty_engine, analysis_users, generate_users(50), progress=False)
    orders = generate_orders(100, 50)
    orders["ordered_at"] = orders["ordered_at"].astype("datetime64[ms]")
    orders.loc[5, "ordered_at"] += pd.Timedelta("250ms")
    with pytest.raises(InvalidFrame, match=r"1 row \(rows 5\) have fractions of a second"):
        load_frame(empty_engine, analysis_orders, orders, progress=False)


def test_values_the_column_cannot_hold_are_refused_up_front(empty_engine):
    users = generate_users(50)
    users.loc[3, "uid"] = 2**31  # INT holds at most 2**31 - 1
    with pytest.raises(InvalidFrame, match=r"uid.*1 row \(rows 3\) are outside"):
        load_frame(empty_engine, analysis_users, users, progress=False)
    users = generate_users(50).astype({"name": object})
    users.loc[4, "name"] = "bad \ud800 surrogate"
    with pytest.raises(InvalidFrame, match=r"name.*rows 4.*UTF-8"):
        load_frame(empty_engine, analysis_users, users, progress=False)
    users = generate_users(50).astype({"name": object})
    users.loc[2, "name"] = 42
    with pytest.raises(InvalidFrame, match="must hold text; it holds int values such as 42"):
        load_frame(empty_engine, analysis_users, users, progress=False)


def test_an_engine_without_local_infile_gets_told_how_to_fix_it(tidb_settings, database):
    plain = tidb_engine(tidb_settings.url(database))
    try:
        with pytest.raises(LocalInfileDisabled, match=r"connect_args=\{'local_infile': True\}"):
            load_frame(plain, analysis_users, generate_users(10), progress=False)
    finally:
        plain.dispose()


@pytest.fixture
def crm_engine(tidb_settings):
    with throwaway_database(tidb_settings, "crm_pytest_integrity_crm") as name:
        empty_engine = tidb_engine(tidb_settings.url(name), connect_args={"local_infile": True})
        try:
            reset_crm_tables(empty_engine)
            load_frame(empty_engine, User, pd.DataFrame({"uid": [1, 2], "name": ["Alice", "Ben"],
                                                   "gender": ["Female", "Male"]}),
                       progress=False)
            yield empty_engine
        finally:
            empty_engine.dispose()


def crm_orders(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(Order.oid, Order.uid, Order.price).order_by(Order.oid))]


@pytest.mark.parametrize(("price", "message"), [
    (-5.0, "negative"),
    (123456789.99, "cannot be stored exactly"),
    (16777217.0, "cannot be stored exactly"),
    (np.inf, "not finite"),
])
def test_the_crm_orders_table_keeps_its_price_rules(crm_engine, price, message):
    orders = pd.DataFrame({"oid": [1, 2, 3], "uid": [1, 2, 1], "price": [2.5, price, 8.5]})
    with pytest.raises(InvalidFrame, match=message):
        load_frame(crm_engine, Order.__table__, orders, progress=False)
    assert crm_orders(crm_engine) == []


def test_the_crm_orders_table_takes_good_rows_and_checks_its_foreign_key(crm_engine):
    orders = pd.DataFrame({"oid": [1, 2], "uid": [1, 3], "price": [2.5, 4.5]})
    with pytest.raises(InvalidFrame, match=r"refer to no row of users \(e\.g\. uid \[3\]\)"):
        load_frame(crm_engine, Order, orders, progress=False)
    orders["uid"] = [1, 2]
    load_frame(crm_engine, Order, orders, progress=False)
    assert crm_orders(crm_engine) == [(1, 1, 2.5), (2, 2, 4.5)]


def test_float_columns_other_than_price_may_be_negative_but_must_fit(tidb_settings, database):
    metadata = MetaData()
    readings = Table("readings", metadata,
                     Column("id", BigInteger, primary_key=True, autoincrement=False),
                     Column("celsius", Float, nullable=False))
    empty_engine = analysis_engine(tidb_settings, database=database)
    metadata.create_all(empty_engine)
    try:
        load_frame(empty_engine, readings, pd.DataFrame({"id": [1, 2], "celsius": [-3.5, 21.25]}),
                   progress=False)
        with empty_engine.connect() as connection:
            assert connection.execute(select(readings.c.celsius).order_by(
                readings.c.id)).scalars().all() == [-3.5, 21.25]
        with pytest.raises(InvalidFrame, match="single-precision"):
            load_frame(empty_engine, readings, pd.DataFrame({"id": [3], "celsius": [0.1 + 0.2]}),
                       progress=False)
    finally:
        metadata.drop_all(empty_engine)
        empty_engine.dispose()


def test_decimal_prices_are_numbers_when_a_float_holds_them(crm_engine):
    orders = pd.DataFrame({"oid": [1, 2], "uid": [1, 2],
                           "price": pd.Series([Decimal("9.99"), 2], dtype=object)})
    load_frame(crm_engine, Order, orders, progress=False)
    assert crm_orders(crm_engine) == [(1, 1, 9.99), (2, 2, 2.0)]
    too_precise = orders.assign(oid=[3, 4], price=pd.Series(
        [Decimal("9.990000000000000000001"), Decimal("1")], dtype=object))
    with pytest.raises(InvalidFrame, match="cannot be stored exactly"):
        load_frame(crm_engine, Order, too_precise, progress=False)


# One rule for every kind of number: what the FLOAT column gives back must be what was given.
@pytest.mark.parametrize("price", [
    Decimal("9.999999999999999999"), Decimal("1E-400"), 123456789.99, np.float64(123456789.99),
    16777217, np.int64(16777217), Decimal("123456789.99"), Decimal("1E+40"),
])
def test_every_kind_of_number_meets_the_same_exactness_rule(crm_engine, price):
    orders = pd.DataFrame({"oid": [1, 2], "uid": [1, 2],
                           "price": pd.Series([Decimal("2.5"), price], dtype=object)})
    with pytest.raises(InvalidFrame, match=r"cannot be stored exactly|too large|range"):
        load_frame(crm_engine, Order, orders, progress=False)
    with Session(crm_engine) as session, pytest.raises(InvalidPrice,
                                                        match=r"exactly|too large"):
        add_orders(session, [(1, price)])
    assert crm_orders(crm_engine) == []


def test_complex_prices_are_refused_not_cut_to_their_real_part(crm_engine, empty_engine):
    orders = pd.DataFrame({"oid": [1, 2], "uid": [1, 2],
                           "price": np.array([2.5, 3 + 0j], dtype="complex128")})
    with pytest.raises(InvalidFrame, match="complex"):
        load_frame(crm_engine, Order, orders, progress=False)
    load_frame(empty_engine, analysis_users, generate_users(5), progress=False)
    analysis = generate_orders(3, 5)
    analysis["price"] = analysis["price"].astype("complex128")
    with pytest.raises(InvalidFrame, match="complex"):
        load_frame(empty_engine, analysis_orders, analysis, progress=False)
    assert crm_orders(crm_engine) == []


def test_python_floats_in_an_object_column_are_numbers(empty_engine):
    load_frame(empty_engine, analysis_users, generate_users(5), progress=False)
    orders = generate_orders(3, 5)
    orders["price"] = pd.Series([0.1, 9.99, 2], dtype=object)
    load_frame(empty_engine, analysis_orders, orders, progress=False)
    with empty_engine.connect() as connection:
        assert connection.exec_driver_sql(
            "SELECT price FROM orders ORDER BY oid").scalars().all() == [0.1, 9.99, 2.0]


def test_a_very_wide_frame_is_refused_in_seconds(empty_engine):
    wide = pd.DataFrame(np.zeros((2, 60_000)), columns=[f"c{i}" for i in range(60_000)])
    started = time.monotonic()
    with pytest.raises(InvalidFrame, match=r"unexpected \['c0'.*\(60000\)"):
        load_frame(empty_engine, analysis_orders, wide, progress=False)
    seconds = time.monotonic() - started
    print(f"60,000 columns refused in {seconds:.2f} s")
    assert seconds < 20


def test_integers_a_float_column_cannot_hold_exactly_are_refused(empty_engine):
    load_frame(empty_engine, analysis_users, generate_users(50), progress=False)
    orders = generate_orders(10, 50)
    orders["price"] = np.arange(10, dtype="int64") + 2**53  # 2**53 + 1 has no float64
    with pytest.raises(InvalidFrame, match=r"rows 1, 3, 5, 7, 9\) are integers too large"):
        load_frame(empty_engine, analysis_orders, orders, progress=False)


def test_a_frame_with_gaps_is_not_taken_for_loaded_by_other_rows_in_its_range(empty_engine):
    load_frame(empty_engine, analysis_users, generate_users(50), progress=False)
    load_frame(empty_engine, analysis_orders, generate_orders(100, 50), progress=False)
    # oids 99 and 100 are there; a frame with 99 and 101 is one batch over 99..101.
    gappy = generate_orders(2, 50).assign(oid=[99, 101])
    with pytest.raises(LoadFailed, match="already holds 1 of the 2 rows"):
        load_frame(empty_engine, analysis_orders, gappy, batch_rows=2, progress=False)
    with empty_engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT MAX(oid) FROM orders").scalar_one() == 100
    fresh = generate_orders(3, 50).assign(oid=[150, 170, 190])  # gaps, none of them there
    report = load_frame(empty_engine, analysis_orders, fresh, batch_rows=3, progress=False)
    assert (report.loaded, report.skipped) == (3, 0)


@pytest.mark.parametrize("name", ["we`ird", "50%off", "it's \"quoted\"", "名前 table"])
def test_tables_and_columns_with_odd_names_load_and_resume(tidb_settings, database, name):
    metadata = MetaData()
    odd = Table(name, metadata,
                Column(f"{name} id", BigInteger, primary_key=True, autoincrement=False),
                Column(f"{name}`val%", Float, nullable=False, index=True))
    empty_engine = analysis_engine(tidb_settings, database=database)
    metadata.create_all(empty_engine)
    try:
        frame = pd.DataFrame({f"{name} id": [1, 2, 3], f"{name}`val%": [0.5, 1.5, 2.5]})
        report = load_frame(empty_engine, odd, frame, batch_rows=2, progress=False)
        assert report.loaded == 3
        again = load_frame(empty_engine, odd, frame, batch_rows=2, progress=False)  # resumes: skips
        assert (again.loaded, again.skipped) == (0, 3)
        with empty_engine.connect() as connection:
            assert connection.execute(select(odd).order_by(odd.c[f"{name} id"])).all() == [
                (1, 0.5), (2, 1.5), (3, 2.5)]
    finally:
        metadata.drop_all(empty_engine)
        empty_engine.dispose()

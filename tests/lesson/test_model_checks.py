"""The models' value checks hold for plain SQLAlchemy code, before anything reaches TiDB."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from crm_helpers.analysis.frames import orders_frame, users_frame
from crm_helpers.errors import InvalidInput, InvalidPrice, UnknownGender
from crm_helpers.lesson.models import Gender, Order, User, as_gender, as_name, as_price, as_uid
from crm_helpers.lesson.operations import add_orders, add_users, reset_crm_tables


@pytest.fixture
def tables(scratch_engine):
    """The tutorial's three users and two orders, on fresh tables."""
    reset_crm_tables(scratch_engine)
    with Session(scratch_engine) as session:
        add_users(session, [("Alice", Gender.Female), ("Peter", Gender.Male), ("Ben", "male")])
        add_orders(session, [(1, 2.5), (3, 8.5)])
    return scratch_engine


def _unchanged(engine, users, orders):
    assert users_frame(engine).equals(users)
    assert orders_frame(engine).equals(orders)


@pytest.mark.parametrize("price", [-3, -0.01, float("nan"), float("inf"), 1e308, "9.99", None,
                                   True, Decimal("NaN"), Decimal("-1"), 123456789.99, 16777217])
def test_an_order_with_a_bad_price_is_refused_when_made(price):
    with pytest.raises(InvalidPrice) as refused:
        Order(uid=1, price=price)
    assert "give" in str(refused.value) or "Round" in str(refused.value) \
        or "zero or more" in str(refused.value)


def test_the_issue_examples_name_what_float_would_store():
    with pytest.raises(InvalidPrice, match=r"would store 123456790\.0"):
        as_price(123456789.99)
    with pytest.raises(InvalidPrice, match=r"would store 16777216\.0"):
        as_price(16777217)
    with pytest.raises(InvalidPrice, match="too large"):
        as_price(1e308)


@pytest.mark.parametrize(("given", "expected"), [
    (Decimal("9.99"), 9.99), (2123.87, 2123.87), (0, 0.0), (np.float64(4.5), 4.5),
    (np.float32(8.5), 8.5), (Fraction(1, 4), 0.25), (16777216, 16777216.0), (1e30, 1e30)])
def test_prices_float_holds_exactly_are_accepted_as_floats(given, expected):
    price = Order(uid=1, price=given).price
    assert price == expected and type(price) is float


@pytest.mark.parametrize("uid", [True, False, "1", 1.0, 1.5, None, 0, -1, 2**31,
                                 Decimal(1)])
def test_an_order_with_a_bad_uid_is_refused_when_made(uid):
    with pytest.raises(InvalidInput, match="uid"):
        Order(uid=uid, price=1.0)


def test_text_uid_is_refused_with_the_conversion_to_use():
    with pytest.raises(InvalidInput, match=r"int\('1'\) converts text"):
        as_uid("1")


@pytest.mark.parametrize("uid", [1, np.int64(3), 2**31 - 1])
def test_whole_number_uids_are_accepted_as_ints(uid):
    assert type(Order(uid=uid, price=1.0).uid) is int


@pytest.mark.parametrize("gender", ["robot", "", None, 1, "Femal"])
def test_a_user_with_an_unknown_gender_is_refused_when_made(gender):
    with pytest.raises(UnknownGender, match="use one of Female, Male"):
        User(name="Dana", gender=gender)


@pytest.mark.parametrize("name", ["", "   ", None, 7, "x" * 51])
def test_a_user_with_a_bad_name_is_refused_when_made(name):
    with pytest.raises(InvalidInput, match="name"):
        User(name=name, gender=Gender.Female)


def test_a_fifty_character_name_is_fine():
    assert User(name="x" * 50, gender="female").gender is Gender.Female


def test_assigning_a_bad_price_later_is_refused_too():
    order = Order(uid=1, price=2.5)
    with pytest.raises(InvalidPrice):
        order.price = -3
    assert order.price == 2.5


def test_plain_session_add_of_a_negative_price_sends_nothing(tables):
    users, orders = users_frame(tables), orders_frame(tables)
    with Session(tables) as session, pytest.raises(InvalidPrice, match="negative"):
        session.add(Order(uid=1, price=-3))
        session.commit()
    _unchanged(tables, users, orders)


@pytest.mark.parametrize("price", [-3, 123456789.99, 1e308, "cheap"])
def test_the_tutorials_bulk_update_refuses_a_bad_price(tables, price):
    users, orders = users_frame(tables), orders_frame(tables)
    with Session(tables) as session, pytest.raises(InvalidPrice):
        session.query(Order).filter(Order.oid == 1).update({"price": price})
        session.commit()
    with Session(tables) as session, pytest.raises(InvalidPrice):
        session.execute(update(Order).where(Order.oid == 1).values(price=price))
        session.commit()
    _unchanged(tables, users, orders)


def test_core_insert_refuses_a_bad_price(tables):
    users, orders = users_frame(tables), orders_frame(tables)
    with tables.begin() as connection, pytest.raises(InvalidPrice):
        connection.execute(insert(Order), [{"uid": 1, "price": 1.0}, {"uid": 2, "price": -1}])
    _unchanged(tables, users, orders)


def test_comparing_prices_with_any_number_still_works(tables):
    with Session(tables) as session:
        cheap = session.scalars(select(Order.oid).where(Order.price > -1)
                                .where(Order.price < 123456789.99).order_by(Order.oid)).all()
    assert cheap == [1, 2]


def test_decimal_price_is_stored_as_the_number(tables):
    with Session(tables) as session:
        session.add(Order(uid=2, price=Decimal("9.99")))
        session.commit()
    assert orders_frame(tables).query("uid == 2")["price"].tolist() == [9.99]


def test_float_stores_what_the_check_predicts(tables):
    """The check's model of FLOAT is TiDB's: accepted prices come back exactly; refused ones
    would not have (written here around the check, through plain SQL)."""
    with tables.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO orders (uid, price) VALUES (1, 2123.87), (1, 123456789.99), "
            "(1, 16777217), (1, 0.1)")
        stored = connection.exec_driver_sql(
            "SELECT price FROM orders WHERE oid > 2 ORDER BY oid").scalars().all()
    assert stored == [2123.87, 123456790.0, 16777216.0, 0.1]
    as_price(2123.87), as_price(0.1)
    for lost in (123456789.99, 16777217):
        with pytest.raises(InvalidPrice):
            as_price(lost)


# ------------------------------------------------ every way of writing goes through the types
# (model, column, bad value): each is refused by the model's rule for that column.
BAD_VALUES = [
    (Order, "uid", True), (Order, "uid", "1"), (Order, "uid", 1.5), (Order, "uid", 0),
    (Order, "uid", 2**31), (Order, "uid", Decimal(2)),
    (User, "name", ""), (User, "name", "   "), (User, "name", 7), (User, "name", "x" * 51),
    (User, "name", "x" * 60),
    (User, "gender", "robot"), (User, "gender", ""), (User, "gender", 1),
    (User, "gender", "Femal"),
]
RULES = {"uid": as_uid, "name": as_name, "gender": as_gender, "price": as_price}
# A good row of each table, and the row every update targets: order 2 (uid 3, so uid=True,
# which MySQL would store as 1, is a change) and user 2.
GOOD = {Order: {"uid": 2, "price": 1.0}, User: {"name": "Dana", "gender": "Female"}}
TARGET = {Order: ("oid", 2), User: ("uid", 2)}


def _orm_add(engine, model, column, value):
    with Session(engine) as session:
        session.add(model(**{**GOOD[model], column: value}))
        session.commit()


def _orm_bulk_insert(engine, model, column, value):
    with Session(engine) as session:
        session.execute(insert(model), [GOOD[model], {**GOOD[model], column: value}])
        session.commit()


def _orm_update(engine, model, column, value):
    key, target = TARGET[model]
    with Session(engine) as session:
        session.execute(update(model).where(getattr(model, key) == target)
                        .values({column: value}))
        session.commit()


def _orm_bulk_update_by_key(engine, model, column, value):
    key, target = TARGET[model]
    with Session(engine) as session:
        session.execute(update(model), [{key: target, column: value}])
        session.commit()


def _query_update(engine, model, column, value):
    key, target = TARGET[model]
    with Session(engine) as session:
        session.query(model).filter(getattr(model, key) == target).update({column: value})
        session.commit()


def _core_insert(engine, model, column, value):
    with engine.begin() as connection:
        connection.execute(insert(model.__table__).values({**GOOD[model], column: value}))


def _core_update(engine, model, column, value):
    key, target = TARGET[model]
    table = model.__table__
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c[key] == target).values({column: value}))


def _core_executemany(engine, model, column, value):
    with engine.begin() as connection:
        connection.execute(insert(model.__table__),
                           [GOOD[model], {**GOOD[model], column: value}])


WRITES = [_orm_add, _orm_bulk_insert, _orm_update, _orm_bulk_update_by_key, _query_update,
          _core_insert, _core_update, _core_executemany]


def refused_as_the_rule_refuses(tables, column: str, value: object, write) -> None:
    """`write()` raises what the column's rule raises for `value`, same type and message, and
    leaves both tables as they were."""
    with pytest.raises(InvalidInput) as expected:
        RULES[column](value)
    users, orders = users_frame(tables), orders_frame(tables)
    with pytest.raises(InvalidInput) as refused:
        write()
    assert (type(refused.value), str(refused.value)) == \
        (type(expected.value), str(expected.value))
    _unchanged(tables, users, orders)


@pytest.mark.parametrize("write", WRITES, ids=lambda write: write.__name__.lstrip("_"))
@pytest.mark.parametrize(("model", "column", "value"), [
    pytest.param(*bad, id=f"{bad[0].__name__}.{bad[1]}={bad[2]!r:.14}") for bad in BAD_VALUES])
def test_every_way_of_writing_refuses_what_the_model_refuses(tables, write, model, column,
                                                            value):
    refused_as_the_rule_refuses(tables, column, value, lambda: write(tables, model, column, value))


@pytest.mark.parametrize("write", [_orm_update, _query_update, _core_insert, _core_update,
                                   _core_executemany],
                         ids=lambda write: write.__name__.lstrip("_"))
@pytest.mark.parametrize(("model", "column"), [(Order, "uid"), (Order, "price"),
                                               (User, "name"), (User, "gender")],
                         ids=["Order.uid", "Order.price", "User.name", "User.gender"])
def test_an_explicit_none_is_refused_like_the_model_does(tables, write, model, column):
    refused_as_the_rule_refuses(tables, column, None, lambda: write(tables, model, column, None))


@pytest.mark.parametrize(("model", "column"), [(Order, "price"), (Order, "uid"),
                                               (User, "name"), (User, "gender")],
                         ids=["Order.price", "Order.uid", "User.name", "User.gender"])
def test_an_object_missing_a_value_is_refused_by_that_columns_rule(tables, model, column):
    """No @validates runs for an attribute never set; the ORM sends NULL through the type."""
    values = {name: value for name, value in GOOD[model].items() if name != column}

    def add_and_commit() -> None:
        with Session(tables) as session:
            session.add(model(**values))
            session.commit()

    refused_as_the_rule_refuses(tables, column, None, add_and_commit)


def _core_insert_without(engine, model, column, value):
    with engine.begin() as connection:
        connection.execute(insert(model.__table__).values(
            {name: given for name, given in GOOD[model].items() if name != column}))


@pytest.mark.parametrize("write", [_orm_bulk_insert, _core_insert_without],
                         ids=["orm_bulk_insert_none", "core_insert_leaving_it_out"])
@pytest.mark.parametrize(("model", "column"), [(Order, "uid"), (Order, "price"),
                                               (User, "name"), (User, "gender")],
                         ids=["Order.uid", "Order.price", "User.name", "User.gender"])
def test_an_insert_without_a_value_is_refused_like_the_model_does(tables, write, model,
                                                                  column):
    """Both leave the column out of the INSERT: TiDB would store 'Female' for a gender."""
    refused_as_the_rule_refuses(tables, column, None, lambda: write(tables, model, column, None))


@pytest.mark.parametrize("name", ["Jose\u0301", "\u00c5sa", "Zo\u00eb", "\u30d9\u30f3", "O'Brien"])
def test_names_with_accents_written_either_way_are_accepted_as_given(name):
    assert as_name(name) == name


@pytest.mark.parametrize("name,why", [("\u0301\u0301", "combining marks"), ("Ev\x00e", "U+0000"),
                                      ("Ben\n", "U+000A"), ("\tBen", "U+0009")])
def test_names_of_marks_alone_or_with_control_characters_are_refused(name, why):
    with pytest.raises(InvalidInput, match=re.escape(why)):
        as_name(name)

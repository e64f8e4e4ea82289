"""CRM operations on the real TiDB: the tutorial's story, and bad input that writes nothing."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from crm_helpers.analysis.frames import orders_frame, users_frame
from crm_helpers.errors import (
    InvalidInput,
    InvalidPrice,
    OrderNotFound,
    UnknownGender,
    UserNotFound,
)
from crm_helpers.lesson.models import Gender, Order, User
from crm_helpers.lesson.operations import (
    TUTORIAL_FIRST_ORDER,
    TUTORIAL_MORE_ORDERS,
    TUTORIAL_USERS,
    add_orders,
    add_users,
    as_gender,
    delete_order,
    order_prices_of_user,
    reset_crm_tables,
    set_order_price,
)


@pytest.fixture
def session(scratch_engine):
    reset_crm_tables(scratch_engine)
    with Session(scratch_engine) as session:
        yield session


@pytest.fixture
def tutorial(session):
    """The tables as the tutorial leaves them, step by step."""
    add_users(session, TUTORIAL_USERS)
    add_orders(session, [TUTORIAL_FIRST_ORDER])
    add_orders(session, TUTORIAL_MORE_ORDERS)
    delete_order(session, 4)
    set_order_price(session, 1, 3.5)
    return session


def test_tutorial_story_gives_the_tutorial_result(tutorial, scratch_engine):
    assert order_prices_of_user(tutorial, 3) == [("Ben", 212.5), ("Ben", 8.5)]
    orders = orders_frame(scratch_engine)
    assert orders.set_index("oid")["price"].to_dict() == {
        1: 3.5, 2: 0.5, 3: 4.5, 5: 212.5, 6: 8.5}
    users = users_frame(scratch_engine)
    assert dict(zip(users["name"], users["gender"], strict=True)) == {
        "Alice": "Female", "Peter": "Male", "Ben": "Male"}


def test_reset_restarts_ids_at_one(tutorial, scratch_engine):
    reset_crm_tables(scratch_engine)
    with Session(scratch_engine) as again:
        (alice,) = add_users(again, [("Alice", "female")])
        assert alice.uid == 1


def test_reflection_sees_the_tutorial_tables(tutorial, scratch_engine):
    inspector = inspect(scratch_engine)
    assert {"users", "orders"} <= set(inspector.get_table_names())
    columns = {c["name"]: c for c in inspector.get_columns("users")}
    assert columns["gender"]["type"].enums == ["Female", "Male"]
    (foreign_key,) = inspector.get_foreign_keys("orders")
    assert (foreign_key["referred_table"], foreign_key["referred_columns"]) == ("users", ["uid"])


@pytest.mark.parametrize("given", ["male", "FEMALE", Gender.Male])
def test_gender_accepts_members_and_names(given):
    assert isinstance(as_gender(given), Gender)


def test_unknown_gender_names_the_allowed_values_and_writes_nothing(session):
    with pytest.raises(UnknownGender, match="Female, Male"):
        add_users(session, [("Dana", "Female"), ("Eve", "robot")])
    assert session.scalars(select(User)).all() == []


@pytest.mark.parametrize("price", [-1, -0.01, math.nan, math.inf, "12", None])
def test_bad_prices_are_refused_and_nothing_is_written(tutorial, price):
    before = tutorial.scalars(select(Order.oid)).all()
    with pytest.raises(InvalidPrice):
        add_orders(tutorial, [(1, 5.0), (2, price)])
    assert tutorial.scalars(select(Order.oid)).all() == before


def test_negative_price_update_is_refused(tutorial):
    with pytest.raises(InvalidPrice, match="negative"):
        set_order_price(tutorial, 1, -3)
    assert tutorial.get(Order, 1).price == 3.5


def test_order_for_a_missing_user_is_refused_and_nothing_is_written(tutorial):
    before = tutorial.scalars(select(Order.oid)).all()
    with pytest.raises(UserNotFound, match="uid 42"):
        add_orders(tutorial, [(1, 1.0), (42, 9.99)])
    assert tutorial.scalars(select(Order.oid)).all() == before


def test_foreign_key_guards_orders_written_behind_our_back(tutorial):
    # TiDB v8.5 enforces the foreign key even when the up-front check is bypassed.
    tutorial.add(Order(uid=999, price=1.0))
    with pytest.raises(UserNotFound, match="no order was written"):
        from crm_helpers.lesson.operations import _commit
        _commit(tutorial)
    assert 999 not in tutorial.scalars(select(Order.uid)).all()


def test_missing_orders_are_reported(tutorial):
    with pytest.raises(OrderNotFound, match="oid 4"):
        delete_order(tutorial, 4)
    with pytest.raises(OrderNotFound, match="oid 77"):
        set_order_price(tutorial, 77, 1.0)


def test_blank_name_is_refused(session):
    with pytest.raises(InvalidInput, match="empty"):
        add_users(session, [("  ", Gender.Male)])

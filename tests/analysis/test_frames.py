"""Query-to-DataFrame helpers: dtypes and values."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm_helpers.analysis.frames import query_frame, records_frame, users_frame
from crm_helpers.lesson.operations import (
    TUTORIAL_MORE_ORDERS,
    TUTORIAL_USERS,
    add_orders,
    add_users,
    reset_crm_tables,
    user_orders_statement,
)


@pytest.fixture
def filled(scratch_engine):
    reset_crm_tables(scratch_engine)
    with Session(scratch_engine) as session:
        add_users(session, TUTORIAL_USERS)
        add_orders(session, TUTORIAL_MORE_ORDERS)
    return scratch_engine


def test_users_frame_has_a_gender_category(filled):
    users = users_frame(filled)
    assert list(users.columns) == ["uid", "name", "gender"]
    assert isinstance(users["gender"].dtype, pd.CategoricalDtype)
    assert list(users["gender"].cat.categories) == ["Female", "Male"]
    assert users.loc[users["name"] == "Alice", "gender"].item() == "Female"


def test_select_and_sql_text_give_the_same_frame(filled):
    from_select = query_frame(filled, user_orders_statement(3))
    from_text = query_frame(filled, "SELECT u.name, o.price FROM users u JOIN orders o "
                            "ON o.uid = u.uid WHERE u.uid = :uid ORDER BY o.oid", uid=3)
    pd.testing.assert_frame_equal(from_select, from_text)
    assert from_select["price"].dtype == "float64"
    assert list(from_select.itertuples(index=False, name=None)) == [
        ("Ben", 212.5), ("Ben", 8.5)]


def test_records_frame_from_the_tutorial_list():
    frame = records_frame([("Ben", 212.5), ("Ben", 8.5)], ["name", "price"])
    assert frame["price"].tolist() == [212.5, 8.5]


def test_frame_from_a_session(filled):
    with Session(filled) as session:
        frame = query_frame(session, user_orders_statement())
    assert frame.groupby("name")["price"].sum().round(2).to_dict() == {
        "Alice": 0.5, "Ben": 221.0, "Peter": 2128.37}

"""The exploration data generator: deterministic, plausible, skewed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_helpers.analysis.generate import default_user_count, generate_orders, generate_users


def test_same_seed_same_rows_other_seed_other_rows():
    pd.testing.assert_frame_equal(generate_orders(5_000, seed=1), generate_orders(5_000, seed=1))
    pd.testing.assert_frame_equal(generate_users(500, seed=1), generate_users(500, seed=1))
    assert not generate_orders(5_000, seed=1).equals(generate_orders(5_000, seed=2))


def test_orders_are_well_formed():
    orders = generate_orders(20_000)
    n_users = default_user_count(20_000)
    assert orders["oid"].tolist() == list(range(1, 20_001))
    assert orders["uid"].between(1, n_users).all()
    assert orders["price"].ge(0.5).all() and np.isfinite(orders["price"]).all()
    assert (orders["price"] == orders["price"].round(2)).all()
    assert orders["ordered_at"].is_monotonic_increasing
    assert orders["ordered_at"].dt.year.eq(2025).all()


def test_prices_and_activity_are_skewed():
    orders = generate_orders(50_000)
    assert orders["price"].mean() > orders["price"].median() * 1.3  # long right tail
    per_user = orders.groupby("uid").size().sort_values(ascending=False)
    top_tenth = per_user.iloc[: len(per_user) // 10].sum()
    assert top_tenth / len(orders) > 0.25  # the busiest 10% of users place over a quarter


def test_weekends_are_busier():
    orders = generate_orders(50_000)
    per_day = orders["ordered_at"].dt.day_name().value_counts()
    weekend = per_day[["Saturday", "Sunday"]]
    weekdays = per_day[["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]]
    assert weekend.min() > 1.25 * weekdays.max()


def test_users_have_both_genders_and_short_names():
    users = generate_users(1_000)
    assert users["uid"].tolist() == list(range(1, 1_001))
    assert set(users["gender"]) == {"Female", "Male"}
    assert users["name"].str.len().max() <= 50
    assert users["name"].str.fullmatch(r"[A-Z][a-z]+ [A-Z]\.").all()

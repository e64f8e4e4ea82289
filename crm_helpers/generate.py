"""Deterministic, realistic-looking CRM data for exploration: users and their orders.

The same seed and sizes always give the same rows, which is what lets an interrupted load
resume exactly and keeps the exploration notebook's outputs stable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_SEED = 2024
ORDERS_PER_USER = 10
YEAR_START = np.datetime64("2025-01-01T00:00:00", "s")

_FEMALE = ["Alice", "Amara", "Beatriz", "Chloe", "Daria", "Elena", "Fatima", "Grace", "Hana",
           "Ines", "Julia", "Keiko", "Lena", "Maya", "Nadia", "Olivia", "Priya", "Rosa",
           "Sofia", "Tara", "Uma", "Vera", "Wen", "Yara", "Zoe"]
_MALE = ["Ben", "Carlos", "Daniel", "Emeka", "Felix", "Georg", "Hiro", "Ivan", "Jonas",
         "Kofi", "Liam", "Mateo", "Noah", "Omar", "Peter", "Quentin", "Ravi", "Sami",
         "Tomas", "Umar", "Victor", "Wei", "Xavier", "Yusuf", "Zane"]
_INITIALS = list("ABCDEFGHIJKLMNOPRSTVWZ")


def default_user_count(n_orders: int) -> int:
    """How many users `generate_orders` spreads `n_orders` over by default."""
    return max(100, n_orders // ORDERS_PER_USER)


def generate_users(n_users: int, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """`n_users` users (uid 1..n): about half Female, half Male, names like 'Maya K.'."""
    rng = np.random.default_rng([seed, 1])
    is_female = rng.random(n_users) < 0.5
    first = np.where(is_female, rng.choice(_FEMALE, n_users), rng.choice(_MALE, n_users))
    initial = rng.choice(_INITIALS, n_users)
    return pd.DataFrame({
        "uid": np.arange(1, n_users + 1, dtype="int64"),
        "name": pd.Series(first, dtype="str") + " " + pd.Series(initial, dtype="str") + ".",
        "gender": pd.Categorical(np.where(is_female, "Female", "Male"),
                                 categories=["Female", "Male"]),
    })


def generate_orders(n_orders: int, n_users: int | None = None,
                    seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """`n_orders` orders over 2025, oid 1..n in time order.

    A few users order a lot and most order a little (log-normal activity), prices are
    log-normal (median about 25, a long tail of big orders), and weekends are busier.
    """
    n_users = n_users or default_user_count(n_orders)
    rng = np.random.default_rng([seed, 2])
    activity = rng.lognormal(mean=0.0, sigma=1.1, size=n_users)
    uid = rng.choice(np.arange(1, n_users + 1), size=n_orders, p=activity / activity.sum())
    price = np.round(np.maximum(rng.lognormal(mean=3.2, sigma=0.9, size=n_orders), 0.5), 2)

    # 2025-01-01 was a Wednesday, so days 3 and 4 of every week are Saturday and Sunday.
    day_weight = np.where(np.isin(np.arange(365) % 7, [3, 4]), 1.4, 1.0)
    day_weight *= np.linspace(0.85, 1.15, 365)  # a business growing over the year
    day = rng.choice(365, size=n_orders, p=day_weight / day_weight.sum())
    second = rng.integers(0, 86_400, size=n_orders)
    ordered_at = YEAR_START + (day * 86_400 + second).astype("timedelta64[s]")

    in_time_order = np.argsort(ordered_at, kind="stable")
    return pd.DataFrame({
        "oid": np.arange(1, n_orders + 1, dtype="int64"),
        "uid": uid[in_time_order].astype("int64"),
        "price": price[in_time_order],
        "ordered_at": ordered_at[in_time_order],
    })

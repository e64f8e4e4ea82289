"""Deterministic, realistic-looking CRM data for exploration: users and their orders.

The same seed and sizes always give the same rows, which is what lets an interrupted load
resume exactly and keeps the exploration notebook's outputs stable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_helpers.errors import InvalidInput

DEFAULT_SEED = 2024
#: Most rows generated at once, which bounds the memory one call takes (a few GB at most).
MAX_ROWS = 20_000_000
ORDERS_PER_USER = 10
YEAR_START = np.datetime64("2025-01-01T00:00:00", "s")

_FEMALE = ["Alice", "Amara", "Beatriz", "Chloe", "Daria", "Elena", "Fatima", "Grace", "Hana",
           "Ines", "Julia", "Keiko", "Lena", "Maya", "Nadia", "Olivia", "Priya", "Rosa",
           "Sofia", "Tara", "Uma", "Vera", "Wen", "Yara", "Zoe"]
_MALE = ["Ben", "Carlos", "Daniel", "Emeka", "Felix", "Georg", "Hiro", "Ivan", "Jonas",
         "Kofi", "Liam", "Mateo", "Noah", "Omar", "Peter", "Quentin", "Ravi", "Sami",
         "Tomas", "Umar", "Victor", "Wei", "Xavier", "Yusuf", "Zane"]
_INITIALS = list("ABCDEFGHIJKLMNOPRSTVWZ")


def _count(value: object, what: str, *, low: int = 0) -> int:
    """`value` as a whole number from `low` to MAX_ROWS; InvalidInput otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInput(f"{what} is {value!r}: give a whole number such as 1_000.")
    if not low <= value <= MAX_ROWS:
        raise InvalidInput(f"{what} is {value:,}: give a number from {low} to {MAX_ROWS:,} "
                           "(more would not fit in memory at once).")
    return int(value)


def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInput(f"seed is {seed!r}: give a whole number of 0 or more "
                           f"(default {DEFAULT_SEED}).")
    return int(seed)


def default_user_count(n_orders: int) -> int:
    """How many users `generate_orders` spreads `n_orders` over by default."""
    return max(100, _count(n_orders, "n_orders") // ORDERS_PER_USER)


def generate_users(n_users: int, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """`n_users` users (uid 1..n): about half Female, half Male, names like 'Maya K.'."""
    n_users = _count(n_users, "n_users")
    rng = np.random.default_rng([_seed(seed), 1])
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
    n_orders = _count(n_orders, "n_orders")
    n_users = default_user_count(n_orders) if n_users is None else _count(n_users, "n_users",
                                                                          low=1)
    rng = np.random.default_rng([_seed(seed), 2])
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

"""Query results as pandas DataFrames with sensible dtypes (`gender` categorical, `price` float)."""

from __future__ import annotations

import enum
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Executable, select, text
from sqlalchemy.orm import Session

from crm_helpers.models import Gender, Order, User

Runner = Engine | Connection | Session


def query_frame(runner: Runner, statement: Executable | str, **params: Any) -> pd.DataFrame:
    """Run a `select()` or SQL text and return its rows as a DataFrame, dtypes tidied."""
    if isinstance(statement, str):
        statement = text(statement)
    if isinstance(runner, Engine):
        with runner.connect() as connection:
            result = connection.execute(statement, params)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    else:
        result = runner.execute(statement, params)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return tidy_dtypes(frame)


def tidy_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Enum members become their names; `gender` a category, `price` float64."""
    for column in frame.columns:
        values = frame[column]
        # Only object columns can hold Enum members (what ORM selects of Enum columns give).
        if values.dtype == object and any(isinstance(v, enum.Enum) for v in values):
            frame[column] = values.map(lambda v: v.name if isinstance(v, enum.Enum) else v)
    if "gender" in frame.columns:
        frame["gender"] = pd.Categorical(frame["gender"],
                                         categories=[member.name for member in Gender])
    if "price" in frame.columns:
        frame["price"] = frame["price"].astype("float64")
    return frame


def users_frame(runner: Runner) -> pd.DataFrame:
    """The whole `users` table, by uid."""
    return query_frame(runner, select(User.uid, User.name, User.gender).order_by(User.uid))


def orders_frame(runner: Runner) -> pd.DataFrame:
    """The whole `orders` table, by oid."""
    return query_frame(runner, select(Order.oid, Order.uid, Order.price).order_by(Order.oid))


def records_frame(records: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Plain tuples (like the tutorial's printed result) as a DataFrame with tidy dtypes."""
    return tidy_dtypes(pd.DataFrame.from_records(records, columns=columns))


def tidb_version_frame(runner: Runner) -> pd.DataFrame:
    """`SELECT tidb_version()` as a two-column DataFrame (fact, value)."""
    raw = query_frame(runner, "SELECT tidb_version() AS v")["v"].item()
    pairs = [line.split(":", 1) for line in raw.splitlines() if ":" in line]
    return pd.DataFrame([(key.strip(), value.strip()) for key, value in pairs],
                        columns=["fact", "value"])


def variables_frame(runner: Runner, names: list[str]) -> pd.DataFrame:
    """The current values of the named system variables, in the order given."""
    frame = query_frame(runner, "SELECT variable_name AS name, variable_value AS value "
                        "FROM information_schema.session_variables "
                        "WHERE variable_name IN :names", names=tuple(names))
    order = {name: position for position, name in enumerate(names)}
    return frame.sort_values("name", key=lambda s: s.map(order)).reset_index(drop=True)


#: Marks the run-time column of `explain_analyze_frame` (see notebooks/sanitize.cfg).
RUNTIME_MARK = "⏱"


def explain_analyze_frame(runner: Runner, sql: str, **params: Any) -> pd.DataFrame:
    """EXPLAIN ANALYZE of `sql`: the plan with estimated and actual rows per operator.

    Timings, memory and disk use are joined into one last `runtime` column (they change
    from run to run; the plan and row counts do not).
    """
    plan = query_frame(runner, f"EXPLAIN ANALYZE {sql}", **params)
    runtime = (RUNTIME_MARK + " " + plan["execution info"] + "; memory " + plan["memory"]
               + "; disk " + plan["disk"])
    plan = plan.drop(columns=["execution info", "memory", "disk"])
    plan["runtime"] = runtime
    return plan

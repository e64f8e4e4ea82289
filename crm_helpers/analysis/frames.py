"""Query results as pandas DataFrames with sensible dtypes (`gender` categorical, `price` float)."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Executable, TextClause, select
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session

from crm_helpers.analysis.parameters import parameter_binds, plain_parameters
from crm_helpers.analysis.queries import checked_query, query_failed, query_statement
from crm_helpers.errors import InvalidInput
from crm_helpers.language import localized
from crm_helpers.lesson.models import Gender, Order, User

Runner = Engine | Connection | Session


def query_frame(runner: Runner, statement: Executable | str, **params: Any) -> pd.DataFrame:
    """Run a `select()` or SQL text (one query, nothing that writes) as a DataFrame."""
    if not isinstance(runner, Engine | Connection | Session):
        raise InvalidInput(f"query_frame needs an Engine, Connection or Session, not "
                           f"{type(runner).__name__}: make one with tidb_engine(url).")
    statement = bound_statement(statement, params)
    dialect = runner.get_bind().dialect if isinstance(runner, Session) else runner.dialect
    checked_query(statement, dialect)
    try:
        if isinstance(runner, Engine):
            with runner.connect() as connection:  # closed without commit: rolled back
                result = connection.execute(statement)
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        else:
            result = runner.execute(statement)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        raise query_failed(exc) from None
    return tidy_dtypes(frame)


def bound_statement(query: object, params: Mapping[str, Any] | None) -> Executable:
    """`query` as a read-only statement with `params` bound; InvalidInput if they do not fit."""
    statement = query_statement(query)
    if params is not None and not isinstance(params, Mapping):
        raise InvalidInput(f"params must be a dict of parameter names and values, not "
                           f"{type(params).__name__}.")
    if params:
        try:
            statement = (statement.bindparams(*parameter_binds(params))
                         if isinstance(statement, TextClause)
                         else statement.params(**plain_parameters(params)))
        except ArgumentError as exc:
            raise InvalidInput(f"The parameters do not fit the query ({exc}); name each "
                               "parameter of the query (:name) once in params.") from None
    unbound = sorted(name for name, bind in statement.compile().binds.items() if bind.required)
    if unbound:
        raise InvalidInput(f"The query has parameters without a value: {unbound}. Give each "
                           "a value, e.g. params={'" + unbound[0] + "': ...} (query_frame: "
                           "as keyword arguments).")
    return statement


def tidy_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Enum members become their names; `gender` a category, `price` float64."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"tidy_dtypes needs a DataFrame, not {type(frame).__name__}: "
                           "pass the frame a query gave (e.g. pd.read_sql(...)).")
    # By position: a result may repeat a column name (SELECT 1 AS a, 2 AS a).
    for position, column in enumerate(frame.columns):
        values = given = frame.iloc[:, position]
        # Only object columns can hold Enum members (what ORM selects of Enum columns give).
        if values.dtype == object and any(isinstance(v, enum.Enum) for v in values):
            values = values.map(lambda v: v.name if isinstance(v, enum.Enum) else v)
        if column == "gender":
            values = pd.Categorical(values, categories=[member.name for member in Gender])
        elif column == "price":
            values = values.astype("float64")
        if values is not given:
            frame.isetitem(position, values)
    return frame


def users_frame(runner: Runner) -> pd.DataFrame:
    """The whole `users` table, by uid."""
    return query_frame(runner, select(User.uid, User.name, User.gender).order_by(User.uid))


def orders_frame(runner: Runner) -> pd.DataFrame:
    """The whole `orders` table, by oid."""
    return query_frame(runner, select(Order.oid, Order.uid, Order.price).order_by(Order.oid))


def records_frame(records: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Plain tuples (like the tutorial's printed result) as a DataFrame with tidy dtypes."""
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput(f"columns must be a list of column names, not {columns!r}.")
    try:
        rows = [tuple(record) for record in records]
    except TypeError:
        raise InvalidInput("records must be a list of tuples, one per row, such as "
                           "[('Ben', 212.5)].") from None
    wrong = [row for row in rows if len(row) != len(columns)]
    if wrong:
        raise InvalidInput(f"{len(wrong)} record(s) do not have {len(columns)} values like the "
                           f"columns {list(columns)}, e.g. {wrong[0]!r}.")
    records = rows
    return tidy_dtypes(pd.DataFrame.from_records(records, columns=columns))


def tidb_version_frame(runner: Runner) -> pd.DataFrame:
    """`SELECT tidb_version()` as a two-column DataFrame (fact, value)."""
    raw = query_frame(runner, "SELECT tidb_version() AS v")["v"].item()
    pairs = [line.split(":", 1) for line in raw.splitlines() if ":" in line]
    return pd.DataFrame([(key.strip(), value.strip()) for key, value in pairs],
                        columns=[localized("fact", "項目"), localized("value", "値")])


def variables_frame(runner: Runner, names: list[str]) -> pd.DataFrame:
    """The current values of the named system variables, in the order given."""
    if not isinstance(names, list | tuple) or not names or not all(
            isinstance(name, str) and name for name in names):
        raise InvalidInput(f"names must be a non-empty list of variable names such as "
                           f"['tidb_txn_mode'], not {names!r}.")
    frame = query_frame(runner, "SELECT variable_name AS name, variable_value AS value "
                        "FROM information_schema.session_variables "
                        "WHERE variable_name IN :names", names=tuple(names))
    order = {name: position for position, name in enumerate(names)}
    frame = frame.sort_values("name", key=lambda s: s.map(order)).reset_index(drop=True)
    return frame.rename(columns={"name": localized("name", "変数"),
                                 "value": localized("value", "値")})


#: Starts each value of the run-time column of `explain_analyze_frame`; notebooks/sanitize.cfg
#: replaces from it to the end of the line, since timings change from run to run. Plain ASCII,
#: so that every font can draw it.
RUNTIME_MARK = "~"


def explain_analyze_frame(runner: Runner, sql: str, **params: Any) -> pd.DataFrame:
    """EXPLAIN ANALYZE of `sql`: the plan with estimated and actual rows per operator.

    Timings, memory and disk use are joined into one last `runtime` column (they change
    from run to run; the plan and row counts do not).
    """
    if not isinstance(sql, str):
        raise InvalidInput(f"explain_analyze_frame needs the query as SQL text, not "
                           f"{type(sql).__name__}: give a str such as 'SELECT * FROM orders'.")
    plan = query_frame(runner, f"EXPLAIN ANALYZE {sql}", **params)
    runtime = (RUNTIME_MARK + " " + plan["execution info"] + "; memory " + plan["memory"]
               + "; disk " + plan["disk"])
    plan = plan.drop(columns=["execution info", "memory", "disk"])
    plan["runtime"] = runtime
    return plan


class LeftAligned:
    """A DataFrame shown with left-aligned, unwrapped text (plans, SQL), index hidden."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __repr__(self) -> str:
        text = self.frame.astype(str)
        widths = {column: max([len(str(column)), *map(len, text[column])])
                  for column in text.columns}
        lines = ["  ".join(str(column).ljust(widths[column]) for column in text.columns)]
        lines += ["  ".join(value.ljust(widths[column]) for column, value in row.items())
                  for _, row in text.iterrows()]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        cells = {"text-align": "left", "white-space": "pre", "font-family": "monospace"}
        return (self.frame.style.hide(axis="index").set_properties(**cells)
                .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
                .to_html())


# A lock wait as TiDB reports it: the row's key (database, table, key value in KEY_INFO) and
# the waiting transaction, whose session's statement is in the processlist.
_LOCK_WAITS = """
    SELECT JSON_UNQUOTE(JSON_EXTRACT(w.key_info, '$.table_name')) AS `table`,
           JSON_UNQUOTE(JSON_EXTRACT(w.key_info, '$.handle_value')) AS row_key,
           p.info AS waiting_statement
    FROM information_schema.data_lock_waits w
    JOIN information_schema.tidb_trx t ON t.id = w.trx_id
    JOIN information_schema.processlist p ON p.id = t.session_id
    WHERE JSON_UNQUOTE(JSON_EXTRACT(w.key_info, '$.db_name')) = :database
    ORDER BY `table`, row_key"""


def lock_waits(runner: Runner, database: str, *, timeout: float = 20.0) -> pd.DataFrame:
    """Statements waiting for a row lock in `database`, once there is one (or after `timeout` s).

    Only `database`'s rows count, so another client's transactions elsewhere on the server
    change nothing here.
    """
    deadline = time.monotonic() + timeout
    while True:
        waits = query_frame(runner, _LOCK_WAITS, database=database)
        if not waits.empty or time.monotonic() > deadline:
            return waits
        time.sleep(0.1)

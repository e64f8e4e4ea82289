"""Query parameters as plain Python values that both read paths send the same way.

`read_frame` sends a query either through PyMySQL (values bound by the driver) or through
connectorx (values written into the SQL text by SQLAlchemy). Values are first turned into
plain Python ones as pandas.read_sql users expect (NumPy scalars via `.item()`, a
`pd.Timestamp` as a `datetime`, an array or list as the values of `IN :name`); anything
that would be sent changed or not at all (NaN, an Enum member, a timedelta, a time zone,
a list mixing types) is refused with an `InvalidInput` that names the parameter.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BindParameter, bindparam
from sqlalchemy.types import UserDefinedType

from crm_helpers.analysis.validation import is_utf8
from crm_helpers.errors import InvalidInput

# The kinds of values a parameter may carry once made plain; a list's items are of one kind.
_KINDS = (bool, int, float, Decimal, str, bytes, dt.datetime, dt.date, dt.time)
# What may stand for the values of `IN :name`.
_SEQUENCES = (list, tuple, set, frozenset, np.ndarray, pd.Series, pd.Index)


class HexBytes(UserDefinedType[bytes]):
    """Binary parameters: bound by the driver as they are, or written as X'00ff' literals."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BLOB"

    def literal_processor(self, dialect: Any) -> Any:
        return lambda value: f"X'{bytes(value).hex()}'"


def plain_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter as a plain value (a list for IN); InvalidInput naming the one that is not."""
    odd = next((name for name in params if not isinstance(name, str)), None)
    if odd is not None:
        raise InvalidInput(f"Parameter name {odd!r} is a {type(odd).__name__}: name each "
                           "parameter by the text after its colon, e.g. {'floor': 50}.")
    return {name: _plain(name, value) for name, value in params.items()}


def parameter_binds(params: Mapping[str, Any]) -> list[BindParameter]:
    """`bindparam`s for SQL text: typed from their values, expanding for lists (IN :name)."""
    binds = []
    for name, value in plain_parameters(params).items():
        if isinstance(value, list):
            sample = next((item for item in value if item is not None), None)
            binds.append(bindparam(name, value, expanding=True, type_=_type_of(sample)))
        else:
            binds.append(bindparam(name, value, type_=_type_of(value)))
    return binds


class DoubleLiteral(UserDefinedType[float]):
    """Float parameters: bound by the driver as they are, or written as DOUBLE literals.

    SQLAlchemy writes 0.1 into SQL text as `0.1`, which MySQL reads as a DECIMAL; PyMySQL
    sends it as `0.1e0`, a DOUBLE. Both read paths must send the same type.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "DOUBLE"

    def literal_processor(self, dialect: Any) -> Any:
        def literal(value: float) -> str:
            text = repr(float(value))
            return text if "e" in text else text + "e0"
        return literal


def _type_of(value: object) -> Any:
    if isinstance(value, bytes):
        return HexBytes()
    if isinstance(value, float):
        return DoubleLiteral()
    return bindparam("v", value).type


def _plain(name: str, value: object) -> Any:
    if isinstance(value, _SEQUENCES):
        if isinstance(value, np.ndarray) and value.ndim != 1:
            raise InvalidInput(f"Parameter {name!r} is a {value.ndim}-dimensional array: give a "
                               "flat list of values for IN :" + name + ".")
        items = [_scalar(name, item, inside=True) for item in
                 (value.tolist() if isinstance(value, np.ndarray | pd.Series | pd.Index)
                  else value)]
        kinds = {_kind(item) for item in items if item is not None}
        if len(kinds) > 1:
            shown = ", ".join(sorted(kind.__name__ for kind in kinds))
            raise InvalidInput(f"Parameter {name!r} mixes values of different types ({shown}), "
                               "which SQL would compare as one type: give values of one type, "
                               "e.g. all int or all float.")
        return items
    return _scalar(name, value)


def _kind(value: object) -> type:
    return next(kind for kind in _KINDS if isinstance(value, kind))


def _scalar(name: str, value: object, inside: bool = False) -> Any:
    where = f"Parameter {name!r}" + (" holds " if inside else " is ")
    if isinstance(value, enum.Enum):  # first: a str- or int-Enum is also a str or int
        raise InvalidInput(f"{where}the Enum member {value}: give its name ({value}.name, as "
                           "the models store it) or its value.")
    if value is pd.NaT or value is pd.NA or (isinstance(value, float | np.floating | Decimal)
                                             and not _finite(value)) or (
            isinstance(value, np.datetime64) and np.isnat(value)):
        raise InvalidInput(f"{where}{value!r}, which SQL cannot compare: give None for NULL "
                           "(IS NULL finds missing values), or a finite number.")
    if isinstance(value, dt.timedelta | np.timedelta64):
        raise InvalidInput(f"{where}a duration ({value!r}), which TiDB has no type for: give "
                           "it as a number of seconds (td.total_seconds()) or as TIME text "
                           "such as '01:30:00'.")
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, np.generic):
        value = value.item()  # np.int64 -> int, np.float64 -> float, np.bool_ -> bool, ...
    if isinstance(value, pd.Timestamp):
        if value.nanosecond:
            raise InvalidInput(f"{where}{value!r}, with nanoseconds, which TiDB does not keep: "
                               "round it first, e.g. ts.floor('us').")
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime | dt.time) and value.tzinfo is not None:
        raise InvalidInput(f"{where}{value!r}, with a time zone, which TiDB's DATETIME does not "
                           "keep: convert it to the zone the data is in and drop the zone, "
                           "e.g. ts.astimezone(zone).replace(tzinfo=None).")
    if value is None or isinstance(value, bool):
        return value
    for kind in _KINDS:  # subclasses (np.str_, a date subclass) as the plain type
        if isinstance(value, kind):
            value = _as_plain_kind(value, kind)
            if isinstance(value, str) and not is_utf8(value):
                raise InvalidInput(f"{where}text that UTF-8 cannot encode (a lone surrogate): "
                                   "fix the text.")
            return value
    what = ("a list inside a list" if isinstance(value, _SEQUENCES) else
            f"a {type(value).__name__}")
    raise InvalidInput(f"{where}{what}; give numbers, text, bytes, dates or times (or a flat "
                       "list or tuple of one type of them, for IN :" + name + ").")


def _as_plain_kind(value: Any, kind: type) -> Any:
    if type(value) is kind:
        return value
    if kind is dt.datetime:
        return dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                           value.second, value.microsecond)
    if kind is dt.date:
        return dt.date(value.year, value.month, value.day)
    if kind is dt.time:
        return dt.time(value.hour, value.minute, value.second, value.microsecond)
    return kind(value)


def _finite(value: float | np.floating | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


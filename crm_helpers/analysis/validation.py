"""Checks of a DataFrame against the table it is to be loaded into, before anything is written.

Columns, dtypes, values the column cannot hold (out of range, inexact in a single-precision
FLOAT, fractions of a second, time zones, text too long or not UTF-8), duplicate keys, the
table's own value rules (a TypeDecorator such as `models.Price`) and keys with no parent row:
a refusal names the offending rows, so a frame is loaded whole or not at all.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from numbers import Real

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Enum,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
    select,
)
from sqlalchemy.types import TypeDecorator

from crm_helpers.analysis.schema import analysis_orders, analysis_users
from crm_helpers.errors import CrmError, InvalidInput
from crm_helpers.numbers import (
    float_text_back,
    float_texts,
    is_exact,
    is_narrow_float,
    is_number,
)


class InvalidFrame(InvalidInput):
    """A DataFrame that cannot be loaded into its table; nothing was written."""


def validate_frame(engine: Engine, table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Check columns, dtypes, values, duplicate keys and parent keys; raise InvalidFrame."""
    expected = [column.name for column in table.columns]
    names = [str(name) for name in frame.columns]
    counts = Counter(names)  # one pass: a frame may have tens of thousands of columns
    known = set(expected)
    missing = [name for name in expected if name not in counts]
    extra = [name for name in names if name not in known]
    doubled = sorted(name for name, count in counts.items() if count > 1)
    if missing or extra or doubled:
        shown = extra[:10] + (["..."] if len(extra) > 10 else [])
        raise InvalidFrame(f"{table.name}: the frame's columns must be {expected}; "
                           f"missing {missing}, unexpected {shown} ({len(extra)}), repeated "
                           f"{doubled[:10]}. Rename or drop columns to match; nothing was "
                           "written.")
    frame = frame[expected]
    problems: list[str | None] = []
    numbers = {}
    for column in table.columns:
        kind = base_type(column.type)
        values = frame[column.name]
        converted, problem = None, None
        if isinstance(kind, Float) and (values.dtype == object or _arrow_decimal(values)):
            # Decimals and mixed numbers, one by one against the one exactness rule.
            converted, problem = _exact_floats(values, _single_precision(kind))
        elif isinstance(kind, Integer) and values.dtype == object:
            converted, problem = _object_integers(values, kind)
        problems.append(problem)
        if converted is not None:
            numbers[column.name] = converted
    frame = frame.assign(**numbers)
    if not any(problems):
        problems = [_column_problem(frame[column.name], column) for column in table.columns]
    if not any(problems):
        problems = [_key_problem(frame, table)]
    if not any(problems):
        problems = [_orphans(engine, frame, *parent) for parent in _parents(table)]
    problems = [problem for problem in problems if problem]
    if problems:
        raise InvalidFrame(f"{table.name}: refused before writing anything:\n- "
                           + "\n- ".join(problems)
                           + "\nFix these values in the frame (or drop the rows) and load again.")
    return frame


def _rows(mask: pd.Series | np.ndarray) -> str:
    positions = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(p) for p in positions[:10])
    return f"{len(positions)} row{'s' if len(positions) != 1 else ''} (rows {shown}" + (
        ", ...)" if len(positions) > 10 else ")")


def base_type(kind):
    """The SQL type a column stores, seen through a TypeDecorator (e.g. models.Price)."""
    return kind.impl_instance if isinstance(kind, TypeDecorator) else kind


# Signed ranges of MySQL's integer columns; a value outside would be clipped with a warning
# in the middle of a load, so it is refused up front.
_INTEGER_BITS = [(SmallInteger, 16), (BigInteger, 64), (Integer, 32)]
# A TEXT column holds at most this many bytes of UTF-8.
_TEXT_BYTES = 65_535
# DATETIME holds years 1000 to 9999.
_DATETIME_RANGE = (pd.Timestamp("1000-01-01"), pd.Timestamp("9999-12-31 23:59:59.999999"))


def _column_problem(values: pd.Series, column: Column) -> str | None:
    """What is wrong with one column of the frame for `column`, or None."""
    name = column.name
    kind = base_type(column.type)
    try:
        missing = values.isna().to_numpy()
    except ArithmeticError:  # e.g. Decimal('sNaN'), which cannot even be compared
        return f"column {name!r} holds values that are not numbers or text (e.g. a signaling NaN)"
    if missing.any() and not column.nullable:
        return f"column {name!r}: {_rows(missing)} have no value (the column is NOT NULL)"
    present = values[~missing]
    if isinstance(kind, Integer):
        if not pd.api.types.is_integer_dtype(values) and not (
                missing.any() and pd.api.types.is_float_dtype(values)
                and (present == present.round()).all()):
            return f"column {name!r} must hold integers, not {values.dtype}"
        low, high = _integer_range(kind)
        outside = ((values < low) | (values > high)).to_numpy() & ~missing
        if outside.any():
            return f"column {name!r}: {_rows(outside)} are outside {low}..{high}"
    elif isinstance(kind, Float):
        if pd.api.types.is_complex_dtype(values):
            return (f"column {name!r} holds complex numbers ({values.dtype}), which a "
                    "floating point column cannot keep: give real numbers (e.g. "
                    f"frame[{name!r}].to_numpy().real, if the imaginary parts are all 0)")
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            example = next((value for value in values.dropna().tolist()
                            if isinstance(value, bool) or not isinstance(value, Real | Decimal)
                            or (isinstance(value, Decimal) and not value.is_finite())), None)
            shown = f" such as {example!r}" if example is not None else ""
            return (f"column {name!r} must hold numbers (int, float, or a Decimal a float "
                    f"holds exactly), not {values.dtype} values{shown}")
        # A float32 (float16) is the decimal it prints as: what the loader sends (float_texts).
        numbers = (float_texts(values).astype("float64") if is_narrow_float(values)
                   else values.to_numpy("float64", na_value=np.nan))
        if _wider_than_double(values):
            given = values.to_numpy(np.longdouble, na_value=np.nan)
            with np.errstate(over="ignore", invalid="ignore"):
                cut = (numbers.astype(np.longdouble) != given) & ~missing & np.isfinite(given)
            if cut.any():
                first = int(np.flatnonzero(cut)[0])
                return (f"column {name!r}: {_rows(cut)} cannot be stored exactly in its "
                        f"{'single-precision FLOAT' if _single_precision(kind) else 'DOUBLE'} "
                        f"column: {values.dtype} holds more digits than a double (e.g. "
                        f"{given[first]!r} would become {float(numbers[first])!r}); convert "
                        f"the column first, e.g. frame[{name!r}].astype('float64'), if that "
                        "rounding is what you mean")
        if pd.api.types.is_integer_dtype(values):
            inexact = (numbers.astype("int64") != values.to_numpy("int64", na_value=0)) & ~missing
            if inexact.any():
                return (f"column {name!r}: {_rows(inexact)} are integers too large to be "
                        "stored exactly as floating point numbers (above 2**53)")
        bad = ~np.isfinite(numbers) & ~missing
        if name == "price":  # the CRM's rule for prices (crm_helpers.lesson.models): zero or more
            bad |= numbers < 0
        if bad.any():
            what = "negative or not finite" if name == "price" else "not finite"
            return f"column {name!r}: {_rows(bad)} are {what}"
        if _single_precision(kind):
            # FLOAT is single precision: refuse what it would not give back as it was given.
            with np.errstate(over="ignore"):
                stored = numbers.astype("float32")
            too_big = np.isinf(stored) & ~missing
            if too_big.any():
                return (f"column {name!r}: {_rows(too_big)} are too large for its "
                        "single-precision FLOAT column (at most about 3.4e38): give "
                        "realistic values or load into a Double column")
            changed = (stored.astype(str).astype("float64") != numbers) & ~missing
            if changed.any():
                first = int(np.flatnonzero(changed)[0])
                return (f"column {name!r}: {_rows(changed)} cannot be stored exactly in its "
                        f"single-precision FLOAT column (e.g. {float(numbers[first])!r} would "
                        f"become {float(str(stored[first]))!r}); round them (about 7 "
                        "significant digits) or load into a Double/Numeric column")
    elif isinstance(kind, DateTime):
        if isinstance(values.dtype, pd.ArrowDtype) and not pa.types.is_timestamp(
                values.dtype.pyarrow_dtype):
            return (f"column {name!r} must hold datetimes, not {values.dtype}: convert it "
                    f"first, e.g. frame[{name!r}] = pd.to_datetime(frame[{name!r}]) for dates "
                    "at midnight")
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return (f"column {name!r} holds times with a time zone ({values.dtype.tz}), which a "
                    "DATETIME column cannot keep: convert them to the zone you mean and drop "
                    f"it, e.g. frame[{name!r}].dt.tz_convert('UTC').dt.tz_localize(None)")
        if not pd.api.types.is_datetime64_any_dtype(values):
            return f"column {name!r} must hold datetimes, not {values.dtype}"
        outside = ((values < _DATETIME_RANGE[0]) | (values > _DATETIME_RANGE[1])).to_numpy()
        if (outside & ~missing).any():
            return (f"column {name!r}: {_rows(outside & ~missing)} are outside the years 1000 "
                    "to 9999 that DATETIME holds: fix or drop them")
        if not getattr(kind, "fsp", None) and (present != present.dt.floor("s")).any():
            fractional = (values != values.dt.floor("s")).to_numpy() & ~missing
            return (f"column {name!r}: {_rows(fractional)} have fractions of a second, which "
                    "its DATETIME column does not keep: round them first, e.g. "
                    f"frame[{name!r}].dt.floor('s')")
    elif isinstance(kind, String):  # also Enum, a String
        # Each distinct value is checked once (names and categories repeat a lot).
        distinct = pd.unique(present.to_numpy(dtype=object))
        not_text = [value for value in distinct if not isinstance(value, str)]
        if not_text:
            return (f"column {name!r} must hold text; it holds {type(not_text[0]).__name__} "
                    f"values such as {not_text[0]!r}: convert them to str first if that is "
                    "what you mean")
        if isinstance(kind, Enum) and kind.enums:
            unknown = ~values.astype(object).isin(kind.enums).to_numpy() & ~missing
            if unknown.any():
                return f"column {name!r}: {_rows(unknown)} are not one of {kind.enums}"
        unencodable = [text for text in distinct if not is_utf8(text)]
        if unencodable:
            rows = values.isin(unencodable).to_numpy() & ~missing
            return (f"column {name!r}: {_rows(rows)} hold characters UTF-8 cannot encode (lone "
                    "surrogates); fix the text")
        if kind.length is None and kind.__visit_name__.lower() == "text":
            too_big = [text for text in distinct if len(text.encode()) > _TEXT_BYTES]
            if too_big:
                rows = values.isin(too_big).to_numpy() & ~missing
                return f"column {name!r}: {_rows(rows)} are longer than TEXT's {_TEXT_BYTES} bytes"
        too_long = [text for text in distinct if kind.length and len(text) > kind.length]
        if too_long:
            rows = values.isin(too_long).to_numpy() & ~missing
            return f"column {name!r}: {_rows(rows)} are longer than {kind.length} characters"
    else:
        return (f"column {name!r} has type {column.type!r}, which load_frame does not load; "
                "use pandas.to_sql for it")
    return _rule_problem(present, column, values.index)


def _exact_floats(values: pd.Series,
                  single_precision: bool) -> tuple[pd.Series | None, str | None]:
    """An object column of numbers as float64 if the column stores each exactly (the rule of
    crm_helpers.numbers); else None, and what is wrong when they are numbers."""
    converted = []
    inexact = np.zeros(len(values), dtype=bool)
    for position, value in enumerate(values.tolist()):
        if value is None or value is pd.NA or value is pd.NaT or (
                isinstance(value, float) and np.isnan(value)):
            converted.append(np.nan)
        elif not is_number(value) or (isinstance(value, Decimal) and not value.is_finite()):
            return None, None  # not numbers: _column_problem says so
        elif isinstance(value, np.floating) and value.dtype.itemsize < 8:
            # A float32 (float16) is the decimal it prints as, as in a float32 column.
            value = float(str(value))
            inexact[position] = not is_exact(value, single_precision)
            converted.append(value)
        elif float_text_back(value, single_precision) is None:
            inexact[position] = True
            converted.append(np.nan)
        else:
            inexact[position] = not is_exact(value, single_precision)
            converted.append(float(value))
    if inexact.any():
        first = values.iloc[int(np.flatnonzero(inexact)[0])]
        back = float_text_back(first, single_precision)
        becomes = f"would become {float(back)!r}" if back is not None else "is out of its range"
        return None, (f"column {values.name!r}: {_rows(inexact)} cannot be stored exactly in "
                      f"its {'single-precision FLOAT' if single_precision else 'DOUBLE'} "
                      f"column (e.g. {first!r} {becomes}); round them, or load into a "
                      "Numeric column")
    return pd.Series(converted, index=values.index, dtype="float64"), None


def _object_integers(values: pd.Series, kind: Integer) -> tuple[pd.Series | None, str | None]:
    """An object column of Python (or NumPy) integers as Int64 if the column holds them all;
    else None, and what is wrong when they are integers out of its range."""
    present = values.dropna().tolist()
    if not all(isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
               for value in present):
        return None, None  # not integers: _column_problem says so
    low, high = _integer_range(kind)
    outside = np.array([value is not None and value is not pd.NA and value == value
                        and not low <= int(value) <= high for value in values.tolist()])
    if outside.any():
        return None, f"column {values.name!r}: {_rows(outside)} are outside {low}..{high}"
    return pd.Series(pd.array(values.tolist(), dtype="Int64"), index=values.index), None


def _integer_range(kind: Integer) -> tuple[int, int]:
    bits = next(bits for kind_class, bits in _INTEGER_BITS if isinstance(kind, kind_class))
    return -2 ** (bits - 1), 2 ** (bits - 1) - 1


def _arrow_decimal(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_decimal(
        values.dtype.pyarrow_dtype)


def _wider_than_double(values: pd.Series) -> bool:
    """True for a long double column (float128 on x86), whose digits a double cannot keep."""
    dtype = getattr(values.dtype, "numpy_dtype", values.dtype)
    return isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize > 8


def _single_precision(kind: Float) -> bool:
    return not isinstance(kind, Double) and (kind.precision or 0) <= 24


def is_utf8(text: str) -> bool:
    """False for text UTF-8 cannot encode (a lone surrogate, as decoding errors leave them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rule_problem(present: pd.Series, column: Column, index: pd.Index) -> str | None:
    """Values the table's own rules refuse: its type's bind check (e.g. models.Price)."""
    if not isinstance(column.type, TypeDecorator) or present.empty:
        return None
    refused: dict[object, str] = {}
    for value in pd.unique(present.to_numpy(dtype=object)):
        try:
            column.type.process_bind_param(
                value.item() if isinstance(value, np.generic) else value, None)
        except CrmError as exc:
            refused[value] = str(exc)
    if not refused:
        return None
    bad = index.isin(present.index[present.isin(list(refused))])
    return f"column {column.name!r}: {_rows(bad)} are refused: {next(iter(refused.values()))}"


def _key_problem(frame: pd.DataFrame, table: Table) -> str | None:
    """Duplicate keys, and 0 in an AUTO_INCREMENT key (TiDB would put a new number there)."""
    key = table.primary_key.columns.values()[0].name
    if table.autoincrement_column is not None:
        zero = (frame[key] == 0).to_numpy()
        if zero.any():
            return (f"column {key!r}: {_rows(zero)} are 0, which an AUTO_INCREMENT key "
                    "replaces by a new number; give keys from 1")
    doubled = frame[key].duplicated(keep=False).to_numpy()
    if doubled.any():
        examples = frame.loc[doubled, key].unique()[:5].tolist()
        return (f"column {key!r} is the primary key, but {_rows(doubled)} share a value "
                f"(e.g. {key} {examples}); drop the duplicates first "
                f"(frame.drop_duplicates({key!r}))")
    return None


_PARENTS = {"orders": ("uid", analysis_users, "uid")}


def _parents(table: Table) -> list[tuple[str, Table, str]]:
    """(column, parent table, parent column) that the frame's keys must refer to."""
    parents = [(fk.parent.name, fk.column.table, fk.column.name) for fk in table.foreign_keys]
    if not parents and table is analysis_orders:
        parents = [_PARENTS["orders"]]
    return parents


def _orphans(engine: Engine, frame: pd.DataFrame, column: str, parent: Table,
             parent_key: str) -> str | None:
    with engine.connect() as connection:
        known = np.fromiter(connection.execute(select(parent.c[parent_key])).scalars(),
                            dtype="int64")
    values = frame[column]
    orphan = (~values.isin(known) & values.notna()).to_numpy()
    if orphan.any():
        examples = frame.loc[orphan, column].unique()[:5].tolist()
        return (f"column {column!r}: {_rows(orphan)} refer to no row of {parent.name} "
                f"(e.g. {column} {examples}); load the {parent.name} first")
    return None

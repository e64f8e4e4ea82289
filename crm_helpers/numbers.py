"""The one rule for numbers going into FLOAT and DOUBLE columns: stored exactly, or refused.

A number is exact in a column when the text TiDB gives back for the stored value names the
same number as the value given: for a float the shortest text that names it (`repr`, what
Python prints), for an int or a Decimal the number itself. So `9.99` fits a FLOAT (it comes
back as 9.99), while `123456789.99`, `Decimal('9.999999999999999999')` (would be 10),
`Decimal('1E-400')` (would be 0) and `2**53 + 1` (in a DOUBLE) do not. The lesson's models
(`as_price`) and the loader's checks (`analysis.validation`) both use `float_text_back`.

A float32 (NumPy's, or a pandas `Float32` column; float16 likewise) names the shortest
decimal that gives the same float32 back, `str(np.float32(x))`: 0.1f is 0.1, not its binary
value 0.10000000149011612. The loader sends that decimal (`float_texts`), so a DOUBLE column
gets 0.1 and a FLOAT column the very same float32.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from numbers import Integral, Real

import numpy as np
import pandas as pd


def is_number(value: object) -> bool:
    """True for a real number (int, float, Decimal, NumPy's); False for bool, complex, text."""
    return not isinstance(value, bool | np.bool_) and isinstance(value, Real | Decimal)


def given_decimal(value: Real | Decimal) -> Decimal:
    """The number `value` names, exactly: a float by its shortest text (what Python prints)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, Integral):
        return Decimal(int(value))
    return Decimal(str(value) if isinstance(value, np.floating) else repr(float(value)))


def float_text_back(value: Real | Decimal, single_precision: bool) -> str | None:
    """What a FLOAT (single) or DOUBLE column gives back for `value`, or None if it cannot
    hold it at all (not finite, or beyond the column's range)."""
    try:
        number = float(value)
    except (OverflowError, InvalidOperation, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if not single_precision:
        return repr(number)
    with np.errstate(over="ignore"):
        stored = np.float32(number)
    return str(stored) if np.isfinite(stored) else None


def is_exact(value: Real | Decimal, single_precision: bool) -> bool:
    """True if the column gives `value` back as the same number (see the module's rule)."""
    back = float_text_back(value, single_precision)
    return back is not None and Decimal(back) == given_decimal(value)


def is_narrow_float(values: pd.Series) -> bool:
    """True for a column of float16 or float32 numbers (NumPy's, pandas' Float32, Arrow's)."""
    return getattr(values.dtype, "numpy_dtype", values.dtype) in (np.float16, np.float32)


def float_texts(values: pd.Series) -> np.ndarray:
    """A float column's numbers as text; float16s and float32s as the decimals they print as."""
    width = getattr(values.dtype, "numpy_dtype", values.dtype) if is_narrow_float(values) \
        else np.dtype("float64")
    # NumPy's str() of a float is the shortest text that reads back as the same value.
    return values.to_numpy(width, na_value=np.nan).astype(str)

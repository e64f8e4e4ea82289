"""The one rule for numbers going into FLOAT and DOUBLE columns: stored exactly, or refused.

A number is exact in a column when the text TiDB gives back for the stored value names the
same number as the value given: for a float the shortest text that names it (`repr`, what
Python prints), for an int or a Decimal the number itself. So `9.99` fits a FLOAT (it comes
back as 9.99), while `123456789.99`, `Decimal('9.999999999999999999')` (would be 10),
`Decimal('1E-400')` (would be 0) and `2**53 + 1` (in a DOUBLE) do not. The lesson's models
(`as_price`) and the loader's checks (`analysis.validation`) both use `float_text_back`.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from numbers import Integral, Real

import numpy as np


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

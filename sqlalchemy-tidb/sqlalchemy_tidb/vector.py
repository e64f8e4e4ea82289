"""TiDB's VECTOR(dim) column type and its distance functions, typed as floats.

Values go in as lists, tuples or NumPy arrays of finite numbers and come back as NumPy
`float32` arrays (TiDB stores 32-bit floats) when NumPy is installed (the `numpy` extra),
else as lists of floats. Distances are methods of a VECTOR column:
`Document.embedding.cosine_distance([1, 0, 0])` is `VEC_COSINE_DISTANCE(embedding, '[1,0,0]')`
and has SQLAlchemy type Float, so results are Python floats and can be ordered by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

try:  # NumPy is an extra: without it vectors come back as lists of floats
    import numpy as np
except ImportError:  # pragma: no cover - the test extra installs NumPy
    np = None

from sqlalchemy import Float, func, literal
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType

from sqlalchemy_tidb.exc import InvalidVector

#: TiDB's limit on a vector's dimension.
MAX_DIMENSION = 16383

#: Distance name (as used by `Index(..., tidb_vector_distance=...)`) -> TiDB SQL function.
DISTANCE_FUNCTIONS = {
    "cosine": "VEC_COSINE_DISTANCE",
    "l2": "VEC_L2_DISTANCE",
    "negative_inner_product": "VEC_NEGATIVE_INNER_PRODUCT",
    "l1": "VEC_L1_DISTANCE",
}


def vector_literal(value: Any, dim: int | None = None) -> str:
    """`value` (list, tuple or 1-D array of finite numbers) as TiDB's text form '[1,2,3]'."""
    if np is not None and isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise InvalidVector(f"A vector must be one-dimensional; got an array of shape "
                                f"{value.shape}. Pass one row, e.g. array[0].")
        items: Sequence[Any] = value.tolist()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise InvalidVector(f"A vector must be a list, tuple or NumPy array of numbers; got "
                            f"{type(value).__name__} {value!r:.60}.")
    numbers = []
    for position, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, Real):
            raise InvalidVector(f"Vector element {position} is {item!r}, not a number: every "
                                "element must be an int or float.")
        number = float(item)
        if not math.isfinite(number):
            raise InvalidVector(f"Vector element {position} is {item!r}: TiDB stores only "
                                "finite numbers (no NaN or infinity).")
        numbers.append(number)
    if dim is not None and len(numbers) != dim:
        raise InvalidVector(f"This column holds vectors of dimension {dim}; got {len(numbers)} "
                            "numbers. Give exactly that many.")
    if not numbers:
        raise InvalidVector("A vector needs at least one number; got an empty one.")
    return "[" + ",".join(repr(number) for number in numbers) + "]"


def parse_vector(value: str | bytes | None) -> Any:
    """TiDB's text form '[1,2,3]' as a NumPy float32 array, or a list without NumPy."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    inner = value.strip()[1:-1].strip()
    numbers = [float(part) for part in inner.split(",")] if inner else []
    return numbers if np is None else np.array(numbers, dtype=np.float32)


class VECTOR(UserDefinedType):
    """TiDB's `VECTOR(dim)` (or `VECTOR` of any dimension): binds sequences, returns arrays."""

    cache_ok = True

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)
                                or not 1 <= dim <= MAX_DIMENSION):
            raise InvalidVector(f"VECTOR dimension {dim!r} is not valid: give a whole number "
                                f"from 1 to {MAX_DIMENSION}, or none for any dimension.")
        self.dim = dim

    def get_col_spec(self, **kw: Any) -> str:
        return "VECTOR" if self.dim is None else f"VECTOR({self.dim})"

    @property
    def python_type(self) -> type:
        return list if np is None else np.ndarray

    def bind_processor(self, dialect: Any) -> Callable[[Any], str | None]:
        dim = self.dim

        def process(value: Any) -> str | None:
            return None if value is None else vector_literal(value, dim)

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any]:
        return parse_vector

    class comparator_factory(UserDefinedType.Comparator):
        """Distance methods on a VECTOR column; each result is a Float expression."""

        def _distance(self, function: str, other: Any) -> ColumnElement[float]:
            if not isinstance(other, ColumnElement):
                other = _bound_vector(other, self.type)
            return getattr(func, function)(self.expr, other, type_=Float)

        def cosine_distance(self, other: Any) -> ColumnElement[float]:
            """VEC_COSINE_DISTANCE(self, other): 0 for the same direction, up to 2."""
            return self._distance("VEC_COSINE_DISTANCE", other)

        def l2_distance(self, other: Any) -> ColumnElement[float]:
            """VEC_L2_DISTANCE(self, other): the Euclidean distance."""
            return self._distance("VEC_L2_DISTANCE", other)

        def negative_inner_product(self, other: Any) -> ColumnElement[float]:
            """VEC_NEGATIVE_INNER_PRODUCT(self, other): minus the dot product."""
            return self._distance("VEC_NEGATIVE_INNER_PRODUCT", other)

        def l1_distance(self, other: Any) -> ColumnElement[float]:
            """VEC_L1_DISTANCE(self, other): the Manhattan distance."""
            return self._distance("VEC_L1_DISTANCE", other)


def _bound_vector(value: Any, type_: VECTOR) -> ColumnElement[Any]:
    vector_literal(value, type_.dim)  # refuse bad input now, at statement-building time
    return literal(value, type_)

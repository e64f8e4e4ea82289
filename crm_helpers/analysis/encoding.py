"""A DataFrame as CSV text that `LOAD DATA LOCAL INFILE` reads back exactly.

Strings travel enclosed in quotes with backslash escapes that `LOAD DATA` undoes exactly,
so any text a DataFrame holds is stored as it is (backslashes, quotes, NUL, `\\N`, emoji);
NULL travels as an unquoted `\\N`.

Numbers of a float32 column (NumPy's or pandas' `Float32`; float16 too) travel as the
shortest decimal that gives the same float32 back (`str(np.float32(x))`): 0.1f arrives as 0.1
in a DOUBLE column too, not as the float32's binary value 0.10000000149011612, which no
analyst typed. A FLOAT column stores the very same float32 either way. Other numbers and
times are turned into text column by column in Arrow's C++ kernels: integers in decimal,
floats in their shortest form that reads back as the same double, times as
`YYYY-MM-DD HH:MM:SS[.ffffff]`. None of these can hold a character the CSV dialect treats
specially, so they need no escaping.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import DateTime, Enum, Float, String, Table

from crm_helpers.analysis.validation import base_type
from crm_helpers.config import sql_identifier
from crm_helpers.numbers import float_texts, is_narrow_float

# The CSV dialect `_load_csv` declares to LOAD DATA and `csv_text` writes: fields separated
# by commas, text enclosed in double quotes with backslash escapes (for backslash, quote,
# newline, carriage return, NUL), NULL as an unquoted backslash-N. LOAD DATA undoes exactly
# these escapes, so the text arrives as the frame held it.
CSV_DIALECT = ("FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '\\\\' "
               "LINES TERMINATED BY '\\n'")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_NULL = "\\N"


def load_data_statement(table: Table, columns: Sequence[str] | None = None) -> str:
    """The LOAD DATA LOCAL INFILE statement a batch of `table` is sent with (%s: its CSV file)."""
    names = [column.name for column in table.columns] if columns is None else list(columns)
    # Sent with the file name as the driver's argument: '%' in a name is doubled.
    quoted = [sql_identifier(name, formatted=True) for name in names]
    return (f"LOAD DATA LOCAL INFILE %s INTO TABLE {sql_identifier(table.name, formatted=True)} "
            f"CHARACTER SET utf8mb4 {CSV_DIALECT} ({', '.join(quoted)})")


def csv_text(table: Table, batch: pd.DataFrame) -> str:
    """`batch` as the CSV text `_load_csv` loads back exactly (one line per row)."""
    return bytes(csv_bytes(table, batch)).decode("utf-8")


def csv_bytes(table: Table, batch: pd.DataFrame) -> memoryview:
    """`batch` as the UTF-8 CSV `_load_csv` loads back exactly (one line per row)."""
    if not len(batch.columns) or not len(batch):
        return memoryview(b"")
    fields = [_field_texts(base_type(table.c[column].type), batch[column])
              for column in batch.columns]
    # Each line is its fields joined by commas, with its newline added to the last field:
    # then the joined array's data buffer is the whole file, with nothing copied in Python.
    newline, comma, nothing = (pa.scalar(text, pa.large_string()) for text in ("\n", ",", ""))
    fields[-1] = pc.binary_join_element_wise(fields[-1], newline, nothing)
    lines = pc.binary_join_element_wise(*fields, comma)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64,
                            count=len(lines) + 1, offset=lines.offset * 8)
    return memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def _field_texts(kind: object, values: pd.Series) -> pa.Array:
    """One column's fields as CSV text, NULL as `\\N`."""
    if isinstance(kind, (String, Enum)):
        missing = values.isna().to_numpy()
        # Python's str.translate is exact for every character; Arrow has no such kernel.
        texts = pa.array([None if gone else '"' + str(value).translate(_ESCAPES) + '"'
                          for value, gone in zip(values.tolist(), missing, strict=True)],
                         type=pa.string())
    elif isinstance(kind, DateTime):
        unit = "us" if getattr(kind, "fsp", None) else "s"
        texts = pc.cast(pa.array(values.to_numpy(f"datetime64[{unit}]")), pa.string())
    elif isinstance(kind, Float) and is_narrow_float(values):
        missing = values.isna().to_numpy()
        texts = pa.array(np.where(missing, None, float_texts(values)), type=pa.string())
    elif isinstance(kind, Float):
        # NaN is missing (validation refused infinities); from_pandas makes it a null.
        texts = pc.cast(pa.array(values.to_numpy("float64", na_value=np.nan), from_pandas=True),
                        pa.string())
    else:  # integers; a column with NULLs may arrive as float64 holding whole numbers
        texts = pc.cast(pa.array(values.astype("Int64"), type=pa.int64(), from_pandas=True),
                        pa.string())
    # 64-bit offsets: a batch's text may exceed the 2 GB that 32-bit offsets address.
    return pc.fill_null(texts, _NULL).cast(pa.large_string())

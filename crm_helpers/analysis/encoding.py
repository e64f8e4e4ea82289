"""A DataFrame as CSV text that `LOAD DATA LOCAL INFILE` reads back exactly.

Strings travel enclosed in quotes with backslash escapes that `LOAD DATA` undoes exactly,
so any text a DataFrame holds is stored as it is (backslashes, quotes, NUL, `\\N`, emoji);
NULL travels as an unquoted `\\N`.

Numbers of a float32 column (NumPy's or pandas' `Float32`; float16 too) travel as the
shortest decimal that gives the same float32 back (`str(np.float32(x))`): 0.1f arrives as 0.1
in a DOUBLE column too, not as the float32's binary value 0.10000000149011612, which no
analyst typed. A FLOAT column stores the very same float32 either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, Enum, Float, String, Table

from crm_helpers.analysis.validation import base_type
from crm_helpers.config import sql_identifier
from crm_helpers.numbers import float_texts

# The CSV dialect `_load_csv` declares to LOAD DATA and `csv_text` writes: fields separated
# by commas, text enclosed in double quotes with backslash escapes (for backslash, quote,
# newline, carriage return, NUL), NULL as an unquoted backslash-N. LOAD DATA undoes exactly
# these escapes, so the text arrives as the frame held it.
CSV_DIALECT = ("FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '\\\\' "
               "LINES TERMINATED BY '\\n'")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def load_data_statement(table: Table, columns: Sequence[str] | None = None) -> str:
    """The LOAD DATA LOCAL INFILE statement a batch of `table` is sent with (%s: its CSV file)."""
    names = [column.name for column in table.columns] if columns is None else list(columns)
    # Sent with the file name as the driver's argument: '%' in a name is doubled.
    quoted = [sql_identifier(name, formatted=True) for name in names]
    return (f"LOAD DATA LOCAL INFILE %s INTO TABLE {sql_identifier(table.name, formatted=True)} "
            f"CHARACTER SET utf8mb4 {CSV_DIALECT} ({', '.join(quoted)})")


def csv_text(table: Table, batch: pd.DataFrame) -> str:
    """`batch` as the CSV text `_load_csv` loads back exactly (one line per row)."""
    fields = []
    for column in batch.columns:
        values = batch[column]
        missing = values.isna().to_numpy()
        kind = base_type(table.c[column].type)
        if isinstance(kind, (String, Enum)):
            text = np.array(['"' + str(value).translate(_ESCAPES) + '"' if not gone else ""
                             for value, gone in zip(values.tolist(), missing, strict=True)],
                            dtype=object)
        elif isinstance(kind, DateTime):
            unit = "us" if getattr(kind, "fsp", None) else "s"
            text = np.datetime_as_string(values.to_numpy(f"datetime64[{unit}]"), unit=unit)
        elif isinstance(kind, Float):
            text = float_texts(values)
        else:
            text = np.array([str(int(value)) if not gone else "" for value, gone
                             in zip(values.tolist(), missing, strict=True)], dtype=object)
        text = text.astype(object)
        text[missing] = "\\N"
        fields.append(text)
    if not fields or not len(batch):
        return ""
    return "\n".join(",".join(row) for row in zip(*fields, strict=True)) + "\n"


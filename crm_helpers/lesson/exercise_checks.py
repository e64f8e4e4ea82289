"""What differs between a learner's answer and the reference answer, said in words.

Rows are compared as multisets (order-insensitive) unless the order is the point; floats are
compared to 10 significant digits, so a sum added up in another order still matches.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from crm_helpers.language import Text

SHOWN_ROWS = 3

NOT_A_FRAME = Text(
    en="you returned {kind}, not a DataFrame: return the rows as a DataFrame "
       "(query_frame(...), read_frame(...) or pd.DataFrame(rows, columns=[...])).",
    ja="返り値が DataFrame ではなく {kind} です: 行を DataFrame で返してください "
       "(query_frame(...)、read_frame(...) または pd.DataFrame(rows, columns=[...]))。")
COLUMNS = Text(en="the columns are {got}, the task asks for {expected}.",
               ja="列が {got} ですが、課題が求める列は {expected} です。")
MISSING = Text(en="{n} row(s) missing: {rows}.", ja="{n} 行が足りません: {rows}。")
EXTRA = Text(en="{n} row(s) that should not be there: {rows}.",
             ja="あるべきでない行が {n} 行あります: {rows}。")
ORDER = Text(en="the right rows, in the wrong order: {got} instead of {expected}.",
             ja="行は正しいですが順序が違います: {expected} の順であるべきところが {got} です。")
TABLE_CHANGED = Text(en="{table} changed, but this task should not change them: {details}",
                     ja="この課題では {table} を変更しないはずですが、変更されています: {details}")
TABLE_DIFFERS = Text(en="{table} after your code: {details}",
                     ja="あなたのコードの実行後の {table}: {details}")
GONE = Text(en="{n} row(s) gone that should still be there: {rows}.",
            ja="残っているべき行が {n} 行消えています: {rows}。")
NOT_WRITTEN = Text(en="{n} row(s) missing: {rows}.", ja="{n} 行が書き込まれていません: {rows}。")
UNEXPECTED = Text(en="{n} row(s) that should not be there: {rows}.",
                  ja="あるべきでない行が {n} 行あります: {rows}。")


def plain(value: Any) -> Any:
    """`value` as a comparable, printable Python value (floats to 10 significant digits)."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Decimal):  # SUM of integers comes back as DECIMAL
        value = float(value)
    if isinstance(value, float):
        return float(f"{value:.10g}")
    return value


def row_text(row: Sequence[Any]) -> str:
    """A row as the learner reads it: (3, 'Peter', 4.5)."""
    return "(" + ", ".join("new" if value is None else repr(value) for value in row) + ")"


def rows_text(rows: Iterable[Sequence[Any]]) -> str:
    """Up to SHOWN_ROWS rows, then how many more."""
    rows = list(rows)
    shown = ", ".join(row_text(row) for row in rows[:SHOWN_ROWS])
    return shown + (f", ... (+{len(rows) - SHOWN_ROWS})" if len(rows) > SHOWN_ROWS else "")


def frame_rows(frame: pd.DataFrame) -> list[tuple]:
    """The rows of `frame` as tuples of plain values."""
    return [tuple(plain(value) for value in row) for row in frame.itertuples(index=False)]


def surplus(rows: list[tuple], other: list[tuple]) -> list[tuple]:
    """The rows of `rows` that `other` lacks (counting repeats), in a stable order to show."""
    return sorted((Counter(rows) - Counter(other)).elements(), key=repr)


def rows_difference(got: list[tuple], expected: list[tuple]) -> str | None:
    """Rows missing and rows too many, order-insensitive, or None when they are the same."""
    missing, extra = surplus(expected, got), surplus(got, expected)
    parts = []
    if missing:
        parts.append(MISSING.format(n=len(missing), rows=rows_text(missing)))
    if extra:
        parts.append(EXTRA.format(n=len(extra), rows=rows_text(extra)))
    return " ".join(parts) or None


def frame_difference(got: object, expected: pd.DataFrame, *, ordered: bool = False) -> str | None:
    """What differs between the learner's DataFrame and the reference's, or None."""
    if not isinstance(got, pd.DataFrame):
        return NOT_A_FRAME.format(kind=type(got).__name__)
    if list(got.columns) != list(expected.columns):
        return COLUMNS.format(got=list(map(str, got.columns)), expected=list(expected.columns))
    got_rows, expected_rows = frame_rows(got), frame_rows(expected)
    different = rows_difference(got_rows, expected_rows)
    if different or not ordered or got_rows == expected_rows:
        return different
    return ORDER.format(got=rows_text(got_rows), expected=rows_text(expected_rows))


TableState = Mapping[str, list[tuple]]


def state_difference(start: TableState, got: TableState, expected: TableState) -> str | None:
    """How the tables the learner left differ from the reference's, table by table."""
    for table, expected_rows in expected.items():
        got_rows, start_rows = got[table], start[table]
        if Counter(got_rows) == Counter(expected_rows):
            continue
        gone, extra = surplus(expected_rows, got_rows), surplus(got_rows, expected_rows)
        parts = []
        if gone:
            kept = [row for row in gone if row in start_rows]
            new = [row for row in gone if row not in start_rows]
            if kept:
                parts.append(GONE.format(n=len(kept), rows=rows_text(kept)))
            if new:
                parts.append(NOT_WRITTEN.format(n=len(new), rows=rows_text(new)))
        if extra:
            parts.append(UNEXPECTED.format(n=len(extra), rows=rows_text(extra)))
        template = (TABLE_CHANGED if Counter(expected_rows) == Counter(start_rows)
                    else TABLE_DIFFERS)
        return template.format(table=table, details=" ".join(parts))
    return None

"""DDL for TiDB: AUTO_RANDOM keys, clustered primary keys, TiDB table options, vector indexes.

What a model can declare, all as `tidb_*` keyword arguments:

- column: `Column(BigInteger, primary_key=True, tidb_auto_random=5)` (shard bits), or
  `tidb_auto_random=(5, 54)` (shard bits, range bits), or `True` for TiDB's default (5);
- table: `tidb_clustered=True/False` (PRIMARY KEY ... CLUSTERED / NONCLUSTERED),
  `tidb_auto_id_cache`, `tidb_shard_row_id_bits`, `tidb_pre_split_regions` (whole numbers),
  `tidb_ttl="created_at + INTERVAL 3 MONTH"`, `tidb_ttl_enable=True/False`,
  `tidb_ttl_job_interval="1h"`;
- index: `Index("ix", Document.embedding, tidb_vector_distance="cosine")` for a vector index
  (needs TiFlash).
Everything else is MySQL's DDL, inherited.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.dialects.mysql.base import MySQLDDLCompiler

from sqlalchemy_tidb.exc import InvalidDialectOption
from sqlalchemy_tidb.vector import DISTANCE_FUNCTIONS, VECTOR

#: TiDB's default number of shard bits for a bare AUTO_RANDOM, and its limits.
DEFAULT_SHARD_BITS = 5
MAX_SHARD_BITS = 15
MIN_RANGE_BITS = 32

# tidb_* table option -> how it is written: a whole number, a quoted string, ON/OFF, or SQL.
_WHOLE_NUMBER_OPTIONS = {"auto_id_cache": "AUTO_ID_CACHE", "shard_row_id_bits": "SHARD_ROW_ID_BITS",
                         "pre_split_regions": "PRE_SPLIT_REGIONS"}
_TTL_OPTIONS = ("ttl", "ttl_enable", "ttl_job_interval")
#: Table keyword arguments this compiler writes itself (all others go to MySQL's compiler).
TIDB_TABLE_OPTIONS = frozenset({"clustered", *_WHOLE_NUMBER_OPTIONS, *_TTL_OPTIONS})

_INTERVAL = re.compile(r"^\d+(?:\.\d+)?(?:h|m|s|ms|us|ns|d)$")


def auto_random_spec(value: Any, column_name: str) -> str:
    """`AUTO_RANDOM(...)` for a `tidb_auto_random` value: True, shard bits, or (bits, range)."""
    if value is True:
        return f"AUTO_RANDOM({DEFAULT_SHARD_BITS})"
    parts = value if isinstance(value, (tuple, list)) else (value,)
    numbers = [_whole_number(part, f"tidb_auto_random of column {column_name!r}")
               for part in parts]
    if (not 1 <= len(numbers) <= 2 or not 1 <= numbers[0] <= MAX_SHARD_BITS
            or (len(numbers) == 2 and not MIN_RANGE_BITS <= numbers[1] <= 64)):
        raise InvalidDialectOption(
            f"tidb_auto_random of column {column_name!r} is {value!r}: give the shard bits "
            f"(1 to {MAX_SHARD_BITS}, e.g. 5), or (shard bits, range bits) with range bits "
            f"from {MIN_RANGE_BITS} to 64, such as (5, 54), or True.")
    return f"AUTO_RANDOM({', '.join(map(str, numbers))})"


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidDialectOption(f"{what} is {value!r}: give a whole number.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InvalidDialectOption(f"{what} is {value!r}: give a whole number.")


def _on_off(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, str) and value.strip().upper() in ("ON", "OFF"):
        return value.strip().upper()
    raise InvalidDialectOption(f"{what} is {value!r}: give True or False ('ON' or 'OFF').")


def tidb_table_options(options: dict[str, Any], table_name: str) -> list[str]:
    """The TiDB-only table options of `options` (tidb_* names without the prefix) as DDL."""
    rendered = []
    for option, keyword in _WHOLE_NUMBER_OPTIONS.items():
        if options.get(option) is not None:
            number = _whole_number(options[option], f"tidb_{option} of table {table_name!r}")
            rendered.append(f"{keyword}={number}")
    ttl = options.get("ttl")
    if ttl is not None:
        if not isinstance(ttl, str) or not ttl.strip():
            raise InvalidDialectOption(
                f"tidb_ttl of table {table_name!r} is {ttl!r}: give the expiry as SQL, such "
                "as \"created_at + INTERVAL 3 MONTH\" (a DATE/DATETIME/TIMESTAMP column).")
        rendered.append(f"TTL={ttl.strip()}")
    for option, keyword in (("ttl_enable", "TTL_ENABLE"),
                            ("ttl_job_interval", "TTL_JOB_INTERVAL")):
        value = options.get(option)
        if value is None:
            continue
        if ttl is None:
            raise InvalidDialectOption(f"tidb_{option} of table {table_name!r} needs tidb_ttl "
                                       "too: it only applies to a table with a TTL.")
        if option == "ttl_enable":
            value = _on_off(value, f"tidb_ttl_enable of table {table_name!r}")
        elif not isinstance(value, str) or not _INTERVAL.match(value.strip()):
            raise InvalidDialectOption(
                f"tidb_ttl_job_interval of table {table_name!r} is {value!r}: give a duration "
                "such as '1h', '30m' or '24h'.")
        rendered.append(f"{keyword}='{value.strip()}'")
    return rendered


class TiDBDDLCompiler(MySQLDDLCompiler):
    """MySQL's DDL compiler plus AUTO_RANDOM, CLUSTERED, TiDB table options, vector indexes."""

    def get_column_specification(self, column: Any, **kw: Any) -> str:
        spec = super().get_column_specification(column, **kw)
        auto_random = column.dialect_options["tidb"].get("auto_random")
        if auto_random is None or auto_random is False:
            return spec
        table_name = column.table.name if column.table is not None else "?"
        where = f"column {table_name}.{column.name}"
        if not isinstance(column.type, BigInteger) or not column.primary_key:
            raise InvalidDialectOption(
                f"tidb_auto_random on {where}: AUTO_RANDOM needs a BIGINT primary key "
                f"column; this one is {column.type!r}"
                f"{'' if column.primary_key else ' and not part of the primary key'}. Use "
                "Column(BigInteger, primary_key=True, tidb_auto_random=5).")
        random_spec = auto_random_spec(auto_random, where)
        if spec.endswith(" AUTO_INCREMENT"):
            return spec[: -len(" AUTO_INCREMENT")] + " " + random_spec
        return spec + " " + random_spec

    def visit_primary_key_constraint(self, constraint: Any, **kw: Any) -> str:
        text = super().visit_primary_key_constraint(constraint, **kw)
        clustered = constraint.table.dialect_options["tidb"].get("clustered")
        if clustered is None or not text:
            return text
        if isinstance(clustered, str) and clustered.strip().upper() in (
                "CLUSTERED", "NONCLUSTERED"):
            return f"{text} {clustered.strip().upper()}"
        if isinstance(clustered, bool):
            return f"{text} {'CLUSTERED' if clustered else 'NONCLUSTERED'}"
        raise InvalidDialectOption(
            f"tidb_clustered of table {constraint.table.name!r} is {clustered!r}: give True "
            "(CLUSTERED) or False (NONCLUSTERED).")

    def post_create_table(self, table: Any) -> str:
        options = table.dialect_options["tidb"]
        if options.get("clustered") is not None and not table.primary_key.columns:
            raise InvalidDialectOption(
                f"tidb_clustered on table {table.name!r}, which has no primary key: "
                "declare one (primary_key=True) or drop tidb_clustered.")
        mysql_kwargs = {key: value for key, value in table.kwargs.items()
                        if key.removeprefix("tidb_") not in TIDB_TABLE_OPTIONS}
        mysql_part = super().post_create_table(
            SimpleNamespace(kwargs=mysql_kwargs, comment=table.comment))
        tidb_part = tidb_table_options(
            {key.removeprefix("tidb_"): value for key, value in table.kwargs.items()
             if key.startswith("tidb_")}, table.name)
        return " ".join(part for part in (mysql_part, *tidb_part) if part)

    def visit_create_index(self, create: Any, **kw: Any) -> str:
        index = create.element
        distance = index.dialect_options["tidb"].get("vector_distance")
        if distance is None:
            return super().visit_create_index(create, **kw)
        function = DISTANCE_FUNCTIONS.get(str(distance).lower())
        if function is None or function == "VEC_NEGATIVE_INNER_PRODUCT":
            usable = ", ".join(repr(name) for name in DISTANCE_FUNCTIONS
                               if name != "negative_inner_product")
            raise InvalidDialectOption(
                f"tidb_vector_distance of index {index.name!r} is {distance!r}: TiDB's vector "
                f"indexes use one of {usable}.")
        columns = list(index.expressions)
        if (len(columns) != 1 or not isinstance(getattr(columns[0], "type", None), VECTOR)
                or columns[0].type.dim is None):
            raise InvalidDialectOption(
                f"Vector index {index.name!r} needs exactly one VECTOR(dim) column with a fixed "
                "dimension, e.g. Index('ix', Document.embedding, tidb_vector_distance='cosine').")
        column = self.preparer.format_column(columns[0])
        return (f"CREATE VECTOR INDEX {self._prepared_index_name(index)} "
                f"ON {self.preparer.format_table(index.table)} "
                f"(({function}({column}))) USING HNSW")

"""Reflection of TiDB's own DDL, which SHOW CREATE TABLE writes in `/*T![feature] ... */` comments.

TiDB writes, for example:

    `id` bigint NOT NULL /*T![auto_rand] AUTO_RANDOM(5) */,
    PRIMARY KEY (`id`) /*T![clustered_index] CLUSTERED */
    ) ENGINE=InnoDB ... /*T![auto_rand_base] AUTO_RANDOM_BASE=30001 */ /*T! SHARD_ROW_ID_BITS=4 */
      /*T![ttl] TTL=`created_at` + INTERVAL 3 MONTH */ /*T![ttl] TTL_ENABLE='ON' */

The comments are taken out before MySQL's parser reads the statement and turned into the same
`tidb_*` options the DDL compiler writes, so reflect -> create keeps them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.dialects.mysql.reflection import MySQLTableDefinitionParser, ReflectedState

from sqlalchemy_tidb.ddl_compiler import TIDB_TABLE_OPTIONS

# One TiDB-specific comment; its body is the DDL a TiDB runs and MySQL skips.
_TIDB_COMMENT = re.compile(r"\s*/\*T!(?:\[[\w,]+\])?\s*(?P<body>.*?)\s*\*/")
_AUTO_RANDOM = re.compile(r"^AUTO_RANDOM\((?P<bits>\d+)(?:,\s*(?P<range>\d+))?\)$", re.I)
_KEY_VALUE = re.compile(r"(?P<key>[A-Z_]+)\s*=\s*(?P<value>'(?:[^']|'')*'|\S+)", re.I)

# Only the options the DDL compiler can write again are kept; the others describe state
# (AUTO_RANDOM_BASE, how far keys were handed out) or are not supported yet (PLACEMENT POLICY).
_KEPT_OPTIONS = TIDB_TABLE_OPTIONS - {"clustered"}


def _table_options(body: str) -> dict[str, str]:
    """`TTL=<expr>` or `KEY=value KEY2=value2` from one comment body, as tidb_* options."""
    if body.upper().startswith("TTL="):
        return {"tidb_ttl": body[len("TTL="):].strip()}
    options = {}
    for match in _KEY_VALUE.finditer(body):
        key = match["key"].lower()
        value = match["value"]
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        if key in _KEPT_OPTIONS:
            options[f"tidb_{key}"] = value
    return options


class TiDBTableDefinitionParser(MySQLTableDefinitionParser):
    """MySQL's SHOW CREATE TABLE parser that also reads TiDB's `/*T![...] */` options."""

    def parse(self, show_create: str, charset: str | None) -> ReflectedState:
        lines = []
        auto_random: dict[str, Any] = {}
        table_options: dict[str, Any] = {}
        for line in re.split(r"\r?\n", show_create):
            bodies = [match["body"] for match in _TIDB_COMMENT.finditer(line)]
            if not bodies:
                lines.append(line)
                continue
            line = _TIDB_COMMENT.sub("", line)
            lines.append(line)
            if line.startswith("  " + self.preparer.initial_quote):
                column = self._re_column_loose.match(line)
                for body in bodies:
                    found = _AUTO_RANDOM.match(body)
                    if column and found:
                        bits = int(found["bits"])
                        auto_random[column["name"]] = (
                            bits if found["range"] is None else (bits, int(found["range"])))
            elif line.lstrip().startswith("PRIMARY KEY"):
                for body in bodies:
                    if body.upper() in ("CLUSTERED", "NONCLUSTERED"):
                        table_options["tidb_clustered"] = body.upper() == "CLUSTERED"
            elif line.startswith(")"):
                for body in bodies:
                    table_options.update(_table_options(body))
        state = super().parse("\n".join(lines), charset)
        for column in state.columns:
            if column["name"] in auto_random:
                # The key TiDB generates comes back as lastrowid, like AUTO_INCREMENT's.
                column["autoincrement"] = True
                column.setdefault("dialect_options", {})["tidb_auto_random"] = (
                    auto_random[column["name"]])
        state.table_options.update(table_options)
        return state

"""SQL statement compilation for TiDB: MySQL's, minus what TiDB accepts but does not do."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.mysql.base import MySQLCompiler

from sqlalchemy_tidb.exc import UnsupportedByTiDB


class TiDBCompiler(MySQLCompiler):
    """MySQL's statement compiler; refuses FOR UPDATE SKIP LOCKED."""

    def for_update_clause(self, select: Any, **kw: Any) -> str:
        if select._for_update_arg.skip_locked:
            # TiDB v8.5 parses SKIP LOCKED and then takes no lock at all: the statement
            # returns every row at once, rows another transaction holds included, and
            # locks none of them (tests/test_dialect_server.py shows it, both modes).
            # A queue consumer relying on it would process the same row twice.
            raise UnsupportedByTiDB(
                "TiDB accepts FOR UPDATE SKIP LOCKED but does not do it: it returns every row, "
                "including rows another transaction has locked, and locks none of them, so two "
                "workers would take the same row. Drop skip_locked=True and claim rows another "
                "way, e.g. UPDATE jobs SET owner = :me WHERE owner IS NULL LIMIT n, then SELECT "
                "the rows you own; or use with_for_update(nowait=True) to fail fast (3572) on "
                "a locked row.")
        return super().for_update_clause(select, **kw)

"""The `tidb://` SQLAlchemy dialect for TiDB, split by concern as it grows.

`base` holds the dialect class; SQLAlchemy finds it through the `sqlalchemy.dialects` entry
points `tidb` and `tidb.pymysql` (see pyproject.toml), which name this package.
"""

from crm_helpers.dialect.base import (
    SAVEPOINT_MIN_VERSION,
    NotTiDB,
    TiDBDialect,
    UnsupportedByTiDB,
    dialect,
    parse_tidb_version,
)

__all__ = [
    "SAVEPOINT_MIN_VERSION",
    "NotTiDB",
    "TiDBDialect",
    "UnsupportedByTiDB",
    "dialect",
    "parse_tidb_version",
]

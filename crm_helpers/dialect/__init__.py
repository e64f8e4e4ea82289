"""The `tidb://` SQLAlchemy dialect for TiDB, split by concern like sqlalchemy-cockroachdb.

- `base`: the dialect class (version, isolation levels, the tidb_txn_mode execution option,
  sequences, savepoints, XA);
- `ddl_compiler`: AUTO_RANDOM, CLUSTERED keys, TiDB table options, vector indexes;
- `stmt_compiler`: statements (FOR UPDATE SKIP LOCKED refused);
- `reflection`: TiDB's `/*T![...] */` options read back from SHOW CREATE TABLE;
- `vector`: the VECTOR type and its distance functions;
- `transaction`: `run_transaction`, the retry helper for TiDB's retryable errors;
- `server_errors`: TiDB's errors about these features, as rules of crm_helpers.translate.

SQLAlchemy finds the dialect through the `sqlalchemy.dialects` entry points `tidb` and
`tidb.pymysql` (see pyproject.toml), which name this package.
"""

from crm_helpers.dialect.base import (
    ISOLATION_LEVELS,
    SAVEPOINT_MIN_VERSION,
    TXN_MODES,
    TiDBDialect,
    UnsupportedIsolationLevel,
    dialect,
    is_tidb_cloud,
    parse_tidb_version,
)
from crm_helpers.dialect.transaction import (
    RETRYABLE_ERRORS,
    is_retryable,
    retryable_code,
    run_transaction,
    write_conflict_from,
)
from crm_helpers.dialect.vector import VECTOR
from crm_helpers.errors import NotTiDB, UnsupportedByTiDB

__all__ = [
    "ISOLATION_LEVELS",
    "RETRYABLE_ERRORS",
    "SAVEPOINT_MIN_VERSION",
    "TXN_MODES",
    "VECTOR",
    "NotTiDB",
    "TiDBDialect",
    "UnsupportedByTiDB",
    "UnsupportedIsolationLevel",
    "dialect",
    "is_retryable",
    "is_tidb_cloud",
    "parse_tidb_version",
    "retryable_code",
    "run_transaction",
    "write_conflict_from",
]

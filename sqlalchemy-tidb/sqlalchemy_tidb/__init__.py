"""`tidb://` for SQLAlchemy 2: MySQL over PyMySQL, plus what TiDB does differently.

The dialect is split by concern, like sqlalchemy-cockroachdb:

- `base`: the dialect class (version, isolation levels, the tidb_txn_mode execution option,
  sequences, savepoints, XA refused);
- `stale_read`: the tidb_read_staleness and tidb_as_of_timestamp execution options;
- `connect`: timeouts, verified TLS and UTF-8 passwords for every connection;
- `ddl_compiler`: AUTO_RANDOM, CLUSTERED keys, TiDB table options, vector indexes;
- `stmt_compiler`: statements (FOR UPDATE SKIP LOCKED refused);
- `reflection`: TiDB's `/*T![...] */` options read back from SHOW CREATE TABLE;
- `vector`: the VECTOR type and its distance functions;
- `transaction`: `run_transaction` (and `run_transaction_async`), the retry loop for TiDB's
  retryable errors;
- `errors` and `exc`: TiDB's errors as subclasses of SQLAlchemy's classes;
- `provision` and `requirements`: what SQLAlchemy's compliance suite needs;
- `alembic_impl`: Alembic's migrations for tidb:// (loaded when Alembic is installed), and
  `alembic_requirements` for Alembic's own test suite.

SQLAlchemy finds the dialect through the `sqlalchemy.dialects` entry points `tidb` and
`tidb.pymysql`, and its async twin (`asyncmy`: `TiDBDialect_asyncmy`, the same
`TiDBDialectMixin` on asyncmy, for `create_async_engine`) through `tidb.asyncmy`.
"""

from sqlalchemy_tidb.base import (
    SAVEPOINT_MIN_VERSION,
    TXN_MODES,
    TiDBDialect,
    dialect,
    is_tidb_cloud,
    parse_tidb_version,
)
from sqlalchemy_tidb.exc import (
    EntryTooLarge,
    InvalidDialectOption,
    InvalidVector,
    IsolationLevelUnsupported,
    NotTiDB,
    RefinedError,
    SharedLocksUnsupported,
    TiFlashRequired,
    TransactionTooLarge,
    UnsupportedByTiDB,
    UnsupportedIsolationLevel,
    WriteConflict,
)
from sqlalchemy_tidb.isolation import ISOLATION_LEVELS
from sqlalchemy_tidb.transaction import (
    RETRYABLE_ERRORS,
    is_retryable,
    retryable_code,
    run_transaction,
    run_transaction_async,
)
from sqlalchemy_tidb.vector import VECTOR

try:  # Alembic is optional (the `alembic` extra); when present, tidb:// needs its impl registered
    import alembic  # noqa: F401
except ImportError:
    pass
else:
    from sqlalchemy_tidb import alembic_impl  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "ISOLATION_LEVELS",
    "RETRYABLE_ERRORS",
    "SAVEPOINT_MIN_VERSION",
    "TXN_MODES",
    "VECTOR",
    "EntryTooLarge",
    "InvalidDialectOption",
    "InvalidVector",
    "IsolationLevelUnsupported",
    "NotTiDB",
    "RefinedError",
    "SharedLocksUnsupported",
    "TiDBDialect",
    "TiFlashRequired",
    "TransactionTooLarge",
    "UnsupportedByTiDB",
    "UnsupportedIsolationLevel",
    "WriteConflict",
    "__version__",
    "dialect",
    "is_retryable",
    "is_tidb_cloud",
    "parse_tidb_version",
    "retryable_code",
    "run_transaction",
    "run_transaction_async",
]

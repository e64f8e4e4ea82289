"""The `tidb://` SQLAlchemy dialect: MySQL over PyMySQL, plus what TiDB does differently.

It replaces PingCAP's archived `sqlalchemy-tidb` (SQLAlchemy < 2 only) on SQLAlchemy 2.x and
is found through the `sqlalchemy.dialects` entry point, so
`create_engine('tidb://root:@127.0.0.1:4000/test?charset=utf8mb4')` works.

This module wires the pieces together and holds what is about the server as a whole (version,
isolation levels, savepoints, XA, sequences); DDL, statements, reflection and the VECTOR type
live in their own modules next to it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, ClassVar

from sqlalchemy import event, text, util
from sqlalchemy import schema as sa_schema
from sqlalchemy.dialects.mysql.base import MySQLDialect
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.engine import reflection
from sqlalchemy.engine.characteristics import ConnectionCharacteristic

from sqlalchemy_tidb import connect, stale_read
from sqlalchemy_tidb.ddl_compiler import TiDBDDLCompiler
from sqlalchemy_tidb.errors import refine_tidb_error
from sqlalchemy_tidb.exc import InvalidDialectOption, NotTiDB, UnsupportedByTiDB
from sqlalchemy_tidb.isolation import ISOLATION_LEVELS, refuse_missing_isolation_level
from sqlalchemy_tidb.reflection import TiDBTableDefinitionParser
from sqlalchemy_tidb.stmt_compiler import TiDBCompiler
from sqlalchemy_tidb.vector import VECTOR

#: TiDB supports SAVEPOINT from this release on.
SAVEPOINT_MIN_VERSION = (6, 2)

# VERSION() on TiDB reads like "8.0.11-TiDB-v8.5.6" or "8.0.11-TiDB-v7.5.2-serverless";
# TiDB Cloud names its service release instead: "8.0.11-TiDB-CLOUD.202603.9".
_TIDB_RELEASE = re.compile(r"-TiDB-v?(\d+)\.(\d+)\.(\d+)")
_TIDB_CLOUD_RELEASE = re.compile(r"-TiDB-CLOUD\.(\d{4})(\d{2})\.(\d+)", re.IGNORECASE)


#: TiDB's two transaction modes (session variable tidb_txn_mode); pessimistic is the default.
TXN_MODES = ("pessimistic", "optimistic")


def txn_mode(value: Any) -> str:
    """The transaction mode `value` names, lower case; InvalidDialectOption if it names none."""
    if not isinstance(value, str) or value.strip().lower() not in TXN_MODES:
        raise InvalidDialectOption(
            f"tidb_txn_mode {value!r} is not a TiDB transaction mode: use 'pessimistic' "
            "(the default: writes lock rows as they go) or 'optimistic' (conflicts show up "
            "at commit as WriteConflict 9007).")
    return value.strip().lower()


class TxnModeCharacteristic(ConnectionCharacteristic):
    """The `tidb_txn_mode` execution option: a connection's transactions pessimistic or optimistic.

    `engine.execution_options(tidb_txn_mode="optimistic")` (or the same on a Connection, or
    `create_engine(..., execution_options={...})`) sets the session variable on each
    connection; it is set back to the server's default when the connection returns to the pool.
    """

    transactional = True

    def set_characteristic(self, dialect: Any, dbapi_conn: Any, value: Any) -> None:
        mode = txn_mode(value)
        if mode == "optimistic" and self._isolation(dbapi_conn) == "READ-COMMITTED":
            # TiDB would quietly give snapshot reads (REPEATABLE READ) instead.
            raise UnsupportedByTiDB(
                "TiDB ignores READ COMMITTED in optimistic mode: every read of the "
                "transaction would see its first snapshot (REPEATABLE READ), without a warning. "
                "Use pessimistic mode for READ COMMITTED, or REPEATABLE READ with optimistic.")
        self._set(dbapi_conn, f"'{mode}'")

    @staticmethod
    def _isolation(dbapi_conn: Any) -> str:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.transaction_isolation")
            return cursor.fetchone()[0]

    def reset_characteristic(self, dialect: Any, dbapi_conn: Any) -> None:
        self._set(dbapi_conn, "@@GLOBAL.tidb_txn_mode")

    def get_characteristic(self, dialect: Any, dbapi_conn: Any) -> Any:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.tidb_txn_mode")
            return cursor.fetchone()[0]

    @staticmethod
    def _set(dbapi_conn: Any, value: str) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET SESSION tidb_txn_mode = {value}")


def is_tidb_cloud(server_version: str) -> bool:
    """True when a VERSION() string is TiDB Cloud's (`...-TiDB-CLOUD.YYYYMM.N`)."""
    return _TIDB_CLOUD_RELEASE.search(server_version) is not None


def parse_tidb_version(server_version: str) -> tuple[int, int, int] | None:
    """TiDB's own version from a VERSION() string; None for a build without one (`-TiDB-None`).

    TiDB Cloud reports its service release (`8.0.11-TiDB-CLOUD.202603.9`) rather than a TiDB
    release. It always runs a current TiDB, so its version becomes (year, month, build), e.g.
    (2026, 3, 9): it sorts after every TiDB release, so every feature gate is open, and two
    cloud releases still compare in order. `is_tidb_cloud()` tells the two kinds apart.
    """
    match = _TIDB_RELEASE.search(server_version) or _TIDB_CLOUD_RELEASE.search(server_version)
    if match:
        major, minor, patch = (int(part) for part in match.groups())
        return major, minor, patch
    if "-TiDB-" in server_version:
        return None
    raise NotTiDB(f"The server reports version {server_version!r}, which is not TiDB. "
                  "The tidb:// dialect only talks to TiDB; check the host and port in the URL.")


class TiDBDialectMixin:
    """TiDB's additions to a MySQL dialect; put it first among the bases, before the driver's.

    `TiDBDialect` (PyMySQL) and `TiDBDialect_asyncmy` (sqlalchemy_tidb.asyncmy) are this mixin
    on SQLAlchemy's MySQL dialect for their driver, so each TiDB addition is written once. A
    driver's dialect adds `driver`, `connect()` and, if needed, `driver_parameters()`.
    """

    name = "tidb"
    supports_statement_cache = True
    _tls: connect.TLSPolicy

    statement_compiler = TiDBCompiler
    ddl_compiler = TiDBDDLCompiler
    ischema_names: ClassVar[dict[str, Any]] = {**MySQLDialect.ischema_names, "vector": VECTOR}

    # TiDB has had CREATE SEQUENCE since v4.0. Tables still get AUTO_INCREMENT unless a
    # column names a Sequence, as on PostgreSQL.
    supports_sequences = True
    sequences_optional = True
    # nextval() sets no LAST_INSERT_ID(), so a key drawn from a sequence must be fetched
    # before the INSERT for SQLAlchemy to know it.
    preexecute_autoincrement_sequences = True

    # TiDB runs CAST(x AS FLOAT / DOUBLE); MySQL only from 8.0.17, and TiDB says 8.0.11.
    _support_float_cast = True

    construct_arguments: ClassVar[list[tuple[Any, dict[str, Any]]]] = [
        *((construct, options) for construct, options in MySQLDialect.construct_arguments
          if construct is not sa_schema.Index),
        (sa_schema.Index, {**dict(MySQLDialect.construct_arguments)[sa_schema.Index],
                           "vector_distance": None}),
        (sa_schema.Column, {"auto_random": None}),
    ]

    connection_characteristics = util.immutabledict(
        {**MySQLDialect.connection_characteristics, "tidb_txn_mode": TxnModeCharacteristic(),
         stale_read.READ_STALENESS: stale_read.ReadStalenessCharacteristic()})

    #: TiDB's release as (major, minor, patch), read when the first connection is made.
    tidb_version: tuple[int, int, int] | None = None
    #: True on TiDB Cloud, whose VERSION() names a service release (see parse_tidb_version).
    tidb_cloud: bool = False

    def __init__(self, **kwargs: Any) -> None:
        # create_engine(isolation_level=...) lands here: refuse a level TiDB lacks now, not
        # at the first connection.
        level = kwargs.get("isolation_level")
        if isinstance(level, str):
            refuse_missing_isolation_level(level)
        super().__init__(**kwargs)

    @classmethod
    def engine_created(cls, engine: Any) -> None:
        # TiDB's own errors (write conflicts, transaction too large, ...) become subclasses of
        # the SQLAlchemy class they already have (sqlalchemy_tidb.errors).
        event.listen(engine, "handle_error", refine_tidb_error, retval=True)
        # SELECTs given tidb_as_of_timestamp read the past (sqlalchemy_tidb.stale_read).
        event.listen(engine, "before_execute", stale_read.apply_as_of_timestamp, retval=True)
        # exec_driver_sql() skips before_execute: its per-call tidb_read_staleness is refused here.
        event.listen(engine, "before_cursor_execute", stale_read.refuse_staleness_on_driver_sql)

    def set_engine_execution_options(self, engine: Any, opts: Any) -> None:
        # Checked now: the check on each new connection would come after the pool had handed
        # one out, and a refusal there leaves that connection to the garbage collector.
        if "tidb_txn_mode" in opts:
            txn_mode(opts["tidb_txn_mode"])
        stale_read.check_execution_options(opts)
        super().set_engine_execution_options(engine, opts)  # type: ignore[misc]

    def set_connection_execution_options(self, connection: Any, opts: Any) -> None:
        stale_read.check_execution_options(opts)
        super().set_connection_execution_options(connection, opts)

    def initialize(self, connection: Any) -> None:
        super().initialize(connection)
        server_version = connection.exec_driver_sql("SELECT VERSION()").scalar()
        self.tidb_version = parse_tidb_version(server_version)
        self.tidb_cloud = is_tidb_cloud(server_version)
        self._correct_mysql_version_gates()

    def _correct_mysql_version_gates(self) -> None:
        # TiDB reports MySQL 8.0.11, so SQLAlchemy's MySQL feature gates describe that
        # MySQL release, not TiDB. Correct those where TiDB differs (each checked against
        # TiDB v8.5 in tests/test_dialect_gates.py).
        # CAST(x AS FLOAT / DOUBLE) arrived in MySQL 8.0.17; TiDB runs it.
        self._support_float_cast = True
        # MySQL >= 8.0.20 wants INSERT ... AS new ON DUPLICATE KEY UPDATE x = new.x; TiDB
        # only has VALUES(x) (the alias is a syntax error, 1064). Pinned, so a TiDB that
        # reports a newer MySQL level does not switch SQLAlchemy to the alias form.
        self._requires_alias_for_on_duplicate_key = False

    # -- isolation levels ------------------------------------------------------------------

    def get_isolation_level_values(self, dbapi_connection: Any) -> tuple[str, ...]:
        return (*ISOLATION_LEVELS, "AUTOCOMMIT")

    def _assert_and_set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        refuse_missing_isolation_level(level)
        super()._assert_and_set_isolation_level(dbapi_connection, level)

    # -- sequences -------------------------------------------------------------------------

    @reflection.cache
    def has_sequence(self, connection: Any, sequence_name: str, schema: str | None = None,
                     **kw: Any) -> bool:
        found = connection.execute(
            text("SELECT 1 FROM information_schema.sequences "
                 "WHERE sequence_schema = :schema AND sequence_name = :name"),
            {"schema": schema or self.default_schema_name, "name": sequence_name})
        return found.first() is not None

    @reflection.cache
    def get_sequence_names(self, connection: Any, schema: str | None = None,
                           **kw: Any) -> list[str]:
        names = connection.execute(
            text("SELECT sequence_name FROM information_schema.sequences "
                 "WHERE sequence_schema = :schema ORDER BY sequence_name"),
            {"schema": schema or self.default_schema_name})
        return list(names.scalars())

    # -- reflection ------------------------------------------------------------------------

    @util.memoized_property
    def _tabledef_parser(self) -> TiDBTableDefinitionParser:
        # SHOW CREATE TABLE on TiDB carries TiDB's own options in /*T![...] */ comments.
        return TiDBTableDefinitionParser(self, self.identifier_preparer)

    # -- savepoints and two-phase ----------------------------------------------------------

    def _require_savepoints(self) -> None:
        if self.tidb_version is not None and self.tidb_version < SAVEPOINT_MIN_VERSION:
            found = ".".join(map(str, self.tidb_version))
            raise UnsupportedByTiDB(
                f"TiDB {found} has no SAVEPOINT (it arrived in TiDB 6.2), so begin_nested() "
                "cannot work here. Use separate transactions, or upgrade TiDB.")

    def do_savepoint(self, connection: Any, name: str) -> None:
        self._require_savepoints()
        super().do_savepoint(connection, name)

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        self._require_savepoints()
        super().do_rollback_to_savepoint(connection, name)

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        self._require_savepoints()
        super().do_release_savepoint(connection, name)

    # TiDB commits every transaction with its own internal two-phase protocol but offers no
    # XA statements, so SQLAlchemy's two-phase API cannot be honoured: refuse it clearly
    # instead of sending XA commands that TiDB would reject mid-transaction.
    def _refuse_two_phase(self, *_: Any) -> Any:
        raise UnsupportedByTiDB(
            "TiDB does not support XA (two-phase) transactions; every TiDB transaction is "
            "already committed atomically across the cluster. Use engine.begin() or "
            "Session.commit() instead of begin_twophase() / twophase=True.")

    do_begin_twophase = _refuse_two_phase
    do_prepare_twophase = _refuse_two_phase
    do_rollback_twophase = _refuse_two_phase
    do_commit_twophase = _refuse_two_phase
    do_recover_twophase = _refuse_two_phase

    # Every connection has timeouts and verified TLS (sqlalchemy_tidb.connect has the rules).
    def create_connect_args(self, url: Any, _translate_args: Any = None) -> Any:
        _check_url_options(url, self.driver, self.driver_parameters())
        if url.port is not None and not 0 < url.port < 65536:
            raise InvalidDialectOption(f"The port in the URL is {url.port}; it must be from 1 "
                                       "to 65535.")
        self._tls = connect.tls_policy(url.query)
        timeouts = connect.timeouts_from(url.query)
        plain = url.difference_update_query(
            [name for name in url.query if name.startswith("ssl") or name in timeouts])
        # The async drivers' dialects supply their own translation of the URL's names.
        given = () if _translate_args is None else (_translate_args,)
        args, opts = super().create_connect_args(plain, *given)  # type: ignore[misc]
        return args, connect.connect_options(opts, self._tls, timeouts)

    @classmethod
    def driver_parameters(cls) -> set[str]:
        """The keyword arguments of the driver's connection class (URL options must be some)."""
        import pymysql

        return set(inspect.signature(pymysql.connections.Connection.__init__).parameters)


class TiDBDialect(TiDBDialectMixin, MySQLDialect_pymysql):
    """MySQL/PyMySQL with TiDB's version, isolation, sequences, DDL options and VECTOR."""

    driver = "pymysql"
    supports_statement_cache = True

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        connection = connect.open_connection(self.loaded_dbapi, cparams, self._tls)
        #: Whether this engine's connections are encrypted.
        self.uses_tls = connect.uses_tls(connection)
        return connection


def _check_url_options(url: Any, driver: str, parameters: set[str]) -> None:
    """Refuse a URL query option the driver does not take, before it fails deep in the driver."""
    known = parameters | {*connect.TLS_OPTIONS, *connect.TIMEOUT_OPTIONS, "ssl_cipher"}
    unknown = sorted(name for name in url.query if name not in known)
    if unknown:
        raise InvalidDialectOption(
            f"The URL has the option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}, "
            f"which the tidb dialect does not know. Options go to the {driver} driver's connect(), "
            "such as "
            "charset, connect_timeout, read_timeout, ssl_ca or init_command; check the spelling, "
            "or pass other settings in create_engine(connect_args={...}).")


dialect = TiDBDialect

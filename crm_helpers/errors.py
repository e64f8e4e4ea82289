"""Exception types raised by crm_helpers; each message says what to do next."""

from __future__ import annotations


class CrmError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(CrmError, ValueError):
    """A setting (environment variable or `.env` entry) has a value we cannot use."""


class TiDBBuildError(CrmError):
    """tidb-server could not be found or built."""


class GoNotFound(TiDBBuildError):
    """Building tidb-server needs Go, and there is no `go` on PATH."""


class TiDBServerError(CrmError):
    """The local tidb-server could not be started, reached or stopped."""


class PortInUse(TiDBServerError):
    """A port the local TiDB needs is held by another program."""


class TiDBStartTimeout(TiDBServerError):
    """tidb-server started but did not answer in time, or exited while starting."""


class TiDBStillStopping(TiDBServerError):
    """The local tidb-server is still shutting down cleanly; it was left running."""


class TableDamaged(CrmError):
    """A table's rows and indexes disagree (ADMIN CHECK TABLE failed), e.g. after a hard kill."""


class TiDBConnectionError(CrmError):
    """A TiDB could not be used through the configured URL."""


class TiDBNotRunning(TiDBConnectionError):
    """Nothing answers at the configured host and port."""


class TiDBAuthError(TiDBConnectionError):
    """TiDB refused the user name or password."""


class TiDBTLSError(TiDBConnectionError):
    """TLS to TiDB failed: the server's certificate or name did not verify, or TLS is missing."""


class TiDBTimeout(TiDBConnectionError):
    """TiDB did not answer within the connect or read timeout."""


class TiDBProtocolError(TiDBConnectionError):
    """Something answers at the configured host and port, but it is not a MySQL/TiDB server."""


class InvalidInput(CrmError, ValueError):
    """A CRM operation was given data it refuses; nothing was written."""


class UnknownGender(InvalidInput):
    """A gender that is not one of the `Gender` enum's members."""


class InvalidPrice(InvalidInput):
    """A price that is negative, NaN, infinite or not a number."""


class UserNotFound(InvalidInput):
    """An order refers to a uid that no user has."""


class OrderNotFound(InvalidInput):
    """An operation refers to an oid that no order has."""


class NotTiDB(TiDBConnectionError):
    """The server behind a `tidb://` URL is not TiDB."""


class UnsupportedByTiDB(CrmError, NotImplementedError):
    """An SQLAlchemy or MySQL feature that this TiDB does not offer; nothing was sent."""


class TiFlashRequired(UnsupportedByTiDB):
    """The statement needs TiFlash (TiDB's columnar engine), which this TiDB does not have."""


class InvalidVector(InvalidInput):
    """A value for a VECTOR column that is not a finite list of numbers of the right length."""


class WriteConflict(CrmError):
    """A transaction lost a write conflict (or a lock wait) and was not committed; run it again.

    `code` is TiDB's error code (9007, 8002, 8022, 8028, 1213, 1205); `attempts` how many times
    the unit of work ran before giving up (None when it was not run through the retry helper).
    """

    def __init__(self, message: str, *, code: int | None = None,
                 attempts: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.attempts = attempts


class InvalidDialectOption(CrmError, ValueError):
    """A `tidb_*` table, column or index option has a value TiDB cannot use; nothing was sent."""

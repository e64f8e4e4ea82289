"""Exception types raised by crm_helpers; each message says what to do next.

Two kinds. Errors found by the project itself (a setting, the local server, a value refused
before anything is sent) derive from `CrmError` alone. Errors that come from the database are
`LessonAdvice` classes: each is also the SQLAlchemy class it refines (`UserNotFound` is an
`IntegrityError`, `TiDBNotRunning` an `OperationalError`), so `except IntegrityError` works in
the notebooks as everywhere else; it only puts the lesson's advice first in the message.
The error codes that more than one module looks for, and `error_code`, are here too.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy_tidb.exc import (  # the dialect's errors, by their names in the notebooks
    InvalidDialectOption,
    InvalidVector,
    NotTiDB,
    RefinedError,
    TiFlashRequired,
    UnsupportedByTiDB,
    WriteConflict,
)

__all__ = [
    "INCONSISTENCY_CODES", "NO_PARENT_ROW", "ConfigError", "CrmError", "GoNotFound",
    "InvalidDialectOption", "InvalidInput", "InvalidPrice", "InvalidVector", "LessonAdvice",
    "LoadFailed", "LocalTiDBBusy", "MissingParentRow", "NoSpaceLeft", "NoValueForColumn",
    "NotTiDB", "NullNotAllowed", "OrderNotFound", "PortInUse", "TableDamaged", "TiDBAuthError",
    "TiDBBuildError", "TiDBConnectionError", "TiDBDiskFull", "TiDBNotRunning", "TiDBProtocolError",
    "TiDBServerError", "TiDBStartTimeout", "TiDBStillStopping", "TiDBTLSError", "TiDBTimeout",
    "TiFlashRequired", "UnknownGender", "UnsupportedByTiDB", "UserNotFound", "ValueDoesNotFit",
    "WriteConflict", "error_code",
]

#: TiDB's error codes for "this table's indexes and rows disagree" (TableDamaged).
INCONSISTENCY_CODES = {8003, 8133, 8134, 8138, 8139, 8140, 8141, 8223}
#: A foreign key with no parent row (MissingParentRow, UserNotFound).
NO_PARENT_ROW = 1452


def error_code(exc: BaseException) -> int | None:
    """The MySQL/TiDB error number of a driver error (or SQLAlchemy's wrapper of one)."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    args = getattr(original, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


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


class TiDBDiskFull(TiDBStartTimeout):
    """tidb-server exited while starting because the disk of its data folder is full."""


class LocalTiDBBusy(TiDBServerError):
    """Another start of the local TiDB in the same folder did not finish in time."""


class TiDBStillStopping(TiDBServerError):
    """The local tidb-server is still shutting down cleanly; it was left running."""


class LessonAdvice(CrmError, RefinedError):
    """A database error with the lesson's advice; also the SQLAlchemy class it refines.

    `Error(advice, error)` takes over the SQLAlchemy error's statement and `.orig`;
    `Error(advice)` reports the same failure found without a database error.
    """


class TableDamaged(LessonAdvice, OperationalError):
    """A table's rows and indexes disagree (ADMIN CHECK TABLE failed), e.g. after a hard kill."""


class TiDBConnectionError(LessonAdvice, OperationalError):
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


class MissingParentRow(LessonAdvice, InvalidInput, IntegrityError):
    """A row refers to a parent row that does not exist (a foreign key, TiDB error 1452)."""


class UserNotFound(MissingParentRow):
    """An order refers to a uid that no user has."""


class ValueDoesNotFit(LessonAdvice, InvalidInput, DataError):
    """TiDB refused a value too long or out of range for its column (1406, 1264)."""


class NullNotAllowed(LessonAdvice, InvalidInput, IntegrityError):
    """A NOT NULL column was given NULL (1048)."""


class NoValueForColumn(LessonAdvice, InvalidInput, OperationalError):
    """An INSERT left out a NOT NULL column that has no default (1364)."""


class OrderNotFound(InvalidInput):
    """An operation refers to an oid that no order has."""


class LoadFailed(CrmError):
    """TiDB rejected a batch; it was rolled back, earlier batches stay committed."""


class NoSpaceLeft(LoadFailed):
    """A load stopped because a disk filled up: the client's temporary folder or TiDB's."""

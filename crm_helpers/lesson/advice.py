"""Database errors given the lesson's advice, on the engines the project's settings build.

`install_error_translation(engine)` hooks SQLAlchemy's `handle_error` event. The URLs that
`crm_helpers.config.Settings` builds name the `crm_lesson` engine plugin
(`crm_helpers.lesson.plugin`), which installs it, so a learner's plain
`create_engine(settings.app_url())` gets it too, while a `tidb://` URL of anyone's own does not.
Each project exception is also the SQLAlchemy class of the error it replaces (`UserNotFound`
is an `IntegrityError`), so code that catches SQLAlchemy's classes still catches it; its
message starts with what is wrong and what to do.

To advise on another error code, add one entry to `RULES`: the code, and a function that
returns the exception class and message for a `Failure` (or None to leave the error alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy_tidb.connect import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HANDSHAKE_ERROR,
    SSL_CONNECTION_ERROR,
)

from crm_helpers.config import mask_url
from crm_helpers.errors import (
    INCONSISTENCY_CODES,
    NO_PARENT_ROW,
    CrmError,
    LessonAdvice,
    MissingParentRow,
    NoValueForColumn,
    NullNotAllowed,
    TableDamaged,
    TiDBAuthError,
    TiDBConnectionError,
    TiDBNotRunning,
    TiDBProtocolError,
    TiDBTimeout,
    TiDBTLSError,
    UserNotFound,
    ValueDoesNotFit,
    error_code,
)

# MySQL protocol error codes that TiDB (or PyMySQL, for the 2000s) returns.
CANNOT_CONNECT = 2003
SERVER_GONE = 2006
LOST_CONNECTION = 2013
ACCESS_DENIED = 1045
DATABASE_ACCESS_DENIED = 1044
UNKNOWN_DATABASE = 1049
VALUE_TOO_LONG = 1406
OUT_OF_RANGE = 1264
COLUMN_NOT_NULL = 1048
NO_DEFAULT_VALUE = 1364
SECURE_TRANSPORT_REQUIRED = 3159


@dataclass(frozen=True)
class Failure:
    """One database error, as the rules see it: code, the server's text, and where."""

    code: int | None
    message: str
    url: URL | None
    #: True when the error came while logging in, False when a statement failed.
    during_connect: bool = False

    @property
    def where(self) -> str:
        """host:port of the TiDB that failed (the port TiDB uses by default if none is given)."""
        if self.url is None:
            return "TiDB"
        return f"{self.url.host}:{self.url.port or 4000}"

    @property
    def shown_url(self) -> str:
        """The URL with its password masked, safe to put in a message."""
        return mask_url(self.url) if self.url is not None else "(unknown)"

    def timeout(self, name: str, default: float) -> float:
        """The URL's `connect_timeout` / `read_timeout` in seconds (the dialect's default)."""
        given = self.url.query.get(name) if self.url is not None else None
        try:
            return float(given) if isinstance(given, str) else default
        except ValueError:
            return default


#: What a rule gives: the project's exception class and its message.
Advice = tuple[type[LessonAdvice], str]
Rule = Callable[[Failure], Advice | None]


def _not_running(failure: Failure) -> Advice:
    return TiDBNotRunning, (
        f"Cannot reach TiDB at {failure.where} ({_short_reason(failure.message)}). If this is "
        "the project's local TiDB, start it with `crm-tidb up` (or `make lab`); otherwise "
        f"check TIDB_URL, or TIDB_HOST and TIDB_PORT. URL used: {failure.shown_url}")


def _lost_connection(failure: Failure) -> Advice:
    return TiDBNotRunning, (
        f"Lost the connection to TiDB at {failure.where} ({failure.message}): it stopped or "
        "restarted meanwhile. Check with `crm-tidb status`, start it with `crm-tidb up` if "
        "needed, then run the cell again; a transaction that was open was not committed.")


def _lost_or_timed_out(failure: Failure) -> Advice:
    if "timed out" not in failure.message:
        return _lost_connection(failure)
    if "opening the connection" in failure.message:  # see sqlalchemy_tidb.connect
        return TiDBTimeout, (
            f"{failure.message}. The server is overloaded or frozen: check it (`crm-tidb "
            "status` for the local one), or raise TIDB_CONNECT_TIMEOUT. "
            f"URL used: {failure.shown_url}")
    seconds = failure.timeout("read_timeout", DEFAULT_READ_TIMEOUT)
    return TiDBTimeout, (
        f"TiDB at {failure.where} did not answer a statement within the read timeout "
        f"(TIDB_READ_TIMEOUT, now {seconds:g} s): the statement runs longer than that, or the "
        "server froze. The connection was "
        "closed; a statement that writes may still have finished on the server, so check "
        "before running it again. For longer statements raise TIDB_READ_TIMEOUT. "
        f"URL used: {failure.shown_url}")


def _not_a_mysql_server(failure: Failure) -> Advice:
    wait = failure.timeout("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    if "no MySQL greeting" in failure.message:
        cause = ("Either this is not TiDB's SQL port, or the TiDB there is frozen or "
                 "overloaded (for the local one: `crm-tidb status`).")
    else:
        cause = "It is not TiDB's SQL port."
    return TiDBProtocolError, (
        f"{failure.message}. {cause} Check TIDB_PORT, or the port in TIDB_URL: the local "
        "TiDB's SQL port is 4000 unless set, and its HTTP status port (10080) does not speak "
        f"SQL. TIDB_CONNECT_TIMEOUT (now {wait:g} s) sets how long to wait for an answer. "
        f"URL used: {failure.shown_url}")


def _tls_failed(failure: Failure) -> Advice:
    message = failure.message
    if "not issued for the host name" in message:
        advice = ("Connect with the host name the certificate was issued for (TIDB_HOST, or "
                  "the host in TIDB_URL), not an IP address or another alias of the server.")
    elif "not signed by" in message:
        advice = ("Set CA_PATH (or ssl_ca in TIDB_URL) to the CA certificate that signed this "
                  "server's certificate (for TiDB Cloud, the system bundle, such as "
                  "/etc/ssl/certs/ca-certificates.crt), and check that the host is the TiDB "
                  "you mean.")
    elif "does not offer" in message:
        advice = ("This server has no TLS: remove CA_PATH and the ssl_* options of TIDB_URL "
                  "for it, or turn TLS on in the server (security.ssl-cert and ssl-key).")
    elif failure.code == SECURE_TRANSPORT_REQUIRED:
        message = "it requires TLS, and TLS is turned off for this connection"
        advice = ("Remove ssl_disabled from TIDB_URL, and set CA_PATH to the CA of the "
                  "server's certificate (or rely on the system's CAs).")
    else:
        advice = "Check CA_PATH (or ssl_ca, ssl_cert, ssl_key in TIDB_URL) and the host name."
    return TiDBTLSError, (f"TLS to TiDB at {failure.where} failed: {message}. {advice} Nothing "
                        f"was sent over this connection. URL used: {failure.shown_url}")


def _login_refused(failure: Failure) -> Advice:
    user = failure.url.username if failure.url is not None else None
    return TiDBAuthError, (
        f"TiDB at {failure.where} refused the login of user {user!r}: wrong user name or "
        "password. Check TIDB_USER and TIDB_PASSWORD (or the password in TIDB_URL; for the "
        f"application user, CRM_APP_PASSWORD in .env). URL used: {failure.shown_url}")


def _no_database(failure: Failure) -> Advice | None:
    if not failure.during_connect:
        return None  # a statement naming another database: TiDB's own message says which
    user = failure.url.username if failure.url is not None else None
    database = failure.url.database if failure.url is not None else None
    return TiDBConnectionError, (
        f"User {user!r} cannot use database {database!r} on {failure.where}: it does not exist "
        "or is not granted. Notebook 02 creates it and grants access "
        f"(crm_helpers.lesson.accounts). URL used: {failure.shown_url}")


def _no_parent_row(failure: Failure) -> Advice:
    if "REFERENCES `users`" in failure.message:
        return UserNotFound, (
            "No user has that uid: every order must belong to an existing user (TiDB checks "
            "the foreign key orders.uid -> users.uid). Add the user first or fix the uid; "
            "TiDB refused the statement and no order was written.")
    return MissingParentRow, (f"A row refers to a parent row that does not exist "
                              f"({failure.message}); add the parent first or fix the reference.")


def _value_does_not_fit(failure: Failure) -> Advice:
    return ValueDoesNotFit, (f"TiDB refused a value that does not fit its column "
                             f"({failure.message}); nothing was written by this statement. "
                             "Shorten or correct the value.")


def _null_value(failure: Failure) -> Advice:
    return NullNotAllowed, (f"A required column got no value ({failure.message}); "
                            "give every column of the row a value.")


def _left_out_value(failure: Failure) -> Advice:
    return NoValueForColumn, (f"A required column got no value ({failure.message}); "
                              "give every column of the row a value.")


def _table_damaged(failure: Failure) -> Advice:
    return TableDamaged, (
        f"TiDB found a table's rows and index entries disagreeing ({failure.message[:300]}; "
        f"error {failure.code}), as a hard kill of the local TiDB leaves them. Run "
        "`crm-tidb repair` to repair the indexes of every damaged table, then write again what "
        "is missing (load_frame and load_generated resume and do both by themselves).")


#: MySQL error code -> the rule that turns it into the project's exception.
RULES: dict[int, Rule] = {
    CANNOT_CONNECT: _not_running,
    SERVER_GONE: _lost_connection,
    LOST_CONNECTION: _lost_or_timed_out,
    HANDSHAKE_ERROR: _not_a_mysql_server,
    SSL_CONNECTION_ERROR: _tls_failed,
    SECURE_TRANSPORT_REQUIRED: _tls_failed,
    ACCESS_DENIED: _login_refused,
    DATABASE_ACCESS_DENIED: _no_database,
    UNKNOWN_DATABASE: _no_database,
    NO_PARENT_ROW: _no_parent_row,
    VALUE_TOO_LONG: _value_does_not_fit,
    OUT_OF_RANGE: _value_does_not_fit,
    COLUMN_NOT_NULL: _null_value,
    # An INSERT that leaves out a NOT NULL column (ORM bulk insert leaves out None).
    NO_DEFAULT_VALUE: _left_out_value,
    # Rows and indexes that disagree, e.g. after a hard kill of the local TiDB (local/recovery.py).
    **dict.fromkeys(INCONSISTENCY_CODES, _table_damaged),
}
# TiDB's own errors (write conflicts, transaction too large, TiFlash, ...) are the dialect's:
# sqlalchemy_tidb refines them on every tidb:// engine, with general advice.


def translate(error: DBAPIError, url: URL | None, *,
              during_connect: bool = True) -> LessonAdvice | None:
    """The project exception for a SQLAlchemy database error, or None to leave it as it is."""
    if isinstance(error, LessonAdvice):
        return None
    args = getattr(error.orig, "args", ())
    code = error_code(error)
    rule = RULES.get(code) if code is not None else None
    advice = rule(Failure(code=code, message=str(args[1]) if len(args) > 1 else "", url=url,
                          during_connect=during_connect)) if rule is not None else None
    if advice is None:
        return None
    advised_class, message = advice
    return advised_class.replacing(error, message)


def install_error_translation(engine: Engine) -> Engine:
    """Make `engine` raise the project's exceptions for the errors in RULES (idempotent)."""
    if not event.contains(engine, "handle_error", _on_handle_error):
        event.listen(engine, "handle_error", _on_handle_error, retval=True)
    return engine


def _on_handle_error(context: ExceptionContext) -> BaseException | None:
    original = context.original_exception
    if isinstance(original, CrmError):
        # Raised by our own checks while SQLAlchemy prepared the statement (e.g. the Price
        # type): give it back as it is instead of SQLAlchemy's StatementError around it.
        return original
    if context.is_pre_ping:
        return None  # the pool reconnects; nothing reaches the caller
    # The dialect's refinement (e.g. WriteConflict), if it made one, else SQLAlchemy's error.
    error = getattr(context, "chained_exception", None) or context.sqlalchemy_exception
    if not isinstance(error, DBAPIError):
        return None
    url = context.engine.url if context.engine is not None else None
    return translate(error, url, during_connect=context.statement is None)


def _short_reason(reason: str) -> str:
    if "Connection refused" in reason:
        return "connection refused: nothing listens on that port"
    if "timed out" in reason:
        return "timed out: the host does not answer"
    if "Name or service not known" in reason or "nodename nor servname" in reason:
        return "unknown host name"
    if "host name is not valid" in reason:
        return "not a valid host name: an empty part between dots, or a part over 63 characters"
    return reason or "no answer"

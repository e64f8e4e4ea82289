"""Engines for TiDB, and connection failures turned into errors that say what to check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from crm_helpers.config import mask_url
from crm_helpers.errors import TiDBAuthError, TiDBConnectionError, TiDBNotRunning

# MySQL protocol error codes that TiDB returns.
CANNOT_CONNECT = 2003
ACCESS_DENIED = 1045
UNKNOWN_DATABASE = 1049
DATABASE_ACCESS_DENIED = 1044


def tidb_engine(url: URL | str, *, check: bool = True, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for `url`; with `check`, one round trip proves it can log in."""
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if check:
        check_connection(engine)
    return engine


def check_connection(target: Engine | URL | str) -> None:
    """Run `SELECT 1`, raising TiDBNotRunning or TiDBAuthError with advice on failure."""
    engine = target if isinstance(target, Engine) else create_engine(target)
    try:
        with connection_errors(engine.url), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        if engine is not target:
            engine.dispose()


@contextmanager
def connection_errors(url: URL | str) -> Iterator[None]:
    """Re-raise failures to reach or log in to TiDB at `url` as TiDBConnectionError types."""
    try:
        yield
    except DBAPIError as exc:
        translated = _translate(exc, make_url(url))
        if translated is None:
            raise
        raise translated from None


def _translate(exc: DBAPIError, url: URL) -> TiDBConnectionError | None:
    args = getattr(exc.orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    where = f"{url.host}:{url.port or 4000}"
    shown = mask_url(url)
    if code == CANNOT_CONNECT:
        reason = str(args[1]) if len(args) > 1 else ""
        return TiDBNotRunning(
            f"Cannot reach TiDB at {where} ({_short_reason(reason)}). If this is the project's "
            "local TiDB, start it with `crm-tidb up` (or `make lab`); otherwise check TIDB_URL, "
            f"or TIDB_HOST and TIDB_PORT. URL used: {shown}")
    if code == ACCESS_DENIED:
        return TiDBAuthError(
            f"TiDB at {where} refused the login of user {url.username!r}: wrong user name or "
            "password. Check TIDB_USER and TIDB_PASSWORD (or the password in TIDB_URL; "
            f"for the application user, CRM_APP_PASSWORD in .env). URL used: {shown}")
    if code in (UNKNOWN_DATABASE, DATABASE_ACCESS_DENIED):
        return TiDBConnectionError(
            f"User {url.username!r} cannot use database {url.database!r} on {where}: it does "
            "not exist or is not granted. Notebook 02 creates it and grants access "
            f"(crm_helpers.accounts). URL used: {shown}")
    return None


def _short_reason(reason: str) -> str:
    if "Connection refused" in reason:
        return "connection refused: nothing listens on that port"
    if "timed out" in reason:
        return "timed out: the host does not answer"
    if "Name or service not known" in reason or "nodename nor servname" in reason:
        return "unknown host name"
    return reason or "no answer"

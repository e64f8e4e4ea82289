"""Engines for TiDB, and connection failures turned into errors that say what to check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from crm_helpers.errors import ConfigError
from crm_helpers.lesson.advice import install_error_translation, translate


def tidb_engine(url: URL | str, *, check: bool = True, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for `url` raising the project's errors; `check` proves it can log in."""
    engine = install_error_translation(create_engine(_url(url), pool_pre_ping=True, **kwargs))
    if check:
        check_connection(engine)
    return engine


def check_connection(target: Engine | URL | str) -> None:
    """Run `SELECT 1`, raising TiDBNotRunning or TiDBAuthError with advice on failure."""
    engine = target if isinstance(target, Engine) else create_engine(_url(target))
    try:
        with connection_errors(engine.url), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        if engine is not target:
            engine.dispose()


def _url(url: object) -> URL:
    """`url` as a URL; ConfigError (never showing a password) if it is not one."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise ConfigError(f"Expected a URL such as tidb://USER:PASSWORD@HOST:4000/DATABASE "
                          f"(or settings.url()), not this {type(url).__name__}.") from None


@contextmanager
def connection_errors(url: URL | str) -> Iterator[None]:
    """Re-raise failures to reach or log in to TiDB at `url` as TiDBConnectionError types."""
    try:
        yield
    except DBAPIError as exc:
        translated = translate(exc, make_url(url))
        if translated is None:
            raise
        raise translated from None

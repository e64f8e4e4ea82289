"""Query results into DataFrames fast: connectorx (Rust, Arrow) with pandas.read_sql as fallback.

Both paths give the same values with the same dtypes (integers int64, floats float64,
`gender` categorical), so callers never need to know which one served them; the frame's
`attrs["read_path"]` says which did.

Chunked reads (`chunksize=`) stream connectorx's Arrow batches from a child process
(`child_stream`), one chunk at a time: connectorx's stream holds Python's GIL while it waits
for TiDB, so in this process no thread could give up on a frozen server, while the child can
be waited on for at most the read timeout (TIDB_READ_TIMEOUT) and killed (TiDBTimeout). When
connectorx cannot serve the query, chunks come from PyMySQL's unbuffered cursor, which
honours the same timeout.

A read must never write: connectorx runs what it is given in autocommit, so `read_frame`
accepts one query only (SELECT, WITH ... SELECT, TABLE, SHOW, EXPLAIN, DESCRIBE) and
refuses everything else before anything is sent (`NotAQuery`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pandas as pd
from sqlalchemy import Engine, Executable
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy_tidb.connect import DEFAULT_READ_TIMEOUT

from crm_helpers.analysis.child_stream import ChildStreamFailed, child_tables
from crm_helpers.analysis.frames import bound_statement, tidy_dtypes
from crm_helpers.analysis.queries import ROW_QUERIES, NotAQuery, checked_query, query_failed
from crm_helpers.config import mask_url
from crm_helpers.engines import connection_errors
from crm_helpers.errors import InvalidInput, TiDBTimeout

__all__ = ["NotAQuery", "read_frame"]

try:  # connectorx is optional at run time: without it every read takes the fallback.
    import connectorx
except ImportError:  # pragma: no cover - exercised only where connectorx is missing
    connectorx = None


def read_frame(engine: Engine, query: Executable | str, *, params: dict[str, Any] | None = None,
               chunksize: int | None = None) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Run `query` and return a DataFrame, or an iterator of frames of `chunksize` rows."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"read_frame needs a SQLAlchemy Engine, not {type(engine).__name__}: "
                           "make one with crm_helpers.engines.tidb_engine(url).")
    if chunksize is not None and (isinstance(chunksize, bool) or not isinstance(chunksize, int)
                                  or chunksize <= 0):
        raise InvalidInput(f"chunksize is {chunksize!r}: give a whole number of rows above 0 "
                           "(e.g. 100_000), or None for one frame.")
    statement = bound_statement(query, params)
    kind = checked_query(statement, engine.dialect)
    if connectorx is not None:
        # Open (or reuse) a PyMySQL connection first: a server that is down, refuses the login
        # or needs TLS is reported at once (connectorx's pool would retry for 30 s), and the
        # engine learns whether its connections are encrypted.
        with connection_errors(engine.url), engine.connect():
            pass
    # SHOW, EXPLAIN and DESCRIBE take the pandas path, in a transaction that is rolled back.
    url = _connectorx_url(engine) if kind in ROW_QUERIES else None
    if url is not None:
        sql = str(statement.compile(dialect=engine.dialect,
                                    compile_kwargs={"literal_binds": True}))
        if engine.dialect.paramstyle in ("format", "pyformat"):
            sql = sql.replace("%%", "%")  # no parameters remain, so undo PyMySQL's escaping
        if chunksize:
            return _connectorx_chunks(engine, url, sql, statement, chunksize)
        # connectorx has no read timeout of its own: it runs in a thread that is given up on
        # after the engine's read timeout, as PyMySQL's own wait would be.
        limit = Deadline(engine.url)
        try:
            table = limit.run(lambda: connectorx.read_sql(url, sql, return_type="arrow"))
            # split_blocks + self_destruct free each Arrow column as pandas takes it over.
            return _normalized(table.to_pandas(split_blocks=True, self_destruct=True),
                               "connectorx")
        except (KeyboardInterrupt, SystemExit, TiDBTimeout):
            raise
        except BaseException as exc:  # connectorx's Rust panics are BaseExceptions
            warnings.warn(f"connectorx could not run the query ({_masked(engine, exc)}); using "
                          "pandas.read_sql.", stacklevel=2)
    return _read_with_pandas(engine, statement, chunksize)


def _connectorx_chunks(engine: Engine, url: str, sql: str, statement: Executable,
                       chunksize: int) -> Iterator[pd.DataFrame]:
    """Frames of `chunksize` rows from connectorx in a child process (child_stream)."""
    limit = Deadline(engine.url)
    yielded = False
    try:
        for table in child_tables(url, sql, chunksize, limit.seconds, limit.timeout):
            yield _normalized(table.to_pandas(split_blocks=True, self_destruct=True),
                              "connectorx")
            yielded = True
    except ChildStreamFailed as exc:
        if yielded:  # rows were handed out: starting again would repeat them
            raise ChildStreamFailed(
                f"Reading the query's rows broke off after some chunks ({_masked(engine, exc)})"
                ". Check that TiDB still runs (`crm-tidb status`), then read again.") from None
        warnings.warn(f"connectorx could not run the query ({_masked(engine, exc)}); using "
                      "pandas.read_sql.", stacklevel=2)
        yield from _pandas_chunks(engine, statement, chunksize)


def _masked(engine: Engine, error: BaseException) -> str:
    """The text of a connectorx error, without the password its URL may have quoted."""
    reason = str(error)
    if engine.url.password:
        for secret in {engine.url.password, quote(engine.url.password, safe="")}:
            reason = reason.replace(secret, "***")
    return reason


# The TLS options with which connectorx verifies the server exactly as PyMySQL would.
_CONNECTORX_TLS_OPTIONS = {"ssl_ca", "ssl_verify_cert", "ssl_verify_identity", "ssl_check_hostname"}


def _connectorx_url(engine: Engine) -> str | None:
    """connectorx's URL for the engine, or None when it cannot serve it (no package, or TLS
    that connectorx cannot verify the way the engine does)."""
    url = engine.url
    if connectorx is None:
        return None
    options = {name: value for name, value in url.query.items() if name.startswith("ssl")}
    tls = ""
    if getattr(getattr(engine, "dialect", None), "uses_tls", False) or any(
            name != "ssl_disabled" for name in options):
        # connectorx checks the certificate and the host name (ssl-mode=VERIFY_IDENTITY, with
        # the CA file or the system's CAs), but has no client certificates or opt-outs:
        # anything else stays on PyMySQL's path (sqlalchemy_tidb.connect).
        if not set(options) <= _CONNECTORX_TLS_OPTIONS or any(
                options[name] not in ("true", "1", "yes", "on") for name in options
                if name != "ssl_ca"):
            return None
        tls = "?ssl-mode=VERIFY_IDENTITY"
        if options.get("ssl_ca"):
            tls += "&ssl-ca=" + quote(str(options["ssl_ca"]), safe="")
    credentials = quote(url.username or "", safe="")
    if url.password:
        credentials += ":" + quote(url.password, safe="")
    return f"mysql://{credentials}@{url.host}:{url.port or 4000}/{url.database or ''}{tls}"


class Deadline:
    """Runs connectorx calls within the read timeout of an engine's URL (TIDB_READ_TIMEOUT)."""

    def __init__(self, url: URL) -> None:
        self.url = url
        given = url.query.get("read_timeout")
        self.seconds = float(given) if isinstance(given, str) else DEFAULT_READ_TIMEOUT

    def timeout(self) -> TiDBTimeout:
        """The error for rows that did not come within the read timeout."""
        return TiDBTimeout(
            f"TiDB at {self.url.host}:{self.url.port or 4000} did not deliver the query's "
            f"rows within the read timeout (TIDB_READ_TIMEOUT, now {self.seconds:g} s): the "
            "query runs longer than that, or the server froze. Raise TIDB_READ_TIMEOUT for "
            f"longer reads. URL used: {mask_url(self.url)}")

    def run(self, call: Callable[[], Any]) -> Any:
        """`call()`'s result, or TiDBTimeout once it has run for longer than the timeout."""
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["value"] = call()
            except BaseException as exc:  # re-raised in the caller's thread below
                outcome["error"] = exc

        # A daemon thread: if TiDB never answers, it must not keep Python from exiting.
        worker = threading.Thread(target=work, name="connectorx read", daemon=True)
        worker.start()
        worker.join(self.seconds)
        if worker.is_alive():
            raise self.timeout()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]


def _read_with_pandas(engine: Engine, statement: Executable,
                      chunksize: int | None) -> pd.DataFrame | Iterator[pd.DataFrame]:
    if chunksize:
        return _pandas_chunks(engine, statement, chunksize)
    with engine.connect() as connection:
        try:
            frame = pd.read_sql(statement, connection)
        except (DBAPIError, pd.errors.DatabaseError) as exc:
            raise query_failed(exc) from None
        return _normalized(frame, "pandas.read_sql")


def _pandas_chunks(engine: Engine, statement: Executable, chunksize: int) -> Iterator[pd.DataFrame]:
    # stream_results makes PyMySQL use an unbuffered cursor, so memory stays at one chunk.
    with engine.connect().execution_options(stream_results=True) as connection:
        try:
            for chunk in pd.read_sql(statement, connection, chunksize=chunksize):
                yield _normalized(chunk, "pandas.read_sql")
        except (DBAPIError, pd.errors.DatabaseError) as exc:
            raise query_failed(exc) from None


def _normalized(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_integer_dtype(dtype) and dtype != "int64":
            frame[column] = frame[column].astype("int64")
        elif pd.api.types.is_float_dtype(dtype) and dtype != "float64":
            frame[column] = frame[column].astype("float64")
    frame = tidy_dtypes(frame)
    frame.attrs["read_path"] = path
    return frame

"""Query results into DataFrames fast: connectorx (Rust, Arrow) with pandas.read_sql as fallback.

Both paths give the same values with the same dtypes as `pandas.read_sql` (integers int64,
or uint64 for unsigned values beyond int64; floats float64, a FLOAT column's values as the
decimals TiDB prints for them; DECIMAL as float64; `gender` categorical), so callers never
need to know which one served them; the frame's `attrs["read_path"]` says which did.
connectorx carries DECIMAL with 10 decimal places only: a result with more goes the pandas
way.

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

import operator
import threading
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
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
from crm_helpers.numbers import float_texts, is_narrow_float

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
    chunksize = _rows_per_chunk(chunksize)
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
        except (KeyboardInterrupt, SystemExit, TiDBTimeout):
            raise
        except BaseException as exc:  # connectorx's Rust panics are BaseExceptions
            warnings.warn(f"connectorx could not run the query ({_masked(engine, exc)}); using "
                          "pandas.read_sql.", stacklevel=2)
        else:
            if not _decimals_cut(engine, sql, table.schema):
                # split_blocks + self_destruct free each Arrow column as pandas takes it over.
                return _normalized(table.to_pandas(split_blocks=True, self_destruct=True),
                                   "connectorx")
    return _read_with_pandas(engine, statement, chunksize)


def _rows_per_chunk(chunksize: object) -> int | None:
    """`chunksize` as an int (NumPy's integers too), or InvalidInput."""
    if chunksize is None:
        return None
    try:
        rows = operator.index(chunksize)  # int, np.int64, ...; not float or bool
    except TypeError:
        rows = 0
    if isinstance(chunksize, bool | np.bool_) or rows <= 0:
        raise InvalidInput(f"chunksize is {chunksize!r}: give a whole number of rows above 0 "
                           "(e.g. 100_000), or None for one frame.")
    return rows


#: connectorx reads DECIMAL into Arrow's decimal128 with this many decimal places, cutting
#: off the rest (and gives up, with a Rust panic, on values beyond 28 digits).
_CONNECTORX_DECIMAL_SCALE = 10


def _decimals_cut(engine: Engine, sql: str, schema: pa.Schema) -> bool:
    """Whether connectorx cut decimal places off a DECIMAL column of the result."""
    if not any(pa.types.is_decimal(field.type) for field in schema):
        return False
    # Only the result's columns are asked for: LIMIT 0 on the query runs none of it.
    probe = f"SELECT * FROM (\n{sql.rstrip().rstrip(';')}\n) AS crm_columns LIMIT 0"
    try:
        with engine.connect() as connection:
            cursor = connection.exec_driver_sql(
                probe.replace("%", "%%")).cursor
            scales = [column[5] or 0 for column in cursor.description]
    except DBAPIError:
        return True  # cannot tell: the pandas path is exact either way
    return max(scales, default=0) > _CONNECTORX_DECIMAL_SCALE


def _connectorx_chunks(engine: Engine, url: str, sql: str, statement: Executable,
                       chunksize: int) -> Iterator[pd.DataFrame]:
    """Frames of `chunksize` rows from connectorx in a child process (child_stream)."""
    limit = Deadline(engine.url)
    yielded = False
    try:
        for table in child_tables(url, sql, chunksize, limit.seconds, limit.timeout):
            if not yielded and _decimals_cut(engine, sql, table.schema):
                yield from _pandas_chunks(engine, statement, chunksize)
                return
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
    """The dtypes pandas.read_sql gives, whichever path read `frame`."""
    # By position: a result may repeat a column name (SELECT 1 AS a, 2 AS a).
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        dtype = values.dtype
        if pd.api.types.is_unsigned_integer_dtype(dtype) and len(values) and (
                values.max() > np.iinfo(np.int64).max):
            continue  # beyond int64: uint64 as read_sql gives it, never wrapped to negative
        if pd.api.types.is_integer_dtype(dtype) and dtype != "int64":
            frame.isetitem(position, values.astype("int64"))
        elif is_narrow_float(values):
            # A FLOAT column: the decimals TiDB prints for it (as read_sql gets them), not the
            # float32's binary value widened (9.99, not 9.989999771118164).
            frame.isetitem(position, float_texts(values).astype("float64"))
        elif pd.api.types.is_float_dtype(dtype) and dtype != "float64":
            frame.isetitem(position, values.astype("float64"))
        elif dtype.kind == "O" and any(isinstance(value, Decimal)
                                       for value in values.dropna().head(1)):
            # DECIMAL: read_sql's coerce_float makes float64 of it; float() rounds exactly.
            frame.isetitem(position, values.map(
                lambda value: float(value) if isinstance(value, Decimal) else value,
                na_action="ignore").astype("float64"))
    frame = tidy_dtypes(frame)
    frame.attrs["read_path"] = path
    return frame

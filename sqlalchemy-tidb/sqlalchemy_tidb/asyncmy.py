"""`tidb+asyncmy://`: the TiDB dialect over asyncmy, for `create_async_engine`.

    engine = create_async_engine("tidb+asyncmy://root@127.0.0.1:4000/test")

`TiDBDialect_asyncmy` is `TiDBDialectMixin` (every TiDB addition of `tidb://`) on
SQLAlchemy's `mysql+asyncmy` dialect. Install the driver with the `asyncio` extra.

Why asyncmy and not aiomysql (both have SQLAlchemy dialects; both install here, asyncmy from
a manylinux wheel): asyncmy takes the password as bytes, so TiDB's UTF-8 passwords work, and
has a read timeout; aiomysql encodes every password as Latin-1 and has no read timeout, so
two of the connection rules of `tidb://` could not be kept. And on SQLAlchemy's compliance
suite against TiDB v8.5.6 (test/compliance/, `--dialect mysql+asyncmy` / `mysql+aiomysql`)
asyncmy passed 1401 tests and failed 3, aiomysql passed 1397 and failed 7: aiomysql also
fails BinaryTest's three round trips and IsolationLevelTest.test_non_default_isolation_level.

The connection rules of `sqlalchemy_tidb.connect` hold here too, with these differences:

- `connect_timeout` bounds the whole opening (TCP, TLS, greeting, login), as on `tidb://`;
  `read_timeout` bounds each wait for an answer. `write_timeout` is refused: asyncio buffers
  writes and never waits on them, and asyncmy has no such timeout to honour it with.
- TLS: asyncmy asks for TLS whenever it has a context, whatever the server offers. So unless
  the URL says `ssl_disabled=true`, each new connection first reads the server's greeting on
  a separate TCP connection (no credentials are sent on it) to learn whether TLS is offered:
  one more round trip per pooled connection, so that "preferred" and "required" mean what they
  mean on `tidb://`.
- Retries: `run_transaction_async(async_engine_or_async_sessionmaker, work)` is the retry
  loop of `run_transaction` for `async def work(connection_or_session)`.
"""

from __future__ import annotations

import asyncio
import inspect
import struct
from typing import Any

from sqlalchemy.dialects.mysql.asyncmy import MySQLDialect_asyncmy

from sqlalchemy_tidb import connect
from sqlalchemy_tidb.base import TiDBDialectMixin
from sqlalchemy_tidb.exc import InvalidDialectOption

# The MySQL protocol's "server speaks TLS" capability flag (CLIENT_SSL) and greeting version.
_CLIENT_SSL = 0x800
_PROTOCOL_VERSION = 10
_CANNOT_CONNECT = 2003  # MySQL client error CR_CONN_HOST_ERROR


class TiDBDialect_asyncmy(TiDBDialectMixin, MySQLDialect_asyncmy):
    """asyncmy with TiDB's version, isolation, sequences, DDL options, VECTOR and errors."""

    driver = "asyncmy"
    supports_statement_cache = True

    @classmethod
    def driver_parameters(cls) -> set[str]:
        from asyncmy.connection import Connection

        return set(inspect.signature(Connection.__init__).parameters)

    def create_connect_args(self, url: Any, _translate_args: Any = None) -> Any:
        if url.query.get("write_timeout") not in (None, ""):
            raise InvalidDialectOption(
                "write_timeout cannot be honoured by tidb+asyncmy: asyncio buffers writes and "
                "never waits on them, and asyncmy has no write timeout. Remove it; read_timeout "
                "still bounds each wait for TiDB's answer.")
        args, opts = super().create_connect_args(url, _translate_args)
        # TLS is set up by open_connection below; the write timeout has no use here.
        for name in ("ssl", "ssl_disabled", "write_timeout"):
            opts.pop(name, None)
        return args, opts

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        tls, errors, encrypted = self._tls, self.loaded_dbapi.asyncmy.errors, []

        async def open_tidb(**params: Any) -> Any:
            connection, uses_tls = await open_connection(errors, params, tls)
            encrypted.append(uses_tls)
            return connection

        connection = self.loaded_dbapi.connect(*cargs, async_creator_fn=open_tidb, **cparams)
        #: Whether this engine's connections are encrypted.
        self.uses_tls = encrypted[0]
        return connection


async def open_connection(errors: Any, params: dict[str, Any],
                          tls: connect.TLSPolicy) -> tuple[Any, bool]:
    """An asyncmy connection opened within the connect timeout, and whether it uses TLS."""
    from asyncmy import Connection

    params = dict(params)
    wait = float(params.pop("connect_timeout", None) or connect.DEFAULT_CONNECT_TIMEOUT)
    host, port = params.get("host") or "localhost", int(params.get("port") or 3306)
    address = f"{host}:{port}"
    opened: list[Any] = []

    async def opening() -> bool:
        use_tls = False
        if tls.mode != "off":
            use_tls = await _offers_tls(errors, host, port, address)
            if tls.mode == "required" and not use_tls:
                raise errors.OperationalError(connect.SSL_CONNECTION_ERROR, "no TLS offered")
        connection = Connection(**params, connect_timeout=wait,
                                ssl=tls.context if use_tls else None)
        opened.append(connection)
        await connection.connect()
        return use_tls

    try:
        uses_tls = await asyncio.wait_for(opening(), wait)
    except TimeoutError:
        greeted = bool(opened) and getattr(opened[0], "server_version", None) is not None
        timed_out = errors.OperationalError(2013, "Lost connection to MySQL server (timed out)")
        raise connect.opening_failure(errors, timed_out, address, wait, tls, greeted) from None
    except errors.InternalError as exc:  # e.g. "Packet sequence number wrong"
        raise connect.not_mysql(errors, address, str(exc)) from None
    except errors.OperationalError as exc:
        greeted = bool(opened) and getattr(opened[0], "server_version", None) is not None
        raise connect.opening_failure(errors, exc, address, wait, tls, greeted) from exc.__cause__
    except UnicodeError as exc:
        if not opened:  # asyncio could not even encode the host name
            raise connect.invalid_host(errors, address, exc) from None
        raise connect.not_mysql(errors, address, f"{type(exc).__name__}: {exc}") from None
    except (struct.error, IndexError, ValueError) as exc:
        raise connect.not_mysql(errors, address, f"{type(exc).__name__}: {exc}") from None
    return opened[0], uses_tls


async def _offers_tls(errors: Any, host: str, port: int, address: str) -> bool:
    """Whether the server's greeting offers TLS; read on a connection of its own, then closed."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise errors.OperationalError(
            _CANNOT_CONNECT, f"Can't connect to MySQL server on {host!r} ({exc})") from None
    try:
        header = await reader.readexactly(4)
        packet = await reader.readexactly(int.from_bytes(header[:3], "little"))
    except (asyncio.IncompleteReadError, OSError):
        raise connect.not_mysql(errors, address, "it closed the connection before the MySQL "
                                "greeting") from None
    finally:
        writer.close()
    if packet[:1] == b"\xff":  # an error instead of a greeting, e.g. "host is not allowed"
        code = int.from_bytes(packet[1:3], "little")
        raise errors.OperationalError(code, packet[3:].decode("utf-8", "replace"))
    if packet[0] != _PROTOCOL_VERSION or b"\0" not in packet[1:]:
        raise connect.not_mysql(errors, address, "its greeting is not MySQL's")
    # version string, NUL, thread id (4), first part of the salt (8), filler (1), capabilities
    capabilities = packet.index(b"\0", 1) + 1 + 4 + 8 + 1
    return bool(int.from_bytes(packet[capabilities:capabilities + 2], "little") & _CLIENT_SSL)


dialect = TiDBDialect_asyncmy

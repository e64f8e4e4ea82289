"""How every `tidb://` connection reaches TiDB: bounded waits, verified TLS, any password.

`TiDBDialect.create_connect_args` calls `connect_options()` once per engine and
`TiDBDialect.connect` calls `open_connection()` for each new connection. Everything comes from
the URL (and `connect_args`); no environment variable or file is read.

- Timeouts. Opening a connection (TCP, TLS, the MySQL greeting and login) must finish within
  `connect_timeout` seconds (default 10). After that, one statement may take up to
  `read_timeout` seconds (default 300) before its first answer, and `write_timeout` (default:
  the read timeout) to be sent: a server that froze is reported instead of waited on forever.
- TLS. When TLS is on, the server is verified: its certificate against `ssl_ca` or, without
  one, the system's CAs, and its host name. TLS is on when the URL asks for it (any `ssl_*`
  option) or, without any, when the server offers it. `ssl_disabled=true` turns it off;
  `ssl_verify_cert=false` or `ssl_verify_identity=false`, given explicitly, are honoured with
  a warning.
- Passwords are sent as UTF-8, as TiDB hashes them (PyMySQL alone would send Latin-1).
- Failures while opening a connection come out as PyMySQL errors with a code that says what
  happened: 2012 for "this is not a MySQL server", 2026 for TLS.
"""

from __future__ import annotations

import ssl
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy_tidb.exc import InvalidDialectOption

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0

# MySQL client error codes (PyMySQL's constants.CR) that opening a connection reports with.
HANDSHAKE_ERROR = 2012
SSL_CONNECTION_ERROR = 2026

#: The TLS options a `tidb://` URL may carry (PyMySQL's names, plus SQLAlchemy's
#: `ssl_check_hostname`, which means the same as `ssl_verify_identity`).
TLS_OPTIONS = ("ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_verify_cert",
               "ssl_verify_identity", "ssl_check_hostname", "ssl_disabled")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class TLSPolicy:
    """Whether a connection uses TLS, and the context that verifies the server."""

    #: "off": plain TCP; "required": TLS or fail; "preferred": TLS when the server offers it.
    mode: str
    context: ssl.SSLContext | None
    #: What the certificate is checked against, for error messages.
    trust: str = "the system's CA certificates"


#: The URL options that are numbers of seconds.
TIMEOUT_OPTIONS = ("connect_timeout", "read_timeout", "write_timeout")


def timeouts_from(options: Mapping[str, Any]) -> dict[str, float]:
    """The URL's timeout options as seconds; InvalidDialectOption for one that is not."""
    return {name: _seconds(options[name], name) for name in TIMEOUT_OPTIONS
            if options.get(name) not in (None, "")}


def tls_policy(options: Mapping[str, Any]) -> TLSPolicy:
    """The TLS policy of a URL's `ssl_*` options; InvalidDialectOption for senseless ones."""
    unknown = sorted(name for name in options
                     if name.startswith("ssl") and name not in TLS_OPTIONS)
    if unknown:
        raise InvalidDialectOption(
            f"Unknown TLS option {', '.join(unknown)} in the URL. The options understood are "
            f"{', '.join(TLS_OPTIONS)}; for a verified connection give ssl_ca=PATH, or "
            "ssl_verify_cert=true to use the system's CA certificates.")
    given = {name: options[name] for name in TLS_OPTIONS if options.get(name) not in (None, "")}
    if not given:
        return TLSPolicy("preferred", verified_context())
    if _flag(given, "ssl_disabled", False):
        if len(given) > 1:
            raise InvalidDialectOption(
                "The URL both turns TLS off (ssl_disabled) and configures it "
                f"({', '.join(sorted(given))}); remove one or the other.")
        return TLSPolicy("off", None)
    verify_cert = _flag(given, "ssl_verify_cert", True)
    verify_identity = _flag(given, "ssl_verify_identity",
                            _flag(given, "ssl_check_hostname", verify_cert))
    if verify_identity and not verify_cert:
        raise InvalidDialectOption(
            "The URL asks to check the server's host name (ssl_verify_identity) but not its "
            "certificate (ssl_verify_cert=false); a name is only worth checking on a verified "
            "certificate. Remove ssl_verify_cert=false.")
    ca, capath = given.get("ssl_ca"), given.get("ssl_capath")
    for name, path in (("ssl_ca", ca), ("ssl_capath", capath), ("ssl_cert", given.get("ssl_cert")),
                       ("ssl_key", given.get("ssl_key"))):
        if path is not None and not Path(str(path)).exists():
            raise InvalidDialectOption(f"{name} is {str(path)!r}, which does not exist: "
                              "point it at the PEM file of the certificate.")
    context = verified_context(cafile=ca, capath=capath)
    if given.get("ssl_cert"):
        try:
            context.load_cert_chain(str(given["ssl_cert"]), keyfile=given.get("ssl_key"))
        except (ssl.SSLError, OSError) as exc:
            raise InvalidDialectOption(
                f"The client certificate ssl_cert/ssl_key cannot be used ({exc}); give a PEM "
                "certificate and its private key.") from None
    if not verify_cert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        warnings.warn("TLS without verification (ssl_verify_cert=false in the URL): the "
                      "connection is encrypted but the server is not checked.", stacklevel=2)
    elif not verify_identity:
        context.check_hostname = False
        warnings.warn("TLS without a host name check (ssl_verify_identity=false in the URL): "
                      "any server with a certificate from that CA is accepted.", stacklevel=2)
    trust = f"the CA in {ca}" if ca else (f"the CAs in {capath}" if capath else
                                         "the system's CA certificates")
    return TLSPolicy("required", context, trust)


def verified_context(cafile: str | None = None, capath: str | None = None) -> ssl.SSLContext:
    """A TLS context that checks the certificate (against `cafile`, else system CAs) and name."""
    try:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
    except (ssl.SSLError, OSError) as exc:
        raise InvalidDialectOption(
            f"The CA certificate {cafile or capath!r} cannot be read ({exc}); ssl_ca must be "
            "a PEM file of CA certificates.") from None
    return context  # CERT_REQUIRED and check_hostname are create_default_context's defaults


def connect_options(opts: dict[str, Any], tls: TLSPolicy,
                    timeouts: Mapping[str, float]) -> dict[str, Any]:
    """PyMySQL's connect() arguments: `opts` plus the timeouts and the TLS context."""
    opts = {**opts, **timeouts}
    opts.setdefault("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    opts.setdefault("read_timeout", DEFAULT_READ_TIMEOUT)
    opts.setdefault("write_timeout", opts["read_timeout"])
    password = opts.get("password")
    if isinstance(password, str):
        # TiDB hashes the password's UTF-8 bytes; PyMySQL would encode a str as Latin-1, so
        # 'pässwort' would be refused and '日本' could not be sent at all.
        opts["password"] = password.encode("utf-8")
    if tls.mode == "off":
        opts["ssl_disabled"] = True
    elif tls.mode == "required":
        opts["ssl"] = tls.context
    return opts


def open_connection(dbapi: Any, params: dict[str, Any], tls: TLSPolicy) -> Any:
    """A PyMySQL connection opened within the connect timeout, then given its read timeouts."""
    params = dict(params)
    read_timeout = params.pop("read_timeout", None)
    write_timeout = params.pop("write_timeout", None)
    wait = params.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT
    connection = dbapi.connect(**params, read_timeout=wait, write_timeout=wait,
                               defer_connect=True)
    # PyMySQL would encrypt without checking the server when it offers TLS ("preferred"
    # mode, attribute `ctx`); give it a context that verifies instead.
    if (tls.mode == "preferred" and not any(name.startswith("ssl") for name in params)
            and getattr(connection, "ssl", False) and hasattr(connection, "ctx")):
        connection.ctx = tls.context
    host = f"{params.get('host')}:{params.get('port') or 4000}"
    try:
        connection.connect()
    except dbapi.err.OperationalError as exc:
        greeted = getattr(connection, "server_version", None) is not None
        raise opening_failure(dbapi.err, exc, host, wait, tls, greeted) from None
    except dbapi.err.InternalError as exc:  # e.g. "Packet sequence number wrong"
        raise not_mysql(dbapi.err, host, str(exc)) from None
    except UnicodeError as exc:
        if getattr(connection, "_sock", None) is None:  # no socket: the name itself is bad
            raise invalid_host(dbapi.err, host, exc) from None
        raise not_mysql(dbapi.err, host, f"{type(exc).__name__}: {exc}") from None
    except (struct.error, IndexError, ValueError) as exc:
        raise not_mysql(dbapi.err, host, f"{type(exc).__name__}: {exc}") from None
    # PyMySQL reads the attributes on each read and write; they have no public setter.
    connection._read_timeout = read_timeout
    connection._write_timeout = write_timeout
    return connection


def uses_tls(connection: Any) -> bool:
    """Whether an open PyMySQL connection is encrypted."""
    return isinstance(getattr(connection, "_sock", None), ssl.SSLSocket)


def opening_failure(errors: Any, exc: Exception, host: str, wait: float, tls: TLSPolicy,
                    greeted: bool) -> Exception:
    """The driver's OperationalError that says why opening a connection failed.

    `errors` is the driver's module of error classes (PyMySQL's `err`, asyncmy's `errors`);
    `greeted` says whether the server had sent its MySQL greeting.
    """
    code = exc.args[0] if exc.args else None
    # PyMySQL keeps the socket's error as original_exception, asyncmy as the cause.
    cause = getattr(exc, "original_exception", None) or exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or str(cause)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            what = (f"its certificate is not issued for the host name {host.rsplit(':', 1)[0]!r} "
                    f"({reason})")
        else:
            what = f"its certificate is not signed by {tls.trust} ({reason})"
        return errors.OperationalError(SSL_CONNECTION_ERROR, f"TLS verification failed: {what}")
    if isinstance(cause, ssl.SSLError):
        return errors.OperationalError(SSL_CONNECTION_ERROR, f"TLS handshake failed ({cause})")
    if code == SSL_CONNECTION_ERROR:
        return errors.OperationalError(SSL_CONNECTION_ERROR,
                                       "TLS was asked for but the server does not offer it")
    if code == 2013 and not greeted:  # nothing, or not enough, came back
        if "timed out" in str(exc):
            return not_mysql(errors, host, f"it sent no MySQL greeting within {wait:g} s")
        return not_mysql(errors, host, "it closed the connection before the MySQL greeting")
    if code == 2013 and "timed out" in str(exc):
        return errors.OperationalError(
            2013, f"The server at {host} greeted but did not finish opening the connection "
            f"within {wait:g} s (timed out; TIDB_CONNECT_TIMEOUT)")
    return exc


#: MySQL's client error for a connection that could not be made (CR_CONN_HOST_ERROR).
CANNOT_CONNECT = 2003


def invalid_host(errors: Any, host: str, error: UnicodeError) -> Exception:
    """The driver's OperationalError 2003 for a host name that cannot be looked up at all
    (an empty label such as 'a..b', a label over 63 characters): IDNA refuses to encode it."""
    return errors.OperationalError(
        CANNOT_CONNECT, f"Can't connect to MySQL server on {host!r} (the host name is not "
        f"valid: {error})")


def not_mysql(errors: Any, host: str, detail: str) -> Exception:
    """The driver's OperationalError 2012: the server at `host` does not speak MySQL."""
    return errors.OperationalError(
        HANDSHAKE_ERROR, f"{host} accepted the connection but did not act as a MySQL server: "
        f"{detail}")


def _flag(options: Mapping[str, Any], name: str, default: bool) -> bool:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidDialectOption(f"{name} is {str(value)!r} in the URL; use true or false.")


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = -1.0
    if isinstance(value, bool) or not 0 < seconds < 31536000:  # PyMySQL refuses a year or more
        raise InvalidDialectOption(f"{name} is {str(value)!r} in the URL; it must be a number of "
                                   "seconds above 0 and below a year, such as 30.")
    return seconds

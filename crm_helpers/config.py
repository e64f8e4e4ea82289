"""Connection settings from the environment or `.env`, and the URLs built from them.

The variable names are those of PingCAP's official Python quickstart (`TIDB_HOST`,
`TIDB_PORT`, `TIDB_USER`, `TIDB_PASSWORD`, `TIDB_DB_NAME`, `CA_PATH`), so an existing
`.env` works unchanged. `TIDB_URL` takes precedence over them. When neither `TIDB_URL`
nor `TIDB_HOST` is set, the project starts and uses its own local TiDB.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from dotenv.variables import Variable, parse_variables
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy_tidb.connect import timeouts_from, tls_policy
from sqlalchemy_tidb.exc import InvalidDialectOption

from crm_helpers.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"

LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
DEFAULT_STATUS_PORT = 10080
DEFAULT_USER = "root"
DEFAULT_DATABASE = "test_sqlalchemy"
DEFAULT_APP_USER = "crm_app"
#: Databases TiDB keeps for itself: never granted to the app user, never used as the analysis
#: database, never checked as the project's after a crash (any case: compare `name.lower()`).
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema",
                              "metrics_schema", "sys", "lightning_task_info"})

# Database and user names go into SQL as identifiers: plain ones only (dots for TiDB Cloud's
# "<prefix>.user" names). crm_helpers.lesson.accounts checks its names with plain_name() too.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")

#: The engine plugin that gives the lesson's error advice (crm_helpers.lesson.plugin).
LESSON_PLUGIN = "crm_lesson"

# Drivers whose URLs we accept in TIDB_URL; all are served by the tidb dialect over PyMySQL.
_ACCEPTED_SCHEMES = {"tidb", "tidb+pymysql", "mysql", "mysql+pymysql"}


@dataclass(frozen=True)
class Settings:
    """Where TiDB is and who to log in as; the password never appears in repr()."""

    host: str = LOCAL_HOST
    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER
    password: str = field(default="", repr=False)
    database: str = DEFAULT_DATABASE
    ca_path: str | None = None
    status_port: int = DEFAULT_STATUS_PORT
    external: bool = False
    app_user: str = DEFAULT_APP_USER
    app_password: str | None = field(default=None, repr=False)
    #: The query options of TIDB_URL other than `charset` (TLS and timeout options), kept as given.
    options: tuple[tuple[str, str], ...] = ()
    #: TIDB_CONNECT_TIMEOUT and TIDB_READ_TIMEOUT in seconds (None: the dialect's 10 and 300).
    connect_timeout: float | None = None
    read_timeout: float | None = None

    def url(self, database: str | None = None, *, user: str | None = None,
            password: str | None = None) -> URL:
        """A `tidb://` URL for `database` (None: no default database), as `user` if given.

        It names the `crm_lesson` engine plugin, so engines made from it give the lesson's
        advice on errors (crm_helpers.lesson.plugin).
        """
        query = {"charset": "utf8mb4"}
        for name, seconds in (("connect_timeout", self.connect_timeout),
                              ("read_timeout", self.read_timeout)):
            if seconds is not None:
                query[name] = f"{seconds:g}"
        query.update(self.options)  # timeouts in TIDB_URL win over TIDB_*_TIMEOUT
        if self.ca_path:
            # TLS is on, and the tidb dialect verifies the certificate and the host name.
            query["ssl_ca"] = self.ca_path
        query["plugin"] = LESSON_PLUGIN
        return URL.create(
            "tidb",
            username=user if user is not None else self.user,
            password=password if user is not None else self.password,
            host=self.host,
            port=self.port,
            database=database,
            query=query,
        )

    def app_url(self, database: str | None = None) -> URL:
        """The URL of the tutorial's application user, in `database` (default: the tutorial's)."""
        if not self.app_password:
            raise ConfigError(
                "No password for the application user yet: set CRM_APP_PASSWORD, or run "
                "notebook 02 (or crm_helpers.lesson.accounts.ensure_app_user) to create one."
            )
        return self.url(database or self.database, user=self.app_user,
                        password=self.app_password)


def mask_url(url: URL | str) -> str:
    """The URL as text with its password replaced by ***, safe to print or log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        raise ConfigError(f"{type(url).__name__} value is not a URL: give a sqlalchemy URL or "
                          "text like tidb://USER:PASSWORD@HOST:PORT/DATABASE.") from None


def load_settings(environ: Mapping[str, str] | None = None,
                  env_file: Path | None = DEFAULT_ENV_FILE) -> Settings:
    """Settings from `environ` (default: os.environ) over the values in `env_file`."""
    if environ is not None and not isinstance(environ, Mapping):
        raise ConfigError(f"load_settings() takes a mapping of variables, not a "
                          f"{type(environ).__name__}: give a dict, or leave environ out to "
                          "use os.environ.")
    given = os.environ if environ is None else environ
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(_env_file_values(Path(env_file), given))
    values.update(given)
    get = {k: v for k, v in values.items() if v not in (None, "")}.get
    if get("TIDB_DB_NAME") is not None:
        plain_name(get("TIDB_DB_NAME"), "TIDB_DB_NAME")
    if get("CRM_APP_USER") is not None:
        user_name(get("CRM_APP_USER"), "CRM_APP_USER")

    ca_path = get("CA_PATH")
    if ca_path and not Path(ca_path).is_file():
        raise ConfigError(f"CA_PATH is {ca_path!r}, which is not a file: point it at the "
                          "CA certificate of your TiDB (TiDB Cloud shows where to get it).")
    common = {
        "ca_path": ca_path,
        "status_port": _port(get("TIDB_STATUS_PORT"), DEFAULT_STATUS_PORT, "TIDB_STATUS_PORT"),
        "app_user": get("CRM_APP_USER") or DEFAULT_APP_USER,
        "app_password": get("CRM_APP_PASSWORD"),
        "connect_timeout": _seconds(get("TIDB_CONNECT_TIMEOUT"), "TIDB_CONNECT_TIMEOUT"),
        "read_timeout": _seconds(get("TIDB_READ_TIMEOUT"), "TIDB_READ_TIMEOUT"),
    }

    raw_url = get("TIDB_URL")
    if raw_url:
        return _settings_from_url(raw_url, common)
    return Settings(
        host=_host(get("TIDB_HOST")) or LOCAL_HOST,
        port=_port(get("TIDB_PORT"), DEFAULT_PORT, "TIDB_PORT"),
        user=get("TIDB_USER") or DEFAULT_USER,
        password=get("TIDB_PASSWORD") or "",
        database=get("TIDB_DB_NAME") or DEFAULT_DATABASE,
        external=bool(get("TIDB_HOST")),
        **common,
    )


#: The variables load_settings reads.
VARIABLES = ("TIDB_URL", "TIDB_HOST", "TIDB_PORT", "TIDB_USER", "TIDB_PASSWORD", "TIDB_DB_NAME",
             "CA_PATH", "TIDB_STATUS_PORT", "CRM_APP_USER", "CRM_APP_PASSWORD",
             "TIDB_CONNECT_TIMEOUT", "TIDB_READ_TIMEOUT")
_ASSIGNED_NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def _env_file_values(path: Path, environ: Mapping[str, object]) -> dict[str, str | None]:
    """The variables of a `.env` file; ConfigError for what python-dotenv would drop or blank."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark (Windows editors) is not a name
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (line {line} has bytes UTF-8 cannot "
                          "read): save it as UTF-8 in your editor.") from None
    known = {*environ, *os.environ}  # python-dotenv fills ${NAME} from os.environ too
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            string = binding.original.string
            statement = string.lstrip()
            line += string[:len(string) - len(statement)].count("\n")  # blank lines before it
            named = _ASSIGNED_NAME.match(statement)
            what = f"the value of {named.group(1)}" if named else "it"
            raise ConfigError(f"{path}, line {line}: python-dotenv cannot read {what} (a quote "
                              "that is not closed?), so it would be left out. Close the quote, "
                              "or put the value in single quotes if it holds a quote.")
        if binding.key is None:
            continue
        if binding.key in VARIABLES and binding.key not in environ and binding.value:
            unset = [part.name for part in parse_variables(binding.value)
                     if isinstance(part, Variable) and part.default is None
                     and part.name not in known]
            if unset:
                name = unset[0]
                raise ConfigError(f"{path}, line {line}: {binding.key} refers to ${{{name}}}, "
                                  "which is not set, so it would be empty: set that variable, "
                                  f"write the value itself, or give a default (${{{name}:-...}}).")
        known.add(binding.key)
    return dotenv_values(stream=io.StringIO(text))


def _url_problem(raw_url: str) -> str | None:
    """What makes `raw_url` unreadable as a TiDB URL, without repeating its password."""
    if raw_url != raw_url.strip():
        return "TIDB_URL begins or ends with a space or line break: remove it"
    if any(character.isspace() for character in raw_url):
        return ("TIDB_URL contains a space or line break: remove it (in a password, "
                "percent-encode it, see below)")
    if "://" not in raw_url:
        return "TIDB_URL is not a URL (no '://')"
    rest, _, query = raw_url.split("://", 1)[1].partition("?")
    at = rest.rfind("@")
    if "#" in raw_url and "#" not in rest[:max(at, 0)]:
        return ("TIDB_URL holds a '#', where a URL ends (everything after it would be dropped): "
                "remove it, or write a '#' of the password or an option as %23")
    if rest.count("@") > 1 or "/" in rest[:max(at, 0)] or "#" in raw_url or (
            at < 0 and "@" in query):
        return ("the user name or password in TIDB_URL holds a character that URLs reserve "
                "(@ : / ? # % or a space)")
    if "@" in query:
        # SQLAlchemy takes the last '@' of the whole URL for the end of the password.
        return ("TIDB_URL has an '@' in its options (such as init_command), where it would be "
                "read as the end of the password: write that '@' as %40")
    # '%41' is read as 'A', so an unencoded '%' is only detectable when no two hex digits
    # follow it; then it is refused rather than kept as a literal by chance.
    if _BARE_PERCENT.search(rest[:max(at, 0)]):
        return ("the user name or password in TIDB_URL holds a '%' that is not followed by two "
                "hex digits: a '%' of the password itself must be written %25 (URLs read "
                "'%XX' as one encoded character, e.g. '%41' as 'A')")
    try:
        unquote_to_bytes(raw_url).decode("utf-8")
    except UnicodeDecodeError:
        # '%E4' (Latin-1's 'ä') would be read as the replacement character, silently.
        return ("TIDB_URL holds percent-encoded bytes that are not UTF-8 (such as %E4 for 'ä' "
                "in Latin-1): encode the text's UTF-8 bytes, e.g. 'ä' as %C3%A4")
    return None


# A '%' that does not start a percent-encoded byte.
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


_ENCODE_ADVICE = (" Special characters in the user name and password must be percent-encoded: "
                  "build the URL with urllib.parse.quote_plus(password) in its place "
                  "(e.g. 'p@ss:w/rd' becomes 'p%40ss%3Aw%2Frd'). Expected the form "
                  "tidb://USER:PASSWORD@HOST:PORT/DATABASE (mysql:// works too).")


def _settings_from_url(raw_url: str, common: dict) -> Settings:
    problem = _url_problem(raw_url)
    if problem:
        raise ConfigError(problem + "." + _ENCODE_ADVICE)
    try:
        url = make_url(raw_url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            "TIDB_URL is not a URL SQLAlchemy can read: check that the port is a number and "
            "that nothing but the port follows the host's ':'." + _ENCODE_ADVICE
        ) from None
    if url.drivername not in _ACCEPTED_SCHEMES:
        raise ConfigError(
            f"TIDB_URL starts with {url.drivername}://, which is not TiDB's. "
            "Use tidb://USER:PASSWORD@HOST:PORT/DATABASE (mysql:// works too)."
        )
    if not url.host:
        raise ConfigError(f"TIDB_URL ({mask_url(url)}) names no host: add one after the '@'.")
    repeated = sorted(name for name, value in url.query.items() if not isinstance(value, str))
    if repeated:
        raise ConfigError(f"TIDB_URL ({mask_url(url)}) gives {', '.join(repeated)} more than "
                          "once, so which one counts would be a guess: give each option once.")
    ca_path = common.pop("ca_path") or url.query.get("ssl_ca")
    options = tuple((name, value) for name, value in url.query.items()
                    if name not in ("charset", "ssl_ca", "plugin") and isinstance(value, str))
    _check_url_options(url, {name: value for name, value in url.query.items()
                             if isinstance(value, str)})
    return Settings(
        host=url.host,
        port=DEFAULT_PORT if url.port is None else check_port(url.port, "The port in TIDB_URL"),
        user=url.username or DEFAULT_USER,
        password=url.password or "",
        database=plain_name(url.database, "The database in TIDB_URL") if url.database
        else DEFAULT_DATABASE,
        ca_path=ca_path if isinstance(ca_path, str) else None,
        external=True,
        options=options,
        **common,
    )


def _check_url_options(url: URL, options: dict[str, str]) -> None:
    """Refuse TIDB_URL's timeout and TLS options now, as the dialect would on first connect."""
    try:
        timeouts_from(options)
        with warnings.catch_warnings():  # the dialect warns about opt-outs when it connects
            warnings.simplefilter("ignore")
            tls_policy({name: value for name, value in options.items()
                        if name.startswith("ssl")})
    except InvalidDialectOption as exc:
        raise ConfigError(f"TIDB_URL ({mask_url(url)}): {exc}") from None


def check_port(value: object, name: str) -> int:
    """`value` as a TCP port number (1 to 65535), or ConfigError naming `name`."""
    text = str(value).strip()
    if (isinstance(value, bool) or not (text.isascii() and text.isdigit())
            or not 0 < int(text) < 65536):
        raise ConfigError(f"{name} is {str(value)!r}; it must be a port number from 1 to 65535.")
    return int(text)


def plain_name(value: object, what: str) -> str:
    """`value` if it can stand unquoted in SQL as a user or database name; else ConfigError."""
    # fullmatch: with match and `$`, a name ending in a newline would pass.
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise ConfigError(f"{what} is {value!r}, which cannot be used as a name in SQL: give "
                          "1 to 64 letters, digits, '_' or '.' (other characters would have to "
                          "be quoted inside SQL).")
    return value


#: TiDB (like MySQL 5.7+) refuses longer user names (error 1470).
MAX_USER_NAME = 32


def user_name(value: object, what: str) -> str:
    """`value` if it can be a TiDB user name in SQL (plain_name, at most 32 characters)."""
    name = plain_name(value, what)
    if len(name) > MAX_USER_NAME:
        raise ConfigError(f"{what} is {name!r}, {len(name)} characters: TiDB's user names are "
                          f"at most {MAX_USER_NAME}; give a shorter one.")
    return name


def _host(value: str | None) -> str | None:
    """TIDB_HOST if it is a host name or address alone; ConfigError otherwise."""
    if value is None:
        return None
    if any(character.isspace() for character in value):
        return _bad_host(value, "holds a space or line break: remove it")
    if any(mark in value for mark in ("://", "/", "@", "?", "#")):
        return _bad_host(value, "is not a host name alone: give the host name (such as "
                         "gateway01.us-west-2.prod.aws.tidbcloud.com or 127.0.0.1) without "
                         "scheme, user or path, or put a whole URL in TIDB_URL instead")
    if value.count(":") == 1:
        return _bad_host(value, "looks like HOST:PORT: give the host name alone in TIDB_HOST "
                         "and the port in TIDB_PORT")
    return value


def _bad_host(value: str, problem: str) -> str:
    raise ConfigError(f"TIDB_HOST is {value!r}, which {problem}.")


def sql_identifier(name: str, *, formatted: bool = False) -> str:
    """`name` backquoted for SQL (a backquote in it doubled), as MySQL and TiDB read it.

    formatted=True also doubles '%', for SQL that goes through the driver's %-formatting
    (`cursor.execute(sql, args)`, `exec_driver_sql`).
    """
    quoted = "`" + str(name).replace("`", "``") + "`"
    return quoted.replace("%", "%%") if formatted else quoted


def _port(value: str | None, default: int, name: str) -> int:
    return default if value is None else check_port(value, name)


def _seconds(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 31536000:  # PyMySQL refuses a year or more
        raise ConfigError(f"{name} is {value!r}; it must be a number of seconds above 0.")
    return seconds

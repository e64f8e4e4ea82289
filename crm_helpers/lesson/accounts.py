"""The tutorial's database and its application user: created as root, password kept in `.env`."""

from __future__ import annotations

import os
import secrets
import stat
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
from dotenv import dotenv_values, set_key
from pymysql import MySQLError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from crm_helpers.config import (
    DEFAULT_ENV_FILE,
    SYSTEM_DATABASES,
    Settings,
    load_settings,
    plain_name,
    user_name,
)
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import ConfigError, CrmError
from crm_helpers.language import localized
from crm_helpers.local.server import ensure_tidb

#: Fewer characters than this make a password easy to guess; app_password() makes 24.
MIN_PASSWORD_CHARS = 8


def _usable_password(password: object) -> str:
    """`password` if an account can safely be given it; ConfigError otherwise (never shown)."""
    advice = ("Give a password of at least {n} characters as text (check CRM_APP_PASSWORD in "
              ".env or the environment if it comes from there), or let "
              "crm_helpers.lesson.accounts.app_password() make one and keep it in .env.")
    if not isinstance(password, str):
        raise ConfigError(f"The password is a {type(password).__name__}, not text. "
                          + advice.format(n=MIN_PASSWORD_CHARS))
    if len(password.strip()) < MIN_PASSWORD_CHARS:
        raise ConfigError("The password is empty or shorter than "
                          f"{MIN_PASSWORD_CHARS} characters: an account reachable from any "
                          "host needs a real one. " + advice.format(n=MIN_PASSWORD_CHARS))
    if password != password.strip() or any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise ConfigError("The password starts or ends with spaces or holds control "
                          "characters, which .env files and terminals lose. "
                          + advice.format(n=MIN_PASSWORD_CHARS))
    return password


def app_password(env_file: Path = DEFAULT_ENV_FILE) -> str:
    """CRM_APP_PASSWORD from the environment or `env_file`; generated and saved there if absent."""
    env_file = _env_path(env_file)
    existing = os.environ.get("CRM_APP_PASSWORD") or (
        dotenv_values(env_file).get("CRM_APP_PASSWORD") if env_file.is_file() else None)
    if existing:
        return existing
    password = secrets.token_urlsafe(18)
    env_file.touch(mode=0o600, exist_ok=True)
    set_key(str(env_file), "CRM_APP_PASSWORD", password, quote_mode="never")
    _owner_only(env_file)
    return password


def _env_path(env_file: object) -> Path:
    """`env_file` as a Path to a file that is there or can be made; ConfigError otherwise."""
    if not isinstance(env_file, str | os.PathLike):
        raise ConfigError(f"env_file is {env_file!r}: give the path of a .env file.")
    path = Path(env_file)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a .env file: give the file's path, "
                          f"e.g. {path / '.env'}.")
    if not path.parent.is_dir():
        raise ConfigError(f"The folder of {path} does not exist: create it first, or give "
                          "the path of a .env file in an existing folder.")
    return path


def _owner_only(env_file: Path) -> None:
    """Make `env_file` (which now holds a password) readable by its owner only, and say so."""
    mode = stat.S_IMODE(env_file.stat().st_mode)
    if mode & 0o077:
        env_file.chmod(0o600)
        warnings.warn(f"{env_file} holds a password now and was readable by others (mode "
                      f"{mode:o}); it was made readable by you only (mode 600).", stacklevel=3)


def _engine(admin: object) -> Engine:
    if not isinstance(admin, Engine):
        raise ConfigError(f"Expected a SQLAlchemy Engine (e.g. tidb_engine(settings.url())), "
                          f"not {type(admin).__name__}.")
    return admin


def create_database(admin: Engine, database: str) -> None:
    """CREATE DATABASE if it does not exist yet."""
    name = plain_name(database, "The database name")
    with _engine(admin).begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{name}`")


class AccountError(CrmError):
    """TiDB refused to create or grant the application user."""


def ensure_app_user(admin: Engine, user: str, password: str, database: str) -> None:
    """Create `user` (or reset its password) and grant it ALL on `database` and nothing else."""
    account = f"'{user_name(user, 'The user name')}'@'%%'"  # %% : PyMySQL formats the text with %
    grant = f"GRANT ALL ON `{plain_name(database, 'The database name')}`.* TO {account}"
    if user.lower() == "root" or user == getattr(_engine(admin).url, "username", None):
        raise ConfigError(f"ensure_app_user would change the password of {user!r}, the "
                          "administrator itself: give the application user's own name "
                          "(CRM_APP_USER, default 'crm_app').")
    if database.lower() in SYSTEM_DATABASES:
        raise ConfigError(f"{database!r} is one of TiDB's own schemas; granting ALL on it "
                          "would give the application user the whole server. Give the "
                          "tutorial's database (TIDB_DB_NAME, default 'test_sqlalchemy').")
    password = _usable_password(password)
    with _engine(admin).begin() as connection:
        # The password goes through the driver's own cursor: SQLAlchemy's echo, logging and
        # error messages show the parameters of what it executes, and must never see this.
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s", (password,))
            cursor.execute(f"ALTER USER {account} IDENTIFIED BY %s", (password,))
            cursor.execute(grant, ())
        except MySQLError as exc:
            code, message = ((*exc.args, "", ""))[:2]
            raise AccountError(
                f"TiDB refused to set up the account {user!r} ({code}: "
                f"{str(message).replace(password, '***')}). The admin login must be allowed to "
                "CREATE USER and GRANT (root is, on the local TiDB).") from None
        finally:
            cursor.close()


def grants_frame(admin: Engine, user: str) -> pd.DataFrame:
    """SHOW GRANTS for `user`@'%' as a one-column DataFrame."""
    name = user_name(user, "The user name")
    with _engine(admin).connect() as connection:
        known = connection.execute(text("SELECT COUNT(*) FROM mysql.user WHERE user = :user "
                                        "AND host = '%'"), {"user": name}).scalar_one()
        if not known:
            raise ConfigError(f"There is no user {name!r}@'%': create it first with "
                              "ensure_app_user (notebook 02 does).")
        grants = connection.execute(text(f"SHOW GRANTS FOR '{name}'@'%'")).scalars().all()
    return pd.DataFrame({localized("grant", "権限"): grants})


def privilege_probe_frame(engine: Engine, statements: list[str]) -> pd.DataFrame:
    """Try each statement in a transaction of its own: one row each, allowed or TiDB's answer."""
    _engine(engine)
    if not isinstance(statements, list | tuple) or not all(
            isinstance(statement, str) for statement in statements):
        raise ConfigError(f"statements must be a list of SQL texts such as ['SELECT 1'], not "
                          f"{statements!r:.60}.")
    blank = next((number for number, statement in enumerate(statements, 1)
                  if not statement.strip()), None)
    if blank is not None:
        raise ConfigError(f"Statement {blank} of {len(statements)} is empty, and TiDB would "
                          "report nothing for it: give SQL text for each, or drop it.")
    rows = []
    for statement in statements:
        try:
            with engine.begin() as connection:
                # no_parameters: sent as written, so a '%' is not taken for a placeholder.
                connection.exec_driver_sql(statement, execution_options={"no_parameters": True})
            rows.append((statement, True, "OK"))
        except DBAPIError as exc:
            code, message = exc.orig.args[:2] if len(exc.orig.args) >= 2 else ("", exc.orig)
            rows.append((statement, False, f"{code}: {message}"))
    return pd.DataFrame(rows, columns=[localized("statement", "文"),
                                       localized("allowed", "許可"),
                                       localized("TiDB says", "TiDB の応答")])


def prepare_tutorial_database(settings: Settings | None = None,
                              env_file: Path = DEFAULT_ENV_FILE) -> Settings:
    """Everything the CRM notebooks need: a TiDB, the database, the app user and its password."""
    if settings is not None and not isinstance(settings, Settings):
        raise ConfigError(f"settings must be a Settings (crm_helpers.config.load_settings()), "
                          f"not {type(settings).__name__}.")
    settings = ensure_tidb(settings or load_settings(env_file=env_file))
    settings = replace(settings, app_password=settings.app_password or app_password(env_file))
    admin = tidb_engine(settings.url())
    try:
        create_database(admin, settings.database)
        ensure_app_user(admin, settings.app_user, settings.app_password, settings.database)
    finally:
        admin.dispose()
    return settings

"""The tutorial's database and its application user: created as root, password kept in `.env`."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import replace
from pathlib import Path

import pandas as pd
from dotenv import dotenv_values, set_key
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from crm_helpers.config import DEFAULT_ENV_FILE, Settings, load_settings
from crm_helpers.db import tidb_engine
from crm_helpers.errors import ConfigError
from crm_helpers.server import ensure_tidb

# User and database names go into SQL as identifiers, so only plain ones are accepted
# (dots allowed for TiDB Cloud's "<prefix>.user" names).
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.]{1,64}$")


def _plain(name: str, what: str) -> str:
    if not _PLAIN_NAME.match(name):
        raise ConfigError(f"{what} {name!r} may only use letters, digits, '_' and '.'.")
    return name


def app_password(env_file: Path = DEFAULT_ENV_FILE) -> str:
    """CRM_APP_PASSWORD from the environment or `env_file`; generated and saved there if absent."""
    existing = os.environ.get("CRM_APP_PASSWORD") or (
        dotenv_values(env_file).get("CRM_APP_PASSWORD") if env_file.is_file() else None)
    if existing:
        return existing
    password = secrets.token_urlsafe(18)
    env_file.touch(mode=0o600, exist_ok=True)
    set_key(str(env_file), "CRM_APP_PASSWORD", password, quote_mode="never")
    return password


def create_database(admin: Engine, database: str) -> None:
    """CREATE DATABASE if it does not exist yet."""
    with admin.begin() as connection:
        name = _plain(database, "Database")
        connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{name}`")


def ensure_app_user(admin: Engine, user: str, password: str, database: str) -> None:
    """Create `user` (or reset its password) and grant it ALL on `database` and nothing else."""
    account = f"'{_plain(user, 'User name')}'@'%'"
    with admin.begin() as connection:
        # The password travels as a bound parameter, never inside logged SQL text.
        connection.execute(text(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY :password"),
                           {"password": password})
        connection.execute(text(f"ALTER USER {account} IDENTIFIED BY :password"),
                           {"password": password})
        # text() (unlike exec_driver_sql) escapes the '%' host for PyMySQL's formatting.
        connection.execute(text(f"GRANT ALL ON `{_plain(database, 'Database')}`.* TO {account}"))


def grants_frame(admin: Engine, user: str) -> pd.DataFrame:
    """SHOW GRANTS for `user`@'%' as a one-column DataFrame."""
    with admin.connect() as connection:
        grants = connection.execute(
            text(f"SHOW GRANTS FOR '{_plain(user, 'User name')}'@'%'")).scalars().all()
    return pd.DataFrame({"grant": grants})


def privilege_probe_frame(engine: Engine, statements: list[str]) -> pd.DataFrame:
    """Try each statement in a transaction of its own: one row each, allowed or TiDB's answer."""
    rows = []
    for statement in statements:
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(statement)
            rows.append((statement, True, "OK"))
        except DBAPIError as exc:
            code, message = exc.orig.args[:2] if len(exc.orig.args) >= 2 else ("", exc.orig)
            rows.append((statement, False, f"{code}: {message}"))
    return pd.DataFrame(rows, columns=["statement", "allowed", "TiDB says"])


def prepare_tutorial_database(settings: Settings | None = None,
                              env_file: Path = DEFAULT_ENV_FILE) -> Settings:
    """Everything the CRM notebooks need: a TiDB, the database, the app user and its password."""
    settings = ensure_tidb(settings or load_settings(env_file=env_file))
    settings = replace(settings, app_password=settings.app_password or app_password(env_file))
    admin = tidb_engine(settings.url())
    try:
        create_database(admin, settings.database)
        ensure_app_user(admin, settings.app_user, settings.app_password, settings.database)
    finally:
        admin.dispose()
    return settings

"""No password is logged, shown or left readable by others; unusable passwords are refused."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import traceback
from dataclasses import replace

import pytest
from sqlalchemy import Engine, text

from crm_helpers.config import load_settings
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import ConfigError, TiDBAuthError
from crm_helpers.lesson.accounts import AccountError, app_password, ensure_app_user
from crm_helpers.local.server import local_tidb


@pytest.fixture
def user_name(tidb_settings):
    name = f"crm_secret_{secrets.token_hex(3)}"
    yield name
    admin = tidb_engine(tidb_settings.url())
    with admin.begin() as connection:
        connection.execute(text(f"DROP USER IF EXISTS '{name}'@'%'"))
    admin.dispose()


def account_exists(tidb_settings, name: str) -> bool:
    admin = tidb_engine(tidb_settings.url())
    with admin.connect() as connection:
        found = connection.execute(text("SELECT COUNT(*) FROM mysql.user WHERE user = :u"),
                                   {"u": name}).scalar_one()
    admin.dispose()
    return bool(found)


def app_user_engine(tidb_settings, database: str, name: str, password: str) -> Engine:
    """Create the application user `name` as the admin; an engine logged in as that user."""
    admin = tidb_engine(tidb_settings.url())
    try:
        ensure_app_user(admin, name, password, database)
    finally:
        admin.dispose()
    return tidb_engine(tidb_settings.url(database, user=name, password=password))


def test_creating_the_app_user_with_echo_logs_no_password(tidb_settings, test_database,
                                                          user_name, caplog):
    password = "Echo-Leak-" + secrets.token_hex(8)
    admin = tidb_engine(tidb_settings.url(), echo=True)
    try:
        with caplog.at_level(logging.DEBUG, logger="sqlalchemy"):
            ensure_app_user(admin, user_name, password, test_database)
    finally:
        admin.dispose()
    assert caplog.records, "echo=True logged nothing: the test would prove nothing"
    assert not [record.getMessage() for record in caplog.records
                if password in record.getMessage() or password in str(record.args)]
    app = tidb_engine(tidb_settings.url(test_database, user=user_name, password=password))
    app.dispose()  # the password was set, and works


def test_tidb_logs_do_not_hold_the_password(tidb_settings, test_database, user_name):
    if tidb_settings.external:
        pytest.skip("only the project's local TiDB's logs can be read")
    password = "Log-Leak-" + secrets.token_hex(8)
    admin = tidb_engine(tidb_settings.url())
    ensure_app_user(admin, user_name, password, test_database)
    with pytest.raises(ConfigError):
        ensure_app_user(admin, user_name + "`x", password, test_database)
    admin.dispose()
    home = local_tidb(tidb_settings).home
    logs = [path for path in home.rglob("*.log") if path.is_file()]
    assert logs, f"no TiDB log under {home}"
    for path in logs:
        assert password not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(("password", "message"), [
    ("", "empty or shorter than 8"),
    ("   ", "empty or shorter than 8"),
    ("Xy7-q", "empty or shorter than 8"),
    (None, "NoneType, not text"),
    (12345678, "int, not text"),
    (b"bytes-password", "bytes, not text"),
    (" padded-password ", "spaces"),
    ("new\nline-password", "control characters"),
])
def test_unusable_passwords_are_refused_and_create_nothing(tidb_settings, test_database,
                                                           user_name, password, message):
    admin = tidb_engine(tidb_settings.url())
    try:
        with pytest.raises(ConfigError, match=message) as caught:
            ensure_app_user(admin, user_name, password, test_database)
    finally:
        admin.dispose()
    assert "app_password()" in str(caught.value)
    if isinstance(password, str) and password.strip():
        assert password.strip() not in str(caught.value)
    assert not account_exists(tidb_settings, user_name)


def test_tidb_refusals_keep_the_password_out_of_the_message(tidb_settings, test_database,
                                                            user_name):
    # An admin without CREATE USER: the application user itself.
    weak_password = "Weak-" + secrets.token_hex(8)
    weak = app_user_engine(tidb_settings, test_database, user_name, weak_password)
    password = "Refused-" + secrets.token_hex(8)
    try:
        with pytest.raises(AccountError, match="CREATE USER") as caught:
            ensure_app_user(weak, user_name + "_2", password, test_database)
    finally:
        weak.dispose()
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert password not in shown and weak_password not in shown
    assert not account_exists(tidb_settings, user_name + "_2")


def test_an_existing_env_file_is_made_owner_only_when_a_password_goes_in(tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv("CRM_APP_PASSWORD", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("TIDB_PORT=4000\n")
    env_file.chmod(0o644)
    with pytest.warns(UserWarning, match="readable by you only"):
        password = app_password(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"CRM_APP_PASSWORD={password}" in env_file.read_text()


def test_a_new_env_file_is_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_APP_PASSWORD", raising=False)
    old = os.umask(0)
    try:
        app_password(tmp_path / ".env")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_settings_and_urls_never_show_passwords(tmp_path):
    password = "Repr-Leak-" + secrets.token_hex(6)
    settings = load_settings({"TIDB_URL": f"tidb://root:{password}@db.example:4000/x",
                              "CRM_APP_PASSWORD": password + "-app"}, env_file=None)
    shown = [repr(settings), str(settings), repr(settings.url()), str(settings.url()),
             repr(settings.app_url()), str(settings.app_url())]
    assert not [text for text in shown if password in text]


def test_auth_errors_and_their_tracebacks_never_show_passwords(tidb_settings):
    password = "Wrong-" + secrets.token_hex(8)
    wrong = replace(tidb_settings, password=password)
    with pytest.raises(TiDBAuthError) as caught:
        tidb_engine(wrong.url())
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert password not in shown


def test_connectorx_failures_never_show_the_password(tidb_settings, test_database, user_name,
                                                     monkeypatch):
    from crm_helpers.analysis import reading

    password = "Cx-Leak-" + secrets.token_hex(8)
    app = app_user_engine(tidb_settings, test_database, user_name, password)

    def failing(url, *args, **kwargs):
        raise RuntimeError(f"cannot connect to {url}")

    monkeypatch.setattr(reading.connectorx, "read_sql", failing)
    try:
        with pytest.warns(UserWarning) as warned:
            reading.read_frame(app, "SELECT 1 AS one")
    finally:
        app.dispose()
    shown = " ".join(str(warning.message) for warning in warned)
    assert "cannot connect to mysql://" in shown and password not in shown

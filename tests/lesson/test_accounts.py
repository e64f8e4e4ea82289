"""The application user: created as root, allowed in its database only, password in .env."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from crm_helpers.engines import tidb_engine
from crm_helpers.errors import ConfigError, TiDBAuthError
from crm_helpers.lesson.accounts import (
    app_password,
    create_database,
    ensure_app_user,
    grants_frame,
    privilege_probe_frame,
)


@pytest.fixture
def app_user(tidb_settings, test_database):
    admin = tidb_engine(tidb_settings.url())
    user = f"crm_test_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    ensure_app_user(admin, user, password, test_database)
    yield user, password
    with admin.begin() as connection:
        connection.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
    admin.dispose()


def test_app_user_works_in_its_database_only(tidb_settings, test_database, app_user):
    user, password = app_user
    engine = tidb_engine(tidb_settings.url(test_database, user=user, password=password))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (id INT PRIMARY KEY)")
        connection.exec_driver_sql("DROP TABLE probe")
    with engine.connect() as connection, pytest.raises(Exception, match="denied"):
        connection.execute(text("SELECT * FROM mysql.user"))
    engine.dispose()
    admin = tidb_engine(tidb_settings.url())
    grants = grants_frame(admin, user)["grant"].tolist()
    admin.dispose()
    assert grants == [f"GRANT USAGE ON *.* TO '{user}'@'%'",
                      f"GRANT ALL PRIVILEGES ON `{test_database}`.* TO '{user}'@'%'"]


def test_wrong_app_password_is_an_auth_error_without_the_password(tidb_settings, test_database,
                                                                    app_user):
    user, _ = app_user
    with pytest.raises(TiDBAuthError) as caught:
        tidb_engine(tidb_settings.url(test_database, user=user, password="Nope-Nope-77"))
    assert "Nope-Nope-77" not in str(caught.value)


def test_password_is_generated_once_and_kept_in_env_file(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_APP_PASSWORD", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("TIDB_PORT=4000\n")
    first = app_password(env_file)
    assert len(first) >= 20
    assert app_password(env_file) == first
    assert f"CRM_APP_PASSWORD={first}" in env_file.read_text()
    assert "TIDB_PORT=4000" in env_file.read_text()


def test_odd_names_are_refused_before_reaching_sql(tidb_settings):
    admin = tidb_engine(tidb_settings.url())
    with pytest.raises(ConfigError, match="letters, digits"):
        create_database(admin, "x`; DROP DATABASE mysql; --")
    admin.dispose()


def test_probed_statements_are_sent_as_written(tidb_settings, test_database, app_user):
    user, password = app_user
    engine = tidb_engine(tidb_settings.url(test_database, user=user, password=password))
    statements = ["SELECT '100%' AS p", "SELECT 'a%%s %s %(x)s' LIKE 'a%' AS q",
                  "SELECT * FROM mysql.user WHERE user LIKE 'r%'"]
    probe = privilege_probe_frame(engine, statements)
    engine.dispose()
    assert probe["statement"].tolist() == statements
    assert probe["allowed"].tolist() == [True, True, False]
    assert "denied" in probe["TiDB says"].iloc[2]

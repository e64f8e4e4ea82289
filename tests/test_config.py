"""Settings, URLs and masking: no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_helpers.config import load_settings, mask_url, plain_name
from crm_helpers.errors import ConfigError


def settings_from(environ: dict[str, str], env_file: Path | None = None):
    return load_settings(environ=environ, env_file=env_file)


def test_defaults_are_the_local_tidb():
    settings = settings_from({})
    assert not settings.external
    assert (settings.host, settings.port, settings.user, settings.database) == (
        "127.0.0.1", 4000, "root", "test_sqlalchemy")
    assert settings.url("test_sqlalchemy").render_as_string(hide_password=False) == (
        "tidb://root:@127.0.0.1:4000/test_sqlalchemy?charset=utf8mb4&plugin=crm_lesson")


def test_quickstart_variables_point_at_an_external_tidb():
    settings = settings_from({"TIDB_HOST": "tidb.example", "TIDB_PORT": "4001",
                              "TIDB_USER": "app", "TIDB_PASSWORD": "s3cret!",
                              "TIDB_DB_NAME": "crm"})
    assert settings.external
    url = settings.url(settings.database)
    assert (url.host, url.port, url.username, url.password, url.database) == (
        "tidb.example", 4001, "app", "s3cret!", "crm")


def test_tidb_url_wins_over_the_separate_variables():
    settings = settings_from({"TIDB_URL": "mysql://u:pw@db.example:4123/shop",
                              "TIDB_HOST": "ignored.example"})
    assert (settings.host, settings.port, settings.user, settings.database) == (
        "db.example", 4123, "u", "shop")
    assert settings.url().drivername == "tidb"


def test_env_file_is_read_and_environment_overrides_it(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TIDB_HOST=from-file.example\nTIDB_USER=file_user\n")
    settings = settings_from({"TIDB_USER": "env_user"}, env_file)
    assert settings.host == "from-file.example"
    assert settings.user == "env_user"


def test_ca_path_turns_on_tls(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = settings_from({"TIDB_HOST": "gateway.example", "CA_PATH": str(ca)})
    assert settings.url().query["ssl_ca"] == str(ca)
    assert "ssl_ca" not in settings_from({"TIDB_HOST": "gateway.example"}).url().query


def test_missing_ca_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"CA_PATH.*not a file"):
        settings_from({"CA_PATH": str(tmp_path / "nope.pem")})


def test_masked_url_and_repr_hide_the_password():
    settings = settings_from({"TIDB_URL": "tidb://app:Very-Secret-42@db.example:4000/crm"})
    shown = mask_url(settings.url(settings.database))
    assert "Very-Secret-42" not in shown
    assert shown == "tidb://app:***@db.example:4000/crm?charset=utf8mb4&plugin=crm_lesson"
    assert "Very-Secret-42" not in repr(settings)


@pytest.mark.parametrize("bad", ["0", "70000", "four-thousand"])
def test_bad_port_names_the_variable(bad):
    with pytest.raises(ConfigError, match=f"TIDB_PORT is '{bad}'"):
        settings_from({"TIDB_PORT": bad})


def test_foreign_url_scheme_is_refused_without_echoing_the_password():
    with pytest.raises(ConfigError, match="postgresql") as caught:
        settings_from({"TIDB_URL": "postgresql://u:Hidden-Pw@db.example/crm"})
    assert "Hidden-Pw" not in str(caught.value)


def test_app_url_without_password_says_how_to_get_one():
    with pytest.raises(ConfigError, match="CRM_APP_PASSWORD"):
        settings_from({}).app_url()



@pytest.mark.parametrize("variable", ["TIDB_DB_NAME", "CRM_APP_USER"])
@pytest.mark.parametrize("name", ["crm\n", "crm\nDROP", "crm ", "x" * 65])
def test_names_that_are_not_plain_are_refused(variable, name):
    with pytest.raises(ConfigError, match="letters, digits") as caught:
        load_settings(environ={variable: name}, env_file=None)
    assert variable in str(caught.value)


def test_plain_names_pass_as_they_are():
    assert plain_name("crm_app", "CRM_APP_USER") == "crm_app"
    assert plain_name("2abc.crm_app", "CRM_APP_USER") == "2abc.crm_app"  # TiDB Cloud's prefix
    with pytest.raises(ConfigError, match="is 42"):
        plain_name(42, "The user name")

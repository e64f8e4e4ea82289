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


@pytest.mark.parametrize(("content", "wrong"), [
    (b"TIDB_PORT=${UNSET_VARIABLE_ZZ}\n", r"line 1: TIDB_PORT refers to \$\{UNSET_VARIABLE_ZZ\}"),
    (b"TIDB_HOST=db.example\nTIDB_PASSWORD=${NO_SUCH_SECRET_ZZ}\n", "line 2: TIDB_PASSWORD"),
    (b"TIDB_USER=r\xe9my\n", "not UTF-8.*line 1"),
    (b"A=1\n\nTIDB_PASSWORD=\"abc\nTIDB_PORT=4100\n", "line 3.*TIDB_PASSWORD.*quote"),
    (b"TIDB_PASSWORD='abc\n", "TIDB_PASSWORD.*quote"),
])
def test_env_files_that_would_lose_a_value_are_refused(tmp_path, content, wrong):
    env_file = tmp_path / ".env"
    env_file.write_bytes(content)
    with pytest.raises(ConfigError, match=wrong) as caught:
        settings_from({}, env_file)
    assert "abc" not in str(caught.value).replace(str(env_file), "")  # no password shown


def test_env_file_references_to_set_variables_and_defaults_still_work(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BASE=4100\nTIDB_PORT=${BASE}\nTIDB_STATUS_PORT=${NOPE_ZZ:-10100}\n",
                        encoding="utf-8-sig")  # with a byte order mark, as Notepad saves
    settings = settings_from({}, env_file)
    assert (settings.port, settings.status_port) == (4100, 10100)
    # A variable set in the environment wins, so its .env line does not matter.
    env_file.write_text("TIDB_PORT=${NOPE_ZZ}\n")
    assert settings_from({"TIDB_PORT": "4200"}, env_file).port == 4200


@pytest.mark.parametrize(("url", "wrong"), [
    (" tidb://root:Hidden-Pw@127.0.0.1:4000/db", "begins or ends"),
    ("tidb://root:Hidden-Pw@127.0.0.1:4000/db\n", "begins or ends"),
    ("tidb://root:Hid@den-Pw@127.0.0.1:4000/db", "percent-encoded"),
    ("tidb://root:Hid@den:Pw@127.0.0.1:4000/db", "percent-encoded"),
    ("tidb://root:Hid/den-Pw@127.0.0.1:4000/db", "percent-encoded"),
    ("tidb://root:Hid?den-Pw@127.0.0.1:4000/db", "percent-encoded"),
    ("tidb://root:Hid#den-Pw@127.0.0.1:4000/db", "percent-encoded"),
    ("tidb://root:Hidden-Pw@127.0.0.1:40x0/db", "port is a number"),
    ("tidb://root:Hid%zen-Pw@127.0.0.1:4000/db", "'%' that is not followed by two hex.*%25"),
    ("tidb://root:Hidden-Pw%@127.0.0.1:4000/db", "'%' that is not followed by two hex.*%25"),
    ("tidb://root:Hidden-Pw%4@127.0.0.1:4000/db", "'%' that is not followed by two hex.*%25"),
    ("tidb://ro%ot:Hidden-Pw@127.0.0.1:4000/db", "'%' that is not followed by two hex.*%25"),
])
def test_url_mistakes_are_named_without_the_password(url, wrong):
    with pytest.raises(ConfigError, match=wrong) as caught:
        settings_from({"TIDB_URL": url})
    assert "quote_plus" in str(caught.value)
    assert "Hid" not in str(caught.value).replace("quote_plus", "")


def test_a_percent_encoded_password_is_decoded_once():
    # '%25' is a literal '%', '%41' an 'A': the rule the refusal above points to.
    settings = settings_from({"TIDB_URL": "tidb://root:a%25b%41@127.0.0.1:4000/db"})
    assert settings.password == "a%bA"


def test_env_file_references_to_the_process_environment_are_set(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TEST_PORT_ZZ", "4300")
    env_file = tmp_path / ".env"
    env_file.write_text("TIDB_PORT=${CRM_TEST_PORT_ZZ}\n")
    assert settings_from({}, env_file).port == 4300

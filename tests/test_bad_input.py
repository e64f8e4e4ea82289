"""Bad input at settings (.env, URLs, TIDB_* variables) and engines: a clear error, nothing written.

One of the bad-input sweep's modules; what counts as clear, and the table of counts, are in
tests/bad_input.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from crm_helpers import config, engines
from tests.bad_input import (
    Case,
    case_param,
    env_file_call,
    functions_swept,
    runner_call,
    swept,
)
from tests.conftest import free_port

#: What this module's cases give bad input to (the first part of each case's id).
SWEPT = {
    "load_settings", "mask_url", "app_url", "tidb_engine", "check_connection",
}

CASES: list[Case] = [
    # config.py (settings from the environment, URLs)
    *[Case(f"load_settings-{name}={value}", runner_call(config.load_settings, {name: value},
                                                        env_file=None), wrong, owner=owner)
      for name, value, wrong, owner in [
          ("TIDB_PORT", "0", "1 to 65535", None),
          ("TIDB_PORT", "70000", "1 to 65535", None),
          ("TIDB_PORT", "abc", "1 to 65535", None),
          ("TIDB_PORT", "-1", "1 to 65535", None),
          ("TIDB_PORT", "4000.5", "1 to 65535", None),
          ("TIDB_STATUS_PORT", "99999", "1 to 65535", None),
          ("TIDB_URL", "tidb://root@127.0.0.1:0/x", "port", None),
          ("TIDB_URL", "tidb://root@127.0.0.1:70000/x", "port", None),
          ("TIDB_URL", "http://example.org/x", "http", None),
          ("TIDB_URL", "not a url", "URL", None),
          ("TIDB_URL", "tidb://root@/x", "host", None),
          ("CA_PATH", "/no/such/ca.pem", "not a file", None),
          ("TIDB_DB_NAME", "bad`name", "bad`name", None),
          ("CRM_APP_USER", "bad'user", "bad'user", None),
      ]],
    Case("load_settings-text-environ", runner_call(config.load_settings, "TIDB_PORT=1"),
         "environ|mapping|dict"),
    Case("mask_url-None", runner_call(config.mask_url, None), "URL"),
    Case("mask_url-garbage", runner_call(config.mask_url, "garbage"), "URL"),
    Case("app_url-no-password", lambda ctx: replace(ctx.settings, app_password=None).app_url(),
         "No password"),

    # engines.py
    Case("tidb_engine-None", runner_call(engines.tidb_engine, None), "URL"),
    Case("tidb_engine-garbage", runner_call(engines.tidb_engine, "garbage"), "URL"),
    Case("tidb_engine-closed-port", lambda ctx: engines.tidb_engine(
        f"tidb://root@127.0.0.1:{free_port()}/x"), "Cannot reach"),
    Case("tidb_engine-no-database", lambda ctx: engines.tidb_engine(
        ctx.settings.url("no_such_database_zz")), "no_such_database_zz"),
    Case("check_connection-None", runner_call(engines.check_connection, None), "URL|Engine"),

    # settings: .env files and URLs
    *[Case(f"load_settings-env-{label}", env_file_call(content), wrong)
      for label, content, wrong in [
          ("unset-reference", b"TIDB_PORT=${UNSET_VARIABLE_ZZ}\n", "TIDB_PORT.*UNSET_VARIABLE"),
          ("unset-in-url", b"TIDB_URL=tidb://root@${NO_HOST_ZZ}:4000/x\n", "line 1: TIDB_URL"),
          ("latin-1", b"TIDB_USER=r\xe9my\n", "not UTF-8"),
          ("unclosed-double-quote", b'TIDB_PASSWORD="abc\n', "TIDB_PASSWORD.*quote"),
          ("unclosed-single-quote", b"X=1\nTIDB_HOST='db.example\n", "line 2.*TIDB_HOST"),
          ("utf16", "TIDB_PORT=4100\n".encode("utf-16"), "not UTF-8"),
      ]],
    *[Case(f"load_settings-TIDB_URL-{label}", runner_call(config.load_settings,
                                                          {"TIDB_URL": url}, env_file=None), wrong)
      for label, url, wrong in [
          ("leading-space", " tidb://root@127.0.0.1:4000/x", "space"),
          ("trailing-newline", "tidb://root@127.0.0.1:4000/x\n", "line break"),
          ("at-in-password", "tidb://root:p@ss@127.0.0.1:4000/x", "percent-encoded"),
          ("at-and-colon", "tidb://root:p@ss:w@127.0.0.1:4000/x", "percent-encoded"),
          ("slash-in-password", "tidb://root:p/w@127.0.0.1:4000/x", "percent-encoded"),
          ("hash-in-password", "tidb://root:p#w@127.0.0.1:4000/x", "percent-encoded"),
          ("space-in-password", "tidb://root:p w@127.0.0.1:4000/x", "space"),
          ("port-letters", "tidb://root@127.0.0.1:4o00/x", "port"),
      ]],
    *[Case(f"load_settings-{name}={value!r}", runner_call(config.load_settings, {name: value},
                                                          env_file=None), wrong)
      for name, value, wrong in [
          ("TIDB_PORT", "\uff14\uff10\uff10\uff10", "1 to 65535"),  # full-width digits
          ("TIDB_READ_TIMEOUT", "nan", "seconds"),
          ("TIDB_CONNECT_TIMEOUT", "inf", "seconds"),
          ("TIDB_DB_NAME", "crm\u200b", "letters, digits"),
      ]],
]


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_bad_input_gets_a_clear_error_and_writes_nothing(bad_input_ctx, case):
    assert swept(case, bad_input_ctx) == "clear"


def test_the_sweep_reaches_every_function_here():
    assert functions_swept(CASES) >= SWEPT



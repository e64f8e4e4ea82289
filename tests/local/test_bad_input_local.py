"""Bad input at the local TiDB's functions and the crm-tidb command: a clear error, nothing written.

One of the bad-input sweep's modules; what counts as clear, and the table of counts, are in
tests/bad_input.py.
"""

from __future__ import annotations

import pytest

from crm_helpers.local import server
from tests.bad_input import (
    Case,
    case_param,
    cli_call,
    functions_swept,
    runner_call,
    swept,
)

#: What this module's cases give bad input to (the first part of each case's id).
SWEPT = {
    "ensure_tidb", "local_tidb", "cli",
}

CASES: list[Case] = [
    # local/server.py
    Case("ensure_tidb-text", runner_call(server.ensure_tidb, "settings"), "Settings"),
    Case("local_tidb-text", runner_call(server.local_tidb, "settings"), "Settings"),

    # local/cli.py: crm-tidb with bad arguments and environments (own ports and home: see ctx)
    Case("cli-up-port-0", cli_call("up", "--port", "0"), "port", cli=True),
    Case("cli-up-port-70000", cli_call("up", "--port", "70000"), "port", cli=True),
    Case("cli-up-port-negative", cli_call("up", "--port", "-5"), "port", cli=True),
    Case("cli-up-port-text", cli_call("up", "--port", "abc"), "port", cli=True),
    Case("cli-up-status-port-0", cli_call("up", "--status-port", "0"), "port", cli=True),
    Case("cli-no-command", cli_call(), "required|command", cli=True),
    Case("cli-unknown-command", cli_call("frobnicate"), "invalid choice", cli=True),
    Case("cli-url-bad-port-env", cli_call("url"), "TIDB_PORT", cli=True,
         env={"TIDB_PORT": "abc"}),
    Case("cli-status-http-url", cli_call("status"), "http", cli=True,
         env={"TIDB_URL": "http://example.org/x"}),
    Case("cli-down-port-70000-env", cli_call("down"), "TIDB_PORT", cli=True,
         env={"TIDB_PORT": "70000"}),
    Case("cli-up-unreachable-url", cli_call("up"), "Cannot reach", cli=True,
         env={"TIDB_URL": "tidb://root@127.0.0.1:{free}/x"}),
]


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_bad_input_gets_a_clear_error_and_writes_nothing(bad_input_ctx, case):
    assert swept(case, bad_input_ctx) == "clear"


def test_the_sweep_reaches_every_function_here():
    assert functions_swept(CASES) >= SWEPT



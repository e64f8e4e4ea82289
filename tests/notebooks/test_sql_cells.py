"""JupySQL's SQL cells: DataFrames from TiDB, no password shown, nothing sent off the machine."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

from sqlalchemy import text

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.engines import tidb_engine

# Runs in a fresh interpreter: an audit hook records every address the process connects to
# or looks up, while an IPython shell uses JupySQL the way the notebooks do.
SESSION = r"""
import json, sys
contacts = []
def audit(event, args):
    if event == "socket.connect":
        contacts.append(str(args[1]))
    elif event == "socket.getaddrinfo":
        contacts.append(str(args[0]))
sys.addaudithook(audit)

import crm_helpers
from IPython.testing.globalipapp import start_ipython
from sqlalchemy import create_engine

ip = start_ipython()
engine = create_engine(sys.argv[1])
ip.push({"engine": engine})
ip.run_line_magic("load_ext", "sql")
ip.run_line_magic("sql", "engine")
frame = ip.run_cell_magic("sql", "", "SELECT 1 + 1 AS two, DATABASE() AS db")
listed = ip.run_line_magic("sql", "--connections")
print("\nRESULT" + json.dumps({"type": type(frame).__name__, "two": int(frame["two"][0]),
                               "connections": str(listed), "contacts": contacts}))
"""


def run_session(url: str) -> tuple[dict, str]:
    env = {**os.environ, "PLOOMBER_STATS_ENABLED": "", "PLOOMBER_VERSION_CHECK_DISABLED": ""}
    done = subprocess.run([sys.executable, "-c", SESSION, url], cwd=PROJECT_ROOT / "notebooks",
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    printed, _, result = done.stdout.rpartition("\nRESULT")
    return json.loads(result.splitlines()[0]), printed + done.stderr


def test_sql_cells_give_dataframes_and_stay_on_this_machine(tidb_settings, test_database):
    url = tidb_settings.url(test_database).set(password=tidb_settings.password)
    result, printed = run_session(url.render_as_string(hide_password=False))
    assert result["type"] == "DataFrame" and result["two"] == 2
    assert "Loading configurations from" in printed  # pyproject.toml's [tool.jupysql.SqlMagic]
    assert result["contacts"], "the audit hook saw no connection at all"
    for contact in result["contacts"]:
        assert tidb_settings.host in contact, f"JupySQL contacted {contact}"


def test_sql_cells_never_print_the_password(tidb_settings, test_database):
    password = "pw-for-jupysql-7q"
    user = f"crm_jupysql_probe_{secrets.token_hex(3)}"  # never an account of the user's
    admin = tidb_engine(tidb_settings.url())
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY "
                                f"'{password}'"))
        connection.execute(text(f"GRANT ALL ON `{test_database}`.* TO '{user}'@'%'"))
    try:
        url = tidb_settings.url(test_database).set(username=user, password=password)
        result, printed = run_session(url.render_as_string(hide_password=False))
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()
    assert result["two"] == 2
    assert user in result["connections"]  # the connection is listed ...
    assert password not in result["connections"] + printed  # ... with its password masked

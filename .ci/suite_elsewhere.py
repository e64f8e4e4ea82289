"""The whole suite again, the way a user on a busy machine runs it (`make test-elsewhere`).

Another tidb-server (the decoy) runs on the default ports, 4000 and 10080, in a folder of its
own, and the suite runs with TIDB_PORT, TIDB_STATUS_PORT and TIDB_LOCAL_HOME pointing
elsewhere. Afterwards the decoy must still run, as the same process, with the same databases:
the suite may only use and stop what it started itself.

With `--external` (`make test-external`) the suite runs against "the user's own TiDB"
instead: this script starts it on TIDB_PORT/TIDB_STATUS_PORT, gives root a password, adds a
database and a user of the user's own, and the suite gets only `TIDB_URL` (and an empty
TIDB_LOCAL_HOME), so it cannot know the project started that server. Afterwards that server
must hold the same users and databases as before, plus only what the notebooks are documented
to create there (README, "Using a TiDB you already have"), and the user's own table unchanged.

DECOY_PORT / DECOY_STATUS_PORT move the decoy (say, when 4000 is taken on a workstation);
TIDB_PORT / TIDB_STATUS_PORT (default 4102 / 10182) choose the suite's ports. Extra arguments
go to pytest.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

from crm_helpers.analysis.schema import ANALYSIS_DATABASE
from crm_helpers.config import DEFAULT_APP_USER, DEFAULT_DATABASE, PROJECT_ROOT
from crm_helpers.local.server import LocalTiDB, local_tidb_status, start_local_tidb, stop_local_tidb

#: What the notebooks create on the TiDB they are given, and keep (README documents it).
NOTEBOOK_DATABASES = {DEFAULT_DATABASE, ANALYSIS_DATABASE, "crm_features"}
NOTEBOOK_USERS = {f"{DEFAULT_APP_USER}@%"}

#: The user's own things on their TiDB, which the suite must leave exactly as they are.
USERS_DATABASE = "users_own_data"
USERS_ACCOUNT = "someone_else"


def run_sql(local: LocalTiDB, password: str, statement: str,
            args: tuple = ()) -> list[tuple]:
    """The rows of one statement on `local` as root."""
    connection = pymysql.connect(host=local.host, port=local.port, user="root",
                                 password=password, connect_timeout=10, read_timeout=30,
                                 autocommit=True)
    with connection, connection.cursor() as cursor:
        cursor.execute(statement, args or None)
        return list(cursor.fetchall())


def databases(local: LocalTiDB, password: str = "") -> set[str]:
    """The databases on `local`."""
    return {name for (name,) in run_sql(local, password, "SHOW DATABASES")}


def server_contents(local: LocalTiDB, password: str) -> dict[str, object]:
    """Databases, accounts and the user's own rows on `local`: what the suite must not change."""
    return {
        "databases": databases(local, password),
        "users": {f"{user}@{host}" for user, host
                  in run_sql(local, password, "SELECT user, host FROM mysql.user")},
        "own rows": run_sql(local, password, f"SELECT * FROM {USERS_DATABASE}.notes ORDER BY id"),
    }


def make_users_tidb(local: LocalTiDB) -> str:
    """Start `local` as "the user's own TiDB": root has a password, and data of its own."""
    start_local_tidb(local)
    password = secrets.token_urlsafe(16)
    for statement in (f"CREATE DATABASE {USERS_DATABASE}",
                      f"CREATE TABLE {USERS_DATABASE}.notes (id INT PRIMARY KEY, note TEXT)",
                      f"INSERT INTO {USERS_DATABASE}.notes VALUES (1, 'the user''s own row')",
                      f"CREATE USER '{USERS_ACCOUNT}'@'%' IDENTIFIED BY "
                      f"'{secrets.token_urlsafe(12)}'"):
        run_sql(local, "", statement)
    run_sql(local, "", "ALTER USER 'root'@'%%' IDENTIFIED BY %s", (password,))
    return password


def check_users_tidb(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """What the suite changed on the user's TiDB beyond what the notebooks document."""
    problems = []
    for what, documented in (("databases", NOTEBOOK_DATABASES), ("users", NOTEBOOK_USERS)):
        added = after[what] - before[what] - documented  # type: ignore[operator]
        removed = before[what] - after[what]  # type: ignore[operator]
        if added:
            problems.append(f"{what} left behind: {sorted(added)}")
        if removed:
            problems.append(f"{what} removed: {sorted(removed)}")
    if after["own rows"] != before["own rows"]:
        problems.append(f"the user's rows changed: {before['own rows']} -> {after['own rows']}")
    return problems


def main(arguments: list[str]) -> int:
    external = "--external" in arguments
    pytest_args = [argument for argument in arguments if argument != "--external"]
    decoy_port = int(os.environ.get("DECOY_PORT", "4000"))
    decoy_status_port = int(os.environ.get("DECOY_STATUS_PORT", "10080"))
    port = os.environ.get("TIDB_PORT", "4102")
    status_port = os.environ.get("TIDB_STATUS_PORT", "10182")
    if {port, status_port} & {str(decoy_port), str(decoy_status_port)}:
        print(f"TIDB_PORT/TIDB_STATUS_PORT ({port}/{status_port}) must differ from the decoy's "
              f"ports ({decoy_port}/{decoy_status_port}); set DECOY_PORT/DECOY_STATUS_PORT.",
              file=sys.stderr)
        return 2
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="crm-elsewhere-") as scratch:
        decoy = LocalTiDB(home=Path(scratch) / "decoy", port=decoy_port,
                          status_port=decoy_status_port)
        users = LocalTiDB(home=Path(scratch) / "users-tidb", port=int(port),
                          status_port=int(status_port))
        start_local_tidb(decoy)
        try:
            before = (local_tidb_status(decoy).pid, databases(decoy))
            env = {key: value for key, value in os.environ.items()
                   if key not in ("TIDB_URL", "TIDB_HOST", "TIDB_PORT", "TIDB_STATUS_PORT",
                                  "TIDB_USER", "TIDB_PASSWORD", "TIDB_DB_NAME")}
            env["TIDB_LOCAL_HOME"] = str(Path(scratch) / "suite")
            if external:
                root_password = make_users_tidb(users)
                users_before = server_contents(users, root_password)
                env["TIDB_URL"] = f"tidb://root:{root_password}@{users.host}:{port}/"
                where = (f"against the user's TiDB at {users.host}:{port} (root has a password; "
                         f"only TIDB_URL names it)")
            else:
                env.update(TIDB_PORT=port, TIDB_STATUS_PORT=status_port)
                where = f"on {port}/{status_port}"
            print(f"Decoy tidb-server (pid {before[0]}) on {decoy_port}/{decoy_status_port}; "
                  f"the suite runs {where} with TIDB_LOCAL_HOME={env['TIDB_LOCAL_HOME']}",
                  flush=True)
            started = time.monotonic()
            suite = subprocess.run([sys.executable, "-m", "pytest", *pytest_args],
                                   cwd=PROJECT_ROOT, env=env, check=False)
            minutes, seconds = divmod(round(time.monotonic() - started), 60)
            print(f"Suite elsewhere: exit {suite.returncode} in {minutes} min {seconds} s",
                  flush=True)
            after = (local_tidb_status(decoy).pid, databases(decoy))
            if external:
                problems = check_users_tidb(users_before, server_contents(users, root_password))
        finally:
            stop_local_tidb(users)
            stop_local_tidb(decoy)
    if after != before:
        print(f"The suite touched the decoy tidb-server: pid and databases were {before}, "
              f"are {after}.", file=sys.stderr)
        return 1
    print("Decoy untouched: same process, same databases.")
    if problems:
        print("The suite changed the user's TiDB: " + "; ".join(problems), file=sys.stderr)
        return 1
    if external:
        print("User's TiDB: nothing left behind but what the notebooks document.")
    return suite.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The whole suite again, the way a user on a busy machine runs it (`make test-elsewhere`).

Another tidb-server (the decoy) runs on the default ports, 4000 and 10080, in a folder of its
own, and the suite runs with TIDB_PORT, TIDB_STATUS_PORT and TIDB_LOCAL_HOME pointing
elsewhere. Afterwards the decoy must still run, as the same process, with the same databases:
the suite may only use and stop what it started itself.

DECOY_PORT / DECOY_STATUS_PORT move the decoy (say, when 4000 is taken on a workstation);
TIDB_PORT / TIDB_STATUS_PORT (default 4102 / 10182) choose the suite's ports. Extra arguments
go to pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.server import LocalTiDB, local_tidb_status, start_local_tidb, stop_local_tidb


def databases(local: LocalTiDB) -> set[str]:
    connection = pymysql.connect(host=local.host, port=local.port, user="root", password="",
                                 connect_timeout=10, read_timeout=30)
    with connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        return {name for (name,) in cursor.fetchall()}


def main(pytest_args: list[str]) -> int:
    decoy_port = int(os.environ.get("DECOY_PORT", "4000"))
    decoy_status_port = int(os.environ.get("DECOY_STATUS_PORT", "10080"))
    port = os.environ.get("TIDB_PORT", "4102")
    status_port = os.environ.get("TIDB_STATUS_PORT", "10182")
    if {port, status_port} & {str(decoy_port), str(decoy_status_port)}:
        print(f"TIDB_PORT/TIDB_STATUS_PORT ({port}/{status_port}) must differ from the decoy's "
              f"ports ({decoy_port}/{decoy_status_port}); set DECOY_PORT/DECOY_STATUS_PORT.",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="crm-elsewhere-") as scratch:
        decoy = LocalTiDB(home=Path(scratch) / "decoy", port=decoy_port,
                          status_port=decoy_status_port)
        start_local_tidb(decoy)
        try:
            before = (local_tidb_status(decoy).pid, databases(decoy))
            env = {key: value for key, value in os.environ.items()
                   if key not in ("TIDB_URL", "TIDB_HOST")}
            env.update(TIDB_PORT=port, TIDB_STATUS_PORT=status_port,
                       TIDB_LOCAL_HOME=str(Path(scratch) / "suite"))
            print(f"Decoy tidb-server (pid {before[0]}) on {decoy_port}/{decoy_status_port}; "
                  f"the suite runs on {port}/{status_port} with TIDB_LOCAL_HOME={scratch}/suite",
                  flush=True)
            started = time.monotonic()
            suite = subprocess.run([sys.executable, "-m", "pytest", *pytest_args],
                                   cwd=PROJECT_ROOT, env=env, check=False)
            minutes, seconds = divmod(round(time.monotonic() - started), 60)
            print(f"Suite elsewhere: exit {suite.returncode} in {minutes} min {seconds} s",
                  flush=True)
            after = (local_tidb_status(decoy).pid, databases(decoy))
        finally:
            stop_local_tidb(decoy)
    if after != before:
        print(f"The suite touched the decoy tidb-server: pid and databases were {before}, "
              f"are {after}.", file=sys.stderr)
        return 1
    print("Decoy untouched: same process, same databases.")
    return suite.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`make compliance`: sqlalchemy-tidb's suite comparison, run against the project's TiDB.

The comparison itself lives with the dialect (sqlalchemy-tidb/test/compliance/compare.py) and
takes any TiDB by URL; this module only supplies the project's one (the local TiDB, started if
need be and stopped again if this run started it, or the one TIDB_URL / TIDB_HOST names).
"""

from __future__ import annotations

import os
import subprocess
import sys

from crm_helpers.config import PROJECT_ROOT, load_settings
from crm_helpers.local.server import ensure_tidb, local_tidb, local_tidb_status, stop_local_tidb

COMPARE = PROJECT_ROOT / "sqlalchemy-tidb" / "test" / "compliance" / "compare.py"


def main(argv: list[str] | None = None) -> int:
    """Run compare.py with SQLALCHEMY_TIDB_TEST_URL set to the project's TiDB; its exit code."""
    settings = load_settings()
    started_here = not settings.external and not local_tidb_status(local_tidb(settings)).running
    ensure_tidb(settings)
    # The server as the dialect sees it: no database, no lesson plugin. Passed in the
    # environment, so that a password never appears on a command line.
    url = settings.url(None).difference_update_query(["plugin"])
    env = {**os.environ, "SQLALCHEMY_TIDB_TEST_URL": url.render_as_string(hide_password=False)}
    try:
        return subprocess.call([sys.executable, str(COMPARE), *(argv or [])], env=env,
                               cwd=PROJECT_ROOT)
    finally:
        if started_here:
            stop_local_tidb(local_tidb(settings))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

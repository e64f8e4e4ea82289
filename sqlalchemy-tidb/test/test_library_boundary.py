"""The dialect is a library: it loads nothing of any application and reads no settings."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy.engine import URL

# Run in a fresh interpreter so that nothing this test session imported counts.
_USE_THE_DIALECT = """
import sys
import sqlalchemy as sa
engine = sa.create_engine(sys.argv[1])
with engine.connect() as connection:
    connection.exec_driver_sql("SELECT 1")
    connection.exec_driver_sql("CREATE TEMPORARY TABLE t (v VECTOR(2))")
    connection.exec_driver_sql("INSERT INTO t VALUES ('[1,2]')")
print(type(engine.dialect).__module__)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _run(url: URL, env: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _USE_THE_DIALECT,
                           url.render_as_string(hide_password=False)],
                          capture_output=True, text=True, timeout=120, env=env, check=True)
    return done.stdout.splitlines()


def test_using_the_dialect_imports_no_application_pandas_or_jupyter(database_url):
    module, loaded = _run(database_url, dict(os.environ))
    assert module == "sqlalchemy_tidb.base"
    unexpected = set(loaded.split()) & {"crm_helpers", "pandas", "IPython", "jupyter_core",
                                        "ipykernel", "jupyterlab", "dotenv", "connectorx"}
    assert not unexpected


def test_no_environment_variable_changes_the_connection(database_url, tmp_path):
    # The project's variables (and a .env in the working directory) must mean nothing here.
    (tmp_path / ".env").write_text("TIDB_CONNECT_TIMEOUT=abc\nTIDB_READ_TIMEOUT=-1\n")
    env = {**os.environ, "TIDB_CONNECT_TIMEOUT": "abc", "TIDB_READ_TIMEOUT": "-1",
           "TIDB_PORT": "1", "CA_PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-c", _USE_THE_DIALECT,
                           database_url.render_as_string(hide_password=False)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]

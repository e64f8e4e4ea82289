"""A program written the tutorial's way, on its tidb:// URL, prints the tutorial's result."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.db import tidb_engine


def test_tutorial_program_prints_bens_orders(tidb_settings):
    database = f"crm_tutorial_{secrets.token_hex(3)}"
    admin = tidb_engine(tidb_settings.url())
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{database}`")
    url = tidb_settings.url(database).render_as_string(hide_password=False)
    try:
        result = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "examples" / "tutorial_main.py")],
            env={**os.environ, "TUTORIAL_URL": url}, capture_output=True, text=True,
            check=True)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{database}`")
        admin.dispose()
    assert result.stdout == "[('Ben', 212.5), ('Ben', 8.5)]\n"

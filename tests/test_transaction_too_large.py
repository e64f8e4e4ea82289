"""TiDB's 8004 "Transaction is too large" for real: the dialect's test on a TiDB that enforces it.

TiDB v6.5+ does not enforce txn-total-size-limit at its default (measured: a 150 MiB
transaction commits on v8.5), so `sqlalchemy-tidb/test/test_errors.py` skips its 8004 test on
the session's TiDB. Here a spare TiDB is configured with a small limit and that very test runs
against it, through the dialect's own test setup (SQLALCHEMY_TIDB_TEST_URL).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_helpers.config import PROJECT_ROOT
from tests.conftest import spare_tidb

DIALECT = PROJECT_ROOT / "sqlalchemy-tidb"
TEST = "test/test_errors.py::test_a_transaction_over_txn_total_size_limit_is_transaction_too_large"
# Small, so the test writes only a few MiB (TiDB counts keys and values against it).
LIMIT = 4 * 1024 * 1024


@pytest.mark.lifecycle
def test_the_dialects_8004_test_passes_on_a_tidb_that_enforces_the_limit(tmp_path: Path) -> None:
    with spare_tidb(tmp_path / "tidb", txn_total_size_limit=LIMIT) as local:
        url = local.url().render_as_string(hide_password=False)
        env = {**os.environ, "SQLALCHEMY_TIDB_TEST_URL": url}
        done = subprocess.run([sys.executable, "-m", "pytest", TEST, "-q", "-rA", "-p",
                               "no:cacheprovider"], cwd=DIALECT, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr

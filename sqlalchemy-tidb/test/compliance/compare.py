"""Run SQLAlchemy's and Alembic's suites through tidb and SQLAlchemy's MySQL dialect; compare.

    python test/compliance/compare.py --dburi tidb://root@127.0.0.1:4000/ [pytest arguments]

(or the URL in SQLALCHEMY_TIDB_TEST_URL, which keeps a password off the command line). Each
suite (SUITES) runs through each pair of dialects it names (PAIRS: tidb:// with
mysql+pymysql://, and for SQLAlchemy's suite also tidb+asyncmy:// with mysql+asyncmy://) on
the same TiDB with the same requirements. For each run it prints passed / failed / skipped and
the time (Alembic's lines start with "alembic"), lists every test that passes on the MySQL
dialect but not on its tidb counterpart, and exits non-zero if there is any such test or if a
tidb run has a failure. The JUnit reports stay in build/compliance/ under the current directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
#: Where the JUnit reports of the last comparison stay for inspection.
REPORTS = Path("build") / "compliance"
URL_VARIABLE = "SQLALCHEMY_TIDB_TEST_URL"
#: Each tidb dialect with the MySQL dialect of SQLAlchemy it is compared with.
SYNC_PAIR = ("tidb", "mysql+pymysql")
ASYNC_PAIR = ("tidb+asyncmy", "mysql+asyncmy")
# SQLAlchemy names each class after the backend: CTETest_tidb+pymysql_8_0_11_5_6, and
# CTETest_mysql+asyncmy_async_8_0_11_5_6 for an async driver.
_BACKEND_SUFFIX = re.compile(r"_[a-z]+\+[a-z0-9]+(_async)?_[0-9_]+$")


class Suite(NamedTuple):
    """A suite to compare: its name, the pytest arguments that pick it, its output prefix."""

    name: str
    args: tuple[str, ...]
    #: Starts its output lines and report names ("" for SQLAlchemy's, whose lines came first).
    label: str
    #: The (tidb, mysql) dialect pairs it is run through.
    pairs: tuple[tuple[str, str], ...]


#: The suites compared, in order (conftest.py's --suite selects each). Alembic's suite is
#: synchronous: it runs through the PyMySQL pair only.
SUITES = (
    Suite("sqlalchemy", (), "", (SYNC_PAIR, ASYNC_PAIR)),
    Suite("alembic", ("--suite", "alembic"), "alembic", (SYNC_PAIR,)),
)


def run_suite(suite: Suite, dialect: str, report: Path,
              extra: list[str]) -> tuple[int, float]:
    """Run a suite through one dialect, writing a JUnit report; (exit code, seconds)."""
    command = [sys.executable, "-m", "pytest", "-c", str(HERE / "setup.cfg"), str(HERE), "-q",
               "--dialect", dialect, *suite.args, f"--junitxml={report.resolve()}", *extra]
    started = time.monotonic()
    code = subprocess.call(command, cwd=HERE)
    return code, time.monotonic() - started


def _with_dburi(extra: list[str]) -> list[str]:
    """The pytest arguments, with --dburi from SQLALCHEMY_TIDB_TEST_URL when none is given."""
    if any(arg == "--dburi" or arg.startswith("--dburi=") for arg in extra):
        return extra
    if not os.environ.get(URL_VARIABLE):
        sys.exit(f"Give the TiDB to test: --dburi tidb://USER:PASSWORD@HOST:PORT/ or "
                 f"{URL_VARIABLE}.")
    return [*extra, "--dburi", os.environ[URL_VARIABLE]]


def outcomes(report: Path) -> dict[str, str]:
    """Each test's outcome in a JUnit report (passed, failed or skipped), by dialect-free name."""
    result = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        # SQLAlchemy names each class after the backend: CTETest_tidb+pymysql_8_0_11_5_6.
        suite_class = _BACKEND_SUFFIX.sub("", case.get("classname") or "")
        name = f"{suite_class}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            result[name] = "failed"
        elif case.find("skipped") is not None:
            result[name] = "skipped"
        else:
            result[name] = "passed"
    return result


def compare_suite(suite: Suite, extra: list[str]) -> int:
    """Run one suite through its dialect pairs and print the comparisons; 0, 1 or 2 (no report)."""
    prefix = f"{suite.label}: " if suite.label else ""
    results: dict[str, dict[str, str]] = {}
    for dialect in (dialect for pair in suite.pairs for dialect in pair):
        report = REPORTS / "_".join(filter(None, (suite.label, dialect.replace("+", "_"))))
        report = report.with_suffix(".xml")
        report.unlink(missing_ok=True)
        code, seconds = run_suite(suite, dialect, report, extra)
        if not report.is_file():
            print(f"The {suite.name} suite's {dialect} run wrote no report (pytest exit code "
                  f"{code}); see its output above.", file=sys.stderr)
            return 2
        results[dialect] = outcomes(report)
        counts = Counter(results[dialect].values())
        name = f"{suite.label} {dialect}" if suite.label else f"{dialect:>15}"
        print(f"{name}: {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['skipped']} skipped in {seconds:.0f} s")
    worse = [compare(prefix, results[tidb], results[mysql], tidb, mysql)
             for tidb, mysql in suite.pairs]
    return 1 if any(worse) else 0


def compare(prefix: str, tidb: dict[str, str], mysql: dict[str, str], tidb_name: str,
            mysql_name: str) -> bool:
    """Print how a tidb run differs from its MySQL run; True if it is worse (or failed)."""
    tidb_url = f"{tidb_name}://"
    missing = sorted(name for name, outcome in mysql.items()
                     if outcome == "passed" and tidb.get(name) != "passed")
    gained = sorted(name for name, outcome in tidb.items()
                    if outcome == "passed" and mysql.get(name) != "passed")
    print(f"{prefix}Pass with {tidb_url} but not with {mysql_name}: {len(gained)}")
    for name in gained:
        print("   +", name)
    print(f"{prefix}Pass with {mysql_name} but not with {tidb_url}: {len(missing)}")
    for name in missing:
        print("   -", name)
    tidb_failures = sorted(name for name, outcome in tidb.items() if outcome == "failed")
    if tidb_failures:
        print(f"{prefix}{tidb_url} failures: {len(tidb_failures)}")
    return bool(missing or tidb_failures)


def main(extra: list[str]) -> int:
    extra = _with_dburi(extra)
    REPORTS.mkdir(parents=True, exist_ok=True)
    return max(compare_suite(suite, extra) for suite in SUITES)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

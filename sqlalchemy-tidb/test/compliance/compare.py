"""Run SQLAlchemy's compliance suite through tidb:// and mysql+pymysql://, and compare.

The same again for the async pair, tidb+asyncmy:// and mysql+asyncmy:// (PAIRS below).

    python test/compliance/compare.py --dburi tidb://root@127.0.0.1:4000/ [pytest arguments]

(or the URL in SQLALCHEMY_TIDB_TEST_URL, which keeps a password off the command line). Both
runs use the same TiDB and the same requirements (setup.cfg here). Prints passed / failed /
skipped for each dialect and the run times, lists every test that passes with mysql+pymysql
but not with tidb:// (and with mysql+asyncmy but not tidb+asyncmy), and exits non-zero if there
is any such test or if a tidb run has a failure. The JUnit reports stay in build/compliance/
under the current directory.
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

HERE = Path(__file__).resolve().parent
#: Where the JUnit reports of the last comparison stay for inspection.
REPORTS = Path("build") / "compliance"
URL_VARIABLE = "SQLALCHEMY_TIDB_TEST_URL"
#: (tidb dialect, the MySQL dialect it is compared with), each run through the suite.
PAIRS = (("tidb", "mysql+pymysql"), ("tidb+asyncmy", "mysql+asyncmy"))
DIALECTS = tuple(dialect for pair in PAIRS for dialect in pair)
# SQLAlchemy names each class after the backend: CTETest_tidb+pymysql_8_0_11_5_6, and
# CTETest_mysql+asyncmy_async_8_0_11_5_6 for an async driver.
_BACKEND_SUFFIX = re.compile(r"_[a-z]+\+[a-z0-9]+(_async)?_[0-9_]+$")


def run_suite(dialect: str, report: Path, extra: list[str]) -> tuple[int, float]:
    """Run the suite through one dialect, writing a JUnit report; (exit code, seconds)."""
    command = [sys.executable, "-m", "pytest", "-c", str(HERE / "setup.cfg"), str(HERE), "-q",
               "--dialect", dialect, f"--junitxml={report.resolve()}", *extra]
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
        suite_class = _BACKEND_SUFFIX.sub("", case.get("classname") or "")
        name = f"{suite_class}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            result[name] = "failed"
        elif case.find("skipped") is not None:
            result[name] = "skipped"
        else:
            result[name] = "passed"
    return result


def main(extra: list[str]) -> int:
    extra = _with_dburi(extra)
    results: dict[str, dict[str, str]] = {}
    REPORTS.mkdir(parents=True, exist_ok=True)
    for dialect in DIALECTS:
        report = REPORTS / f"{dialect.replace('+', '_')}.xml"
        report.unlink(missing_ok=True)
        code, seconds = run_suite(dialect, report, extra)
        if not report.is_file():
            print(f"The {dialect} run wrote no report (pytest exit code {code}); "
                  "see its output above.", file=sys.stderr)
            return 2
        results[dialect] = outcomes(report)
        counts = Counter(results[dialect].values())
        print(f"{dialect:>15}: {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['skipped']} skipped in {seconds:.0f} s")
    worse = [compare(results[tidb_dialect], results[mysql_dialect], tidb_dialect, mysql_dialect)
             for tidb_dialect, mysql_dialect in PAIRS]
    return 1 if any(worse) else 0


def compare(tidb: dict[str, str], mysql: dict[str, str], tidb_name: str, mysql_name: str) -> bool:
    """Print how a tidb run differs from its MySQL run; True if it is worse (or failed)."""
    tidb_url = f"{tidb_name}://"
    missing = sorted(name for name, outcome in mysql.items()
                     if outcome == "passed" and tidb.get(name) != "passed")
    gained = sorted(name for name, outcome in tidb.items()
                    if outcome == "passed" and mysql.get(name) != "passed")
    print(f"Pass with {tidb_url} but not with {mysql_name}: {len(gained)}")
    for name in gained:
        print("   +", name)
    print(f"Pass with {mysql_name} but not with {tidb_url}: {len(missing)}")
    for name in missing:
        print("   -", name)
    tidb_failures = sorted(name for name, outcome in tidb.items() if outcome == "failed")
    if tidb_failures:
        print(f"{tidb_url} failures: {len(tidb_failures)}")
    return bool(missing or tidb_failures)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

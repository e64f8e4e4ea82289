"""Run SQLAlchemy's and Alembic's suites through tidb and SQLAlchemy's MySQL dialect; compare.

    python test/compliance/compare.py --dburi tidb://root@127.0.0.1:4000/ [--full] [pytest args]

(or the URL in SQLALCHEMY_TIDB_TEST_URL, which keeps a password off the command line). Each
suite (SUITES) runs through each pair of dialects it names (PAIRS: tidb:// with
mysql+pymysql://, and for SQLAlchemy's suite also tidb+asyncmy:// with mysql+asyncmy://) on
the same TiDB with the same requirements. It exits non-zero if a test passes through the
MySQL dialect but not through its tidb counterpart, or if a tidb run has a failure, and lists
those tests.

Only a test the tidb run did not pass (failed, skipped or xfailed), or did not have, can pass
"on MySQL only", so by default the MySQL run leaves out the tests tidb passed: the same verdict
for a fraction of the time. `--full` runs the whole suite through both and also lists the
tests that pass only through tidb.

For each run it prints passed / failed / skipped and the time (Alembic's lines start with
"alembic"). The JUnit reports stay in build/compliance/ under the current directory.
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


def compare_suite(suite: Suite, extra: list[str], *, full: bool = False) -> int:
    """Run one suite through its dialect pairs and print the comparisons; 0, 1 or 2 (no report)."""
    prefix = f"{suite.label}: " if suite.label else ""
    worse = False
    for tidb, mysql in suite.pairs:
        tidb_outcomes = _run_and_count(suite, tidb, extra)
        if tidb_outcomes is None:
            return 2
        reference_extra, scope = extra, ""
        if not full:
            passed = sorted(name for name, outcome in tidb_outcomes.items() if outcome == "passed")
            names = _report_path(suite, mysql).with_suffix(".passed-on-tidb")
            names.write_text("".join(f"{_dialect_free(name)}\n" for name in passed),
                             encoding="utf-8")
            reference_extra = [*extra, "--leave-out", str(names.resolve())]
            scope = f" (without the {len(passed)} tests {tidb}:// passed)"
        mysql_outcomes = _run_and_count(suite, mysql, reference_extra, scope)
        if mysql_outcomes is None:
            return 2
        worse |= compare(prefix, tidb_outcomes, mysql_outcomes, tidb, mysql, full=full)
    return 1 if worse else 0


def _report_path(suite: Suite, dialect: str) -> Path:
    """Where a run of `suite` through `dialect` writes its JUnit report."""
    name = "_".join(filter(None, (suite.label, dialect.replace("+", "_"))))
    return (REPORTS / name).with_suffix(".xml")


def _dialect_free(name: str) -> str:
    """`module.Class::test` as `Class::test`, the form conftest.py's --leave-out reads."""
    classname, test = name.split("::", 1)
    return f"{classname.rsplit('.', 1)[-1]}::{test}"


def _run_and_count(suite: Suite, dialect: str, extra: list[str],
                   scope: str = "") -> dict[str, str] | None:
    """Run the suite through `dialect` and print its counts; its outcomes (None: no report)."""
    report = _report_path(suite, dialect)
    report.unlink(missing_ok=True)
    code, seconds = run_suite(suite, dialect, report, extra)
    if not report.is_file():
        print(f"The {suite.name} suite's {dialect} run wrote no report (pytest exit code "
              f"{code}); see its output above.", file=sys.stderr)
        return None
    result = outcomes(report)
    counts = Counter(result.values())
    name = f"{suite.label} {dialect}" if suite.label else f"{dialect:>15}"
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped in {seconds:.0f} s{scope}")
    return result


def compare(prefix: str, tidb: dict[str, str], mysql: dict[str, str], tidb_name: str,
            mysql_name: str, *, full: bool = True) -> bool:
    """Print how a tidb run differs from its MySQL run; True if it is worse (or failed).

    Without `full`, the MySQL run covered only what tidb did not pass: the tests that pass
    only through tidb are then not known, and not listed.
    """
    tidb_url = f"{tidb_name}://"
    missing = sorted(name for name, outcome in mysql.items()
                     if outcome == "passed" and tidb.get(name) != "passed")
    if full:
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
    full = "--full" in extra
    extra = _with_dburi([arg for arg in extra if arg != "--full"])
    REPORTS.mkdir(parents=True, exist_ok=True)
    return max(compare_suite(suite, extra, full=full) for suite in SUITES)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Run SQLAlchemy's compliance suite through tidb:// and mysql+pymysql://, and compare.

    .venv/bin/python tests/compliance/compare_dialects.py [extra pytest arguments]

Both runs use the same TiDB and the same requirements (tests/compliance/setup.cfg). Prints
passed / failed / skipped for each dialect and the run times, lists every test that passes
with mysql+pymysql but not with tidb://, and exits non-zero if there is any such test or if
the tidb:// run has a failure. `make compliance` runs this.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DIALECTS = ("tidb", "mysql+pymysql")


def run_suite(dialect: str, report: Path, extra: list[str]) -> tuple[int, float]:
    """Run the suite through one dialect, writing a JUnit report; (exit code, seconds)."""
    command = [sys.executable, "-m", "pytest", "-c", str(HERE / "setup.cfg"), str(HERE), "-q",
               "--dialect", dialect, f"--junitxml={report}", *extra]
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT)
    return code, time.monotonic() - started


def outcomes(report: Path) -> dict[str, str]:
    """Each test's outcome in a JUnit report: passed, failed or skipped."""
    result = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            result[name] = "failed"
        elif case.find("skipped") is not None:
            result[name] = "skipped"
        else:
            result[name] = "passed"
    return result


def main(extra: list[str]) -> int:
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="crm-compliance-") as tmp:
        for dialect in DIALECTS:
            report = Path(tmp) / f"{dialect.replace('+', '_')}.xml"
            code, seconds = run_suite(dialect, report, extra)
            if not report.is_file():
                print(f"The {dialect} run wrote no report (pytest exit code {code}); "
                      "see its output above.", file=sys.stderr)
                return 2
            results[dialect] = outcomes(report)
            counts = Counter(results[dialect].values())
            print(f"{dialect:>15}: {counts['passed']} passed, {counts['failed']} failed, "
                  f"{counts['skipped']} skipped in {seconds:.0f} s")
    tidb, mysql = results["tidb"], results["mysql+pymysql"]
    missing = sorted(name for name, outcome in mysql.items()
                     if outcome == "passed" and tidb.get(name) != "passed")
    gained = sorted(name for name, outcome in tidb.items()
                    if outcome == "passed" and mysql.get(name) != "passed")
    print(f"Pass with tidb:// but not with mysql+pymysql: {len(gained)}")
    for name in gained:
        print("   +", name)
    print(f"Pass with mysql+pymysql but not with tidb://: {len(missing)}")
    for name in missing:
        print("   -", name)
    tidb_failures = sorted(name for name, outcome in tidb.items() if outcome == "failed")
    if tidb_failures:
        print(f"tidb:// failures: {len(tidb_failures)}")
    return 1 if missing or tidb_failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

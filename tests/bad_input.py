"""The bad-input sweep's machinery: cases, the databases they run on, outcomes and their table.

Every public function of crm_helpers and the CLI gets bad input in the test module of its own
part of the tree (tests/lesson/test_bad_input_lesson.py, tests/analysis/test_bad_input_analysis.py,
tests/local/test_bad_input_local.py, tests/test_bad_input.py for settings and engines).

Each case calls one function with one kind of bad input (wrong type, None, bool, negative,
NaN/inf, huge, empty or overlong text, injection-like names, wrong frames, bad ports and
URLs). Its outcome is one of:
- clear: a CrmError whose message matches what is wrong and says what to do (CLI: a
  non-zero exit with such a message and no traceback);
- unclear: any other exception, or a message without advice;
- silent: no error at all;
- half-written: an error, but the database changed (or no error and it changed);
- hang: no answer within the case's time limit.
Only "clear" passes. A case with `accepts` is a valid input instead (a NumPy scalar, a unicode
password, a float32 column): it must return, and `accepts(result, ctx)` must hold, for
"accepted"; a refusal of it counts as unclear, a wrong result as silent. The counts of the
whole session are printed at its end (pytest -s), and with CRM_SWEEP_REPORT=<path> written
there as JSON.
"""

from __future__ import annotations

import contextlib
import enum
import io
import json
import os
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.orm import Session

from crm_helpers import config, engines
from crm_helpers.analysis import generate, loader, schema
from crm_helpers.errors import CrmError
from crm_helpers.lesson import operations
from crm_helpers.local import cli, server
from tests.conftest import THROWAWAY_PREFIXES, free_port, free_ports

#: A message says what to do if it holds one of these (or, from the CLI, argparse's usage).
ADVICE = re.compile(
    r"\b(use|give|set|start|check|add|load|call|run|convert|round|drop|rename|make|fix|"
    r"point|shorten|create|pass|choose|remove|reset|empty|install|wait|stop|build|name|save|close|"
    r"let|expected|must|only|at most|from \d)\b|usage:", re.IGNORECASE)
TIME_LIMIT = 60.0
SLOW_SECONDS = 10.0  # a case that takes longer is counted as slow (it still passes if clear)
OUTCOMES: dict[str, str] = {}
SECONDS: dict[str, float] = {}


@dataclass
class Case:
    """One bad input: `call(ctx)` must raise a CrmError whose message matches `wrong`."""

    id: str
    call: Callable[[Any], Any]
    wrong: str
    owner: str | None = None  # engineer whose module still lets it through (xfail)
    cli: bool = False
    env: dict[str, str] = field(default_factory=dict)
    #: For a valid input: what its result must satisfy (it may write to tables of its own).
    accepts: Callable[[Any, Any], bool] | None = None

    @property
    def expected(self) -> str:
        """The outcome the case must have: "clear" for bad input, "accepted" for valid input."""
        return "clear" if self.accepts is None else "accepted"


@dataclass
class Ctx:
    settings: Any
    admin: Any
    crm: Any  # engine on the CRM database (tutorial data), LOCAL INFILE on
    analysis: Any  # engine on an analysis database (small generated data)
    crm_database: str
    tmp: Path
    plain_crm: Any = None  # like `crm`, without LOCAL INFILE

    def session(self) -> Session:
        return Session(self.crm)


# ---------------------------------------------------------------------------- the data
def orders_frame(n: int = 300) -> pd.DataFrame:
    return generate.generate_orders(n, 50)


def spoiled(**changes: Callable[[pd.DataFrame], Any]) -> pd.DataFrame:
    frame = orders_frame()
    for column, change in changes.items():
        frame[column] = change(frame)
    return frame


def at(frame: pd.DataFrame, column: str, row: int, value: Any) -> pd.DataFrame:
    """`frame` with one value replaced; the column's dtype is inferred again (may widen)."""
    values = frame[column].tolist()
    values[row] = value
    text = not pd.api.types.is_numeric_dtype(frame[column])
    return frame.assign(**{column: pd.Series(values, index=frame.index,
                                             dtype=object if text else None)})


def crm_orders(prices: list[Any], uids: list[Any] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"oid": range(100, 100 + len(prices)),
                         "uid": uids or [1] * len(prices), "price": prices})


keyless = Table("keyless", MetaData(), Column("name", String(10)))
text_keyed = Table("text_keyed", MetaData(), Column("code", String(10), primary_key=True))


def load(ctx, frame, table=schema.analysis_orders, **options):
    return loader.load_frame(ctx.analysis, table, frame, progress=False, **options)


def session_call(function: Callable, *args: Any) -> Callable[[Ctx], Any]:
    def call(ctx: Ctx) -> Any:
        with ctx.session() as session:
            return function(session, *args)
    return call


def orm_call(statement: Callable[[Session], Any]) -> Callable[[Ctx], Any]:
    """Plain SQLAlchemy in a session on the CRM tables, committed."""
    def call(ctx: Ctx) -> Any:
        with ctx.session() as session:
            result = statement(session)
            session.commit()
            return result
    return call


def core_call(statement: Callable[[Any], Any]) -> Callable[[Ctx], Any]:
    """Plain SQLAlchemy Core on a connection to the CRM tables, in one transaction."""
    def call(ctx: Ctx) -> Any:
        with ctx.crm.begin() as connection:
            return statement(connection)
    return call


def cli_call(*argv: str) -> Callable[[Ctx], Any]:
    def call(ctx: Ctx) -> Any:
        return cli.main(list(argv))
    return call


class Shade(enum.Enum):
    dark = 1


def env_file_call(content: bytes) -> Callable[[Ctx], Any]:
    """load_settings with a .env file holding `content` (and no environment variables)."""
    def call(ctx: Ctx) -> Any:
        env_file = ctx.tmp / f"env-{secrets.token_hex(3)}"
        env_file.write_bytes(content)
        return config.load_settings({}, env_file=env_file)
    return call


ENGINE = object()  # stands for the analysis engine in `runner_call`


def runner_call(function: Callable, *args: Any, **kwargs: Any) -> Callable[[Ctx], Any]:
    def call(ctx: Ctx) -> Any:
        return function(*[ctx.analysis if arg is ENGINE else arg for arg in args], **kwargs)
    return call


# A name of this run only: on a user's TiDB, an account of theirs must never be dropped.
USER = f"crm_sweep_user_{secrets.token_hex(3)}"

# ---------------------------------------------------------------------------- running them
@contextlib.contextmanager
def sweep_context(tidb_settings: Any, folder: Path) -> Iterator[Ctx]:
    """The databases and engines the cases run on, dropped on leaving; then the counts table."""
    tag = secrets.token_hex(3)
    crm_database, analysis_database = f"crm_sweep_{tag}", f"crm_sweep_analysis_{tag}"
    admin = engines.tidb_engine(tidb_settings.url())
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{crm_database}`")
    crm_engine = engines.tidb_engine(tidb_settings.url(crm_database),
                                connect_args={"local_infile": True})
    operations.reset_crm_tables(crm_engine)
    with Session(crm_engine) as session:
        operations.add_users(session, operations.TUTORIAL_USERS)
        operations.add_orders(session, [operations.TUTORIAL_FIRST_ORDER,
                                        *operations.TUTORIAL_MORE_ORDERS])
    analysis = schema.analysis_engine(tidb_settings, database=analysis_database)
    loader.load_frame(analysis, schema.analysis_users, generate.generate_users(50),
                       progress=False)
    loader.load_frame(analysis, schema.analysis_orders, generate.generate_orders(100, 50),
                       progress=False)
    context = Ctx(tidb_settings, admin, crm_engine, analysis, crm_database, folder)
    context.plain_crm = engines.tidb_engine(tidb_settings.url(crm_database))
    yield context
    for engine in (crm_engine, analysis, context.plain_crm):
        engine.dispose()
    with admin.begin() as connection:
        for name in (crm_database, analysis_database):
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        connection.execute(text(f"DROP USER IF EXISTS '{USER}'@'%'"))
    admin.dispose()
    counts = sweep_counts(OUTCOMES, SECONDS)
    print("\n" + sweep_table(counts))  # shown with pytest -s
    report = os.environ.get("CRM_SWEEP_REPORT")
    if report:
        Path(report).write_text(json.dumps({**counts, "cases": OUTCOMES, "seconds": SECONDS},
                                           indent=1))


def sweep_counts(outcomes: dict[str, str], seconds: dict[str, float]) -> dict[str, int]:
    """tried, clear, silent, unclear, half-written, hang and slow (> SLOW_SECONDS) counts."""
    kinds = Counter(outcome.split(":")[0] for outcome in outcomes.values())
    counts = {"tried": len(outcomes)}
    counts.update({kind: kinds.get(kind, 0)
                   for kind in ("clear", "accepted", "silent", "unclear", "half-written",
                                "hang")})
    counts["slow"] = sum(1 for spent in seconds.values() if spent > SLOW_SECONDS)
    return counts


def sweep_table(counts: dict[str, int]) -> str:
    """The counts as a two-line text table."""
    names = list(counts)
    widths = [max(len(name), len(str(counts[name]))) for name in names]
    return "\n".join("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths,
                                                                             strict=True))
                     for row in (names, [counts[name] for name in names]))


def fingerprint(ctx: Ctx) -> tuple:
    """Everything a bad input could have written: both databases' rows, databases, accounts.

    Databases and accounts of the tests that run beside the sweep (THROWAWAY_PREFIXES) come
    and go meanwhile: they are not the case's doing, so they are left out.
    """
    with ctx.admin.connect() as connection:
        rows = []
        for database in (ctx.crm_database, ctx.analysis.url.database):
            for table in connection.exec_driver_sql(f"SHOW TABLES FROM `{database}`").scalars():
                rows.append((database, table, tuple(connection.exec_driver_sql(
                    f"SELECT * FROM `{database}`.`{table}` ORDER BY 1").all())))
        databases = tuple(name for name in connection.exec_driver_sql("SHOW DATABASES").scalars()
                          if not name.startswith(THROWAWAY_PREFIXES))
        accounts_ = tuple(account for account in connection.exec_driver_sql(
            "SELECT user, host FROM mysql.user ORDER BY 1, 2").all()
            if not account[0].startswith(THROWAWAY_PREFIXES))
    return tuple(rows), databases, accounts_


def run_case(case: Case, ctx: Ctx) -> str:
    """The case's outcome: clear, unclear: ..., silent, half-written, hang."""
    before = fingerprint(ctx)
    outcome: dict[str, Any] = {}
    stderr = io.StringIO()

    def target() -> None:
        try:
            if case.cli:
                with _environment(ctx, case.env), contextlib.redirect_stderr(stderr), \
                        contextlib.redirect_stdout(io.StringIO()):
                    outcome["exit"] = case.call(ctx)
            else:
                outcome["result"] = case.call(ctx)
        except SystemExit as exc:  # argparse's refusals
            outcome["exit"] = exc.code
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(TIME_LIMIT)
    if worker.is_alive():
        return "hang"
    if case.accepts is not None:
        return _valid_outcome(case, ctx, outcome, stderr.getvalue())
    written = fingerprint(ctx) != before
    error = outcome.get("error")
    if case.cli and error is None:
        message = stderr.getvalue()
        if not outcome.get("exit"):
            return "half-written" if written else f"silent: exit 0, {message[:200]!r}"
        error_text = message
    elif error is None:
        return "half-written" if written else f"silent: returned {outcome.get('result')!r:.100}"
    else:
        error_text = str(error)
    if written:
        return f"half-written: {type(error).__name__}: {error_text[:200]}"
    if error is not None and not isinstance(error, CrmError):
        return f"unclear: {type(error).__name__}: {error_text[:200]}"
    if "Traceback" in error_text or not re.search(case.wrong, error_text) \
            or not ADVICE.search(error_text):
        return f"unclear: {type(error).__name__}: {error_text[:300]}"
    return "clear"


def _valid_outcome(case: Case, ctx: Ctx, outcome: dict[str, Any], stderr: str) -> str:
    """accepted, or how a valid input was mishandled: refused (unclear) or changed (silent)."""
    error = outcome.get("error")
    if error is not None:
        return f"unclear: refused a valid input: {type(error).__name__}: {str(error)[:300]}"
    result = outcome.get("exit") if case.cli else outcome.get("result")
    try:
        if case.accepts(result, ctx):
            return "accepted"
    except Exception as exc:  # a result of the wrong shape is a wrong result
        return f"silent: the result is not what was given ({type(exc).__name__}: {exc})"[:300]
    shown = stderr[-200:] if case.cli else repr(result)[:200]
    return f"silent: the result is not what was given: {shown}"


@contextlib.contextmanager
def _environment(ctx: Ctx, env: dict[str, str]):
    """The CLI runs with its own ports and home, so nothing it might start touches others."""
    saved = dict(os.environ)
    port, status_port = free_ports(2)
    ports = {"TIDB_PORT": str(port), "TIDB_STATUS_PORT": str(status_port)}
    os.environ.update({**ports, "TIDB_LOCAL_HOME": str(ctx.tmp / "cli-home")})
    for name in ("TIDB_URL", "TIDB_HOST"):
        os.environ.pop(name, None)
    os.environ.update({name: value.format(free=free_port()) for name, value in env.items()})
    try:
        yield
    finally:
        try:  # stop what a silently accepted `up` may have started there
            if not any(name in os.environ for name in ("TIDB_URL",)):
                server.stop_local_tidb(server.local_tidb(config.load_settings(env_file=None)))
        except CrmError:
            pass
        os.environ.clear()
        os.environ.update(saved)


def case_param(case: Case) -> Any:
    """`case` as a pytest parameter named by its id (xfail while its owner has not fixed it)."""
    marks = [pytest.mark.xfail(reason=f"not fixed yet in {case.owner}'s area", strict=False)] \
        if case.owner else []
    return pytest.param(case, id=case.id, marks=marks)


def swept(case: Case, ctx: Ctx) -> str:
    """Run `case` and record its outcome and time for the table: "clear" or what went wrong."""
    started = time.monotonic()
    OUTCOMES[case.id] = outcome = run_case(case, ctx)
    SECONDS[case.id] = round(time.monotonic() - started, 2)
    return outcome


def functions_swept(cases: list[Case]) -> set[str]:
    """The names of the functions (or `cli`) that `cases` give bad input to."""
    return {case.id.split("-")[0] for case in cases}


if __name__ == "__main__":  # python tests/bad_input.py REPORT.json: the table again
    import sys

    print(sweep_table({key: value for key, value in json.loads(Path(sys.argv[1]).read_text())
                       .items() if isinstance(value, int)}))

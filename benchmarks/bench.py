"""Loading and reading orders, every method side by side against the same local TiDB.

    make bench                      # N = BENCH_ROWS (default 1,000,000)
    BENCH_ROWS=100000 make bench

Slow loading methods run on a smaller N (their rate is what is compared). Every loader runs
in each of BENCH_ROUNDS (default 3) interleaved rounds, so all of them see the same server
conditions, and keeps its median; the spread over the rounds is printed too. The full-size
loads take turns at going first, and each load starts once the local tidb-server has gone
quiet after the one before (`settle`). Each read runs in
a fresh subprocess so that its peak memory (max RSS) is its own. Results are printed as a
table, written as JSON under benchmarks/results/, and summed up in one SUMMARY line.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Integer,
    MetaData,
    Table,
    insert,
)
from sqlalchemy.orm import Session, registry

from crm_helpers.analysis import resume
from crm_helpers.analysis.generate import default_user_count, generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import (
    analysis_engine,
    analysis_orders,
    analysis_users,
    reset_analysis_tables,
)
from crm_helpers.local.server import local_tidb_status

BENCH_DATABASE = "crm_bench"
RESULTS = Path(__file__).resolve().parent / "results"
READ_QUERY = "SELECT oid, uid, price, ordered_at FROM orders"


class OrderRow:
    """An ORM class over the analysis `orders` table, for ORM bulk INSERT."""

    def __init__(self, **values: object) -> None:
        for name, value in values.items():
            setattr(self, name, value)


class TutorialOrder(OrderRow):
    """The tutorial's Order: oid is AUTO_INCREMENT, so the ORM needs each new id back."""


# Same columns as `orders`, but ids come from TiDB, as in the tutorial.
tutorial_orders = Table(
    "tutorial_orders", MetaData(),
    Column("oid", BigInteger, primary_key=True, autoincrement=True),
    Column("uid", Integer, nullable=False, index=True),
    Column("price", Double, nullable=False),
    Column("ordered_at", DateTime, nullable=False),
)
mapper_registry = registry()
mapper_registry.map_imperatively(OrderRow, analysis_orders)
mapper_registry.map_imperatively(TutorialOrder, tutorial_orders)


@dataclass
class Measurement:
    kind: str  # "load" or "read"
    method: str
    rows: int
    seconds: float
    peak_mb: float | None = None
    frame_mb: float | None = None
    round_seconds: list[float] | None = None  # every round's time; `seconds` is their median

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def spread(self) -> str:
        """Slowest to fastest round, in rows/s."""
        if not self.round_seconds or len(self.round_seconds) < 2:
            return "-"
        return (f"{self.rows / max(self.round_seconds):,.0f}-"
                f"{self.rows / min(self.round_seconds):,.0f}")


# --- loading -------------------------------------------------------------------------------

def _records(orders: pd.DataFrame) -> list[dict]:
    return [{"oid": int(o), "uid": int(u), "price": float(p), "ordered_at": t.to_pydatetime()}
            for o, u, p, t in orders.itertuples(index=False, name=None)]


def load_orm_add_all(engine: Engine, orders: pd.DataFrame) -> None:
    """The tutorial's way: ORM objects without ids, session.add_all, one commit."""
    records = _records(orders)
    for record in records:
        del record["oid"]
    with Session(engine) as session:
        session.add_all([TutorialOrder(**record) for record in records])
        session.commit()


def load_orm_bulk_insert(engine: Engine, orders: pd.DataFrame) -> None:
    """ORM bulk INSERT: session.execute(insert(OrderRow), list_of_dicts), per 100k rows."""
    records = _records(orders)
    with Session(engine) as session:
        for start in range(0, len(records), 100_000):
            session.execute(insert(OrderRow), records[start:start + 100_000])
            session.commit()


def load_core_executemany(engine: Engine, orders: pd.DataFrame) -> None:
    """Core executemany, which PyMySQL rewrites into multi-row INSERTs, per 100k rows."""
    records = _records(orders)
    for start in range(0, len(records), 100_000):
        with engine.begin() as connection:
            connection.execute(insert(analysis_orders), records[start:start + 100_000])


def load_data_infile(engine: Engine, orders: pd.DataFrame) -> None:
    """Plain LOAD DATA LOCAL INFILE of one CSV per 100k rows, no checks, autocommit."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for start in range(0, len(orders), 100_000):
            with tempfile.NamedTemporaryFile("w", suffix=".csv") as csv:
                orders.iloc[start:start + 100_000].to_csv(
                    csv, header=False, index=False, date_format="%Y-%m-%d %H:%M:%S")
                csv.flush()
                cursor.execute("LOAD DATA LOCAL INFILE %s INTO TABLE orders "
                               "FIELDS TERMINATED BY ',' (oid, uid, price, ordered_at)",
                               (csv.name,))
                connection.commit()
    finally:
        connection.close()


#: Rows per INSERT for to_sql(method="multi"): 4 columns x 1,000 rows = 4,000 parameters, far
#: under MySQL's 65,535. In a trial of 500 to 10,000 rows per statement, bigger ones were no
#: faster: SQLAlchemy builds each statement in Python, which is what this method waits on.
TO_SQL_MULTI_CHUNKSIZE = 1_000


def load_to_sql(engine: Engine, orders: pd.DataFrame) -> None:
    """pandas' first choice: DataFrame.to_sql with its defaults (one executemany)."""
    orders.to_sql("orders", engine, if_exists="append", index=False)


def load_to_sql_multi(engine: Engine, orders: pd.DataFrame) -> None:
    """DataFrame.to_sql(method="multi"): multi-row INSERT statements of a fixed chunk size."""
    orders.to_sql("orders", engine, if_exists="append", index=False, method="multi",
                  chunksize=TO_SQL_MULTI_CHUNKSIZE)


def load_helper(engine: Engine, orders: pd.DataFrame) -> None:
    """crm_helpers.analysis.loader.load_frame: validation, resumable batches, warning checks."""
    load_frame(engine, analysis_orders, orders, progress=False)


def load_helper_without_read_back(engine: Engine, orders: pd.DataFrame) -> None:
    """load_frame without its read-back after each COMMIT: what that crash safety costs.

    On the local TiDB (unistore) the helper reads every batch back once it is committed (on a
    second connection, while later batches load), so that a SIGKILL of the server cannot lose
    acknowledged rows (benchmarks/crash_window.py).
    """
    kept, resume.READ_BACK_AFTER_COMMIT = resume.READ_BACK_AFTER_COMMIT, False
    try:
        load_frame(engine, analysis_orders, orders, progress=False)
    finally:
        resume.READ_BACK_AFTER_COMMIT = kept


LOADERS = {  # method: (function, share of N it runs on, table it fills)
    "orm_add_all": (load_orm_add_all, 0.01, "tutorial_orders"),
    "orm_bulk_insert": (load_orm_bulk_insert, 0.2, "orders"),
    "core_executemany": (load_core_executemany, 0.2, "orders"),
    "pandas_to_sql": (load_to_sql, 0.2, "orders"),
    "pandas_to_sql_multi": (load_to_sql_multi, 0.05, "orders"),
    "load_data_infile": (load_data_infile, 1.0, "orders"),
    "helper": (load_helper, 1.0, "orders"),
    "helper_no_read_back": (load_helper_without_read_back, 1.0, "orders"),
}
#: The helper's own rows; "best raw" is the best of the others.
HELPER_LOADS = {"helper", "helper_no_read_back"}


def server_pid() -> int | None:
    """The local tidb-server's pid, or None when the benchmark runs against another TiDB."""
    if os.environ.get("TIDB_URL"):
        return None
    return local_tidb_status().pid


def settle(pid: int | None, *, idle_cores: float = 0.1, window: float = 2.0,
           timeout: float = 120.0) -> float:
    """Wait until tidb-server has used under `idle_cores` CPUs for `window` s; seconds waited.

    After a big load (and the TRUNCATE before the next one) the server keeps working in the
    background for a while; a load started meanwhile shares the 2 cores with that work.
    """
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{pid}/stat")

    def cpu_seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    started = time.monotonic()
    try:
        before, since = cpu_seconds(), time.monotonic()
        while time.monotonic() - started < timeout:
            time.sleep(window)
            now, at = cpu_seconds(), time.monotonic()
            if (now - before) / (at - since) < idle_cores:
                break
            before, since = now, at
    except (FileNotFoundError, ProcessLookupError):
        pass  # no such process here (another machine's TiDB): nothing to wait for
    return time.monotonic() - started


def measure_loads(engine: Engine, orders: pd.DataFrame, rounds: int) -> list[Measurement]:
    results = []
    tutorial_orders.create(engine, checkfirst=True)
    timings: dict[str, list[float]] = {method: [] for method in LOADERS}
    pid = server_pid()
    # Interleaved rounds: every method once per round, so that each sees the same server
    # conditions (other work on the machine comes and goes); each keeps its median. The order
    # of the full-size loads rotates from round to round, so that over three rounds each comes
    # first, second and third once: a load right after another big one ran slower (the plain
    # stream took 40 s first in a round and 52 to 60 s third or fourth, loader_settings.py,
    # 2026-12-03), and in a fixed order the helper always followed the plain stream.
    small = [name for name, (_, share, _) in LOADERS.items() if share < 1.0]
    full = [name for name in LOADERS if name not in small]
    for round_number in range(rounds):
        print(f" round {round_number + 1} of {rounds}", flush=True)
        shift = round_number % len(full)
        for method in small + full[shift:] + full[:shift]:
            load, share, table = LOADERS[method]
            subset = orders.iloc[:max(1_000, int(len(orders) * share))]
            with engine.begin() as connection:
                connection.exec_driver_sql(f"TRUNCATE TABLE {table}")
            settled = settle(pid)
            started = time.perf_counter()
            load(engine, subset)
            seconds = time.perf_counter() - started
            with engine.connect() as connection:
                count = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
            assert count == len(subset), f"{method} loaded {count} of {len(subset)} rows"
            timings[method].append(seconds)
            # The machine may be shared: the load average says how busy it was.
            print(f"  load {method:<22} {len(subset):>9,} rows {seconds:8.2f} s "
                  f"{len(subset) / seconds:>12,.0f} rows/s  load average "
                  f"{os.getloadavg()[0]:.2f}, server settled in {settled:.0f} s", flush=True)
    for method, (_, share, _) in LOADERS.items():
        rows = max(1_000, int(len(orders) * share))
        results.append(Measurement("load", method, rows, statistics.median(timings[method]),
                                   round_seconds=timings[method]))
    print_round_ratios(results)
    return results


def print_round_ratios(loads: list[Measurement]) -> None:
    """The helper against the others round by round: how much the comparison itself varies."""
    by_method = {m.method: m for m in loads}
    helper = by_method["helper"]
    for name, others in (("best_raw", [m for m in loads if m.method not in HELPER_LOADS]),
                         ("to_sql", [by_method["pandas_to_sql"],
                                     by_method["pandas_to_sql_multi"]])):
        ratios = [helper.rows / helper_seconds
                  / max(other.rows / other.round_seconds[index] for other in others)
                  for index, helper_seconds in enumerate(helper.round_seconds)]
        print(f"  load_helper_vs_{name} per round: "
              + ", ".join(f"{ratio:.2f}" for ratio in ratios)
              + f" (median {statistics.median(ratios):.2f}, "
                f"spread {min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    costs = [helper_seconds / without for helper_seconds, without in zip(
        helper.round_seconds, by_method["helper_no_read_back"].round_seconds, strict=True)]
    print("  read_back_cost per round: " + ", ".join(f"{cost:.2f}" for cost in costs)
          + f" (median {statistics.median(costs):.2f})", flush=True)


# --- reading (each in its own process) -----------------------------------------------------

READERS = ["pandas_read_sql", "pymysql_fetchall", "connectorx_arrow",
           "connectorx_partitioned", "helper", "helper_chunked"]


def _read_in_child(method: str, url: str) -> dict:
    """Run one read method; returns rows, seconds, peak RSS growth and the frame's size."""
    import connectorx
    import pymysql
    from sqlalchemy import create_engine

    from crm_helpers.analysis.reading import read_frame

    engine = create_engine(url)
    with engine.connect() as connection:  # connect (and import) before the baseline
        connection.exec_driver_sql("SELECT 1")
    cx_url = f"mysql://root:@{engine.url.host}:{engine.url.port}/{engine.url.database}"
    gc.collect()
    sampler = RssSampler()
    started = time.perf_counter()
    if method == "pandas_read_sql":
        with engine.connect() as connection:
            frame = pd.read_sql(READ_QUERY, connection)
    elif method == "pymysql_fetchall":
        raw = pymysql.connect(host=engine.url.host, port=engine.url.port, user="root",
                              database=engine.url.database)
        with raw, raw.cursor() as cursor:
            cursor.execute(READ_QUERY)
            frame = pd.DataFrame.from_records(cursor.fetchall(),
                                              columns=["oid", "uid", "price", "ordered_at"])
    elif method == "connectorx_arrow":
        frame = connectorx.read_sql(cx_url, READ_QUERY, return_type="arrow").to_pandas()
    elif method == "connectorx_partitioned":
        frame = connectorx.read_sql(cx_url, READ_QUERY, return_type="arrow",
                                    partition_on="oid", partition_num=2).to_pandas()
    elif method == "helper":
        frame = read_frame(engine, READ_QUERY)
    elif method == "helper_chunked":
        rows = 0
        biggest = None
        for chunk in read_frame(engine, READ_QUERY, chunksize=100_000):
            rows += len(chunk)
            biggest = chunk if biggest is None or len(chunk) > len(biggest) else biggest
        frame = biggest
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    return {"rows": rows if method == "helper_chunked" else len(frame), "seconds": seconds,
            "peak_mb": peak / 2**20, "frame_mb": frame.memory_usage(deep=True).sum() / 2**20}


class RssSampler:
    """Samples this process's resident memory every millisecond; stop() gives the peak growth.

    (ru_maxrss cannot serve: imports push that high-water mark above what a read needs.)
    """

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._baseline = self._rss()
        self._peak = self._baseline
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _run(self) -> None:
        while self._running:
            self._peak = max(self._peak, self._rss())
            time.sleep(0.001)

    def stop(self) -> int:
        self._running = False
        self._thread.join()
        return max(self._peak, self._rss()) - self._baseline


def measure_reads(engine: Engine) -> list[Measurement]:
    results = []
    url = engine.url.render_as_string(hide_password=False)
    for method in READERS:
        output = subprocess.run([sys.executable, __file__, "--read", method, url],
                                capture_output=True, text=True, check=True).stdout
        values = json.loads(output.strip().splitlines()[-1])
        result = Measurement("read", method, **values)
        results.append(result)
        print(f"  read {method:<22} {result.rows:>9,} rows {result.seconds:8.2f} s "
              f"{result.rows_per_second:>12,.0f} rows/s  peak {result.peak_mb:7.1f} MB "
              f"(frame {result.frame_mb:6.1f} MB)", flush=True)
    return results


# --- report --------------------------------------------------------------------------------

def summary(results: list[Measurement]) -> dict[str, float]:
    rate = {(r.kind, r.method): r.rows_per_second for r in results}
    best_raw = max(v for (kind, method), v in rate.items()
                   if kind == "load" and method not in HELPER_LOADS)
    return {
        "load_helper_vs_best_raw": rate["load", "helper"] / best_raw,
        "load_helper_vs_orm": rate["load", "helper"] / rate["load", "orm_add_all"],
        "read_helper_vs_read_sql": rate["read", "helper"] / rate["read", "pandas_read_sql"],
        # Against the faster of pandas' two to_sql flavours, so the claim is the modest one.
        "load_helper_vs_to_sql": rate["load", "helper"] / max(
            rate["load", "pandas_to_sql"], rate["load", "pandas_to_sql_multi"]),
        # How much faster the helper is without its read-back after COMMIT (local TiDB only).
        "read_back_cost": rate["load", "helper_no_read_back"] / rate["load", "helper"],
    }


def print_table(results: list[Measurement]) -> None:
    frame = pd.DataFrame([{**asdict(r), "rows_per_s": round(r.rows_per_second),
                           "rows_per_s_spread": r.spread} for r in results])
    frame = frame.drop(columns="round_seconds")
    frame["seconds"] = frame["seconds"].round(2)
    for column in ("peak_mb", "frame_mb"):
        frame[column] = frame[column].round(1)
    print(frame.to_string(index=False, na_rep="-"))


def _set_auto_analyze(engine: Engine, value: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"SET GLOBAL tidb_enable_auto_analyze = {value}")


def main() -> int:
    n_rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    print(f"Benchmark: {n_rows:,} orders, {rounds} rounds of loads, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    engine = analysis_engine(database=BENCH_DATABASE)
    reset_analysis_tables(engine)
    orders = generate_orders(n_rows)
    load_frame(engine, analysis_users, generate_users(default_user_count(n_rows)),
               progress=False)
    with engine.connect() as connection:
        auto_analyze = connection.exec_driver_sql(
            "SELECT @@GLOBAL.tidb_enable_auto_analyze").scalar_one()
    # Background statistics jobs after each big load would slow whichever method runs next.
    _set_auto_analyze(engine, "OFF")
    try:
        results = measure_loads(engine, orders, rounds)  # leaves the helper's load in place
        results += measure_reads(engine)
    finally:
        _set_auto_analyze(engine, "ON" if str(auto_analyze) in ("1", "ON") else "OFF")
    print_table(results)
    ratios = summary(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"bench-{n_rows}-{stamp}.json"
    path.write_text(json.dumps({
        "rows": n_rows, "rounds": rounds, "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "when": stamp,
        "load_average_at_end": os.getloadavg(),
        "results": [{**asdict(r), "rows_per_second": r.rows_per_second} for r in results],
        "summary": ratios}, indent=2))
    print(f"Results written to {path}")
    print("SUMMARY " + " ".join(f"{name}={value:.2f}" for name, value in ratios.items()))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--read":
        print(json.dumps(_read_in_child(sys.argv[2], sys.argv[3])))
        sys.exit(0)
    sys.exit(main())

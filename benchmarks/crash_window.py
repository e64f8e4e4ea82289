"""Does reading a batch back right after its commit close the local store's crash window?

    .venv/bin/python benchmarks/crash_window.py              # 5 runs each way, 100,000 rows
    .venv/bin/python benchmarks/crash_window.py --runs 3 --rows 50000
    .venv/bin/python benchmarks/crash_window.py --cost-rows 300000 --cost-rounds 3
    .venv/bin/python benchmarks/crash_window.py --one-step   # commits in one step (1PC)

unistore keeps a transaction's locks in memory. With TiDB's commit settings on unistore (16 KB
commit batches, no 1PC) TiDB commits all keys but the first batch in the background after
COMMIT has returned. `--one-step` sets the throwaway server to one commit batch per region and
1PC (`ONE_STEP_SETTINGS`), so that a batch is written whole before COMMIT returns; the loader
then skips its read-back. Each run starts a throwaway local TiDB (its own folder and free
ports), loads users, lets them settle, then loads one batch of orders with
`load_frame` and SIGKILLs tidb-server the moment it returns: once with the read-back after
the commit (`resume.READ_BACK_AFTER_COMMIT`, run by `confirm.Confirmer`) and once without.
It then starts
the server again and counts the orders' rows and index entries and runs ADMIN CHECK TABLE.
With --cost-rows, it instead measures what the safety costs, side by side on one server:
`load_frame` of that many orders with and without the read-back (alternating, fresh tables
each round), the re-run that finds everything loaded (it runs ADMIN CHECK TABLE first), and
ADMIN CHECK TABLE alone; medians over --cost-rounds.
Results are printed and written as JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from crm_helpers.analysis import resume
from crm_helpers.analysis.generate import default_user_count, generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import analysis_engine, analysis_orders, analysis_users
from crm_helpers.config import load_settings
from crm_helpers.engines import tidb_engine
from crm_helpers.local.recovery import check_table
from crm_helpers.local.server import LocalTiDB, local_tidb_status, start_local_tidb, stop_local_tidb

RESULTS = Path(__file__).parent / "results"


def two_free_ports() -> tuple[int, int]:
    """Two different TCP ports on 127.0.0.1 that nothing listens on right now."""
    # Both probes stay bound until both ports are chosen, or the OS may hand out one twice.
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return first.getsockname()[1], second.getsockname()[1]


#: Commit in one step where possible: one commit batch per region (TiDB's largest; the default
#: is 16 KB) and 1PC (on by default on a TiKV cluster, off on unistore).
ONE_STEP_SETTINGS = {"tidb_txn_commit_batch_size": 1 << 30, "tidb_enable_1pc": "ON"}


def set_globals(local: LocalTiDB, values: dict[str, int | str]) -> None:
    """SET GLOBAL each of `values` on the local TiDB (root without a password)."""
    engine = tidb_engine(local.url())
    try:
        with engine.connect() as connection:
            for name, value in values.items():
                connection.exec_driver_sql(f"SET GLOBAL {name} = %s", (value,))
    finally:
        engine.dispose()


@contextmanager
def throwaway_tidb(home: Path, database: str,
                   one_step: bool = False) -> Iterator[tuple[LocalTiDB, Engine]]:
    """A fresh local TiDB in `home` on free ports, with the analysis tables in `database`.

    The server is stopped on leaving, also after an error: its folder is a temporary one.
    """
    port, status_port = two_free_ports()
    local = LocalTiDB(home=home, port=port, status_port=status_port)
    try:
        start_local_tidb(local, fresh=True)
        if one_step:
            set_globals(local, ONE_STEP_SETTINGS)
        # TIDB_HOST: the loader's own analysis_engine uses this server and starts nothing.
        settings = load_settings(environ={"TIDB_HOST": local.host, "TIDB_PORT": str(local.port)},
                                 env_file=None)
        yield local, analysis_engine(settings, database=database)
    finally:
        stop_local_tidb(local)


def one_run(read_back: bool, rows: int, home: Path, one_step: bool) -> dict:
    """Load one batch of `rows` orders, SIGKILL the server as the load returns, count survivors."""
    with throwaway_tidb(home, "crash", one_step) as (local, engine):
        return _kill_after_batch(local, engine, read_back, rows) | {"one_step": one_step}


def _kill_after_batch(local: LocalTiDB, engine: Engine, read_back: bool, rows: int) -> dict:
    pid = int(local.pid_file.read_text())
    n_users = default_user_count(rows)
    load_frame(engine, analysis_users, generate_users(n_users), progress=False)
    time.sleep(2.0)  # everything before the measured batch is on disk well before the kill
    orders = generate_orders(rows, n_users)
    resume.READ_BACK_AFTER_COMMIT = read_back
    try:
        # The whole loader (a batch of `rows`): it returns once its batches count as loaded.
        report = load_frame(engine, analysis_orders, orders, batch_rows=rows, progress=False)
        os.kill(pid, signal.SIGKILL)
    finally:
        resume.READ_BACK_AFTER_COMMIT = True
    load_seconds = report.seconds
    while local_tidb_status(local).running:
        time.sleep(0.05)
    engine.dispose()

    messages: list[str] = []
    start_local_tidb(local, report=messages.append)
    engine = tidb_engine(local.url("crash"))
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one()
        indexed = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM orders USE INDEX (ix_orders_uid)").scalar_one()
        health = check_table(connection, "crash", "orders")
    engine.dispose()
    return {"read_back": read_back, "rows": rows, "rows_after_restart": stored,
            "index_entries_after_restart": indexed, "rows_lost": rows - stored,
            "admin_check": health.problem or "ok", "load_seconds": round(load_seconds, 3),
            "up_reported": messages}


def cost(rows: int, rounds: int, home: Path) -> dict:
    """Median seconds of loads with and without read-back, a no-op re-run, ADMIN CHECK TABLE."""
    with throwaway_tidb(home, "cost") as (_, engine):
        return _cost_on(engine, rows, rounds)


def _cost_on(engine: Engine, rows: int, rounds: int) -> dict:
    n_users = default_user_count(rows)
    load_frame(engine, analysis_users, generate_users(n_users), progress=False)
    orders = generate_orders(rows, n_users)
    times: dict[str, list[float]] = {"load, no read-back": [], "load, read-back": [],
                                     "re-run (all loaded)": [], "ADMIN CHECK TABLE orders": []}
    try:
        for _ in range(rounds):
            for read_back in (False, True):
                with engine.begin() as connection:
                    connection.exec_driver_sql("TRUNCATE TABLE orders")
                resume.READ_BACK_AFTER_COMMIT = read_back
                report = load_frame(engine, analysis_orders, orders, progress=False)
                times["load, read-back" if read_back else "load, no read-back"].append(
                    report.seconds)
            started = time.monotonic()
            load_frame(engine, analysis_orders, orders, progress=False)
            times["re-run (all loaded)"].append(time.monotonic() - started)
            started = time.monotonic()
            with engine.connect() as connection:
                connection.exec_driver_sql("ADMIN CHECK TABLE orders")
            times["ADMIN CHECK TABLE orders"].append(time.monotonic() - started)
    finally:
        resume.READ_BACK_AFTER_COMMIT = True
        engine.dispose()
    return {name: {"median_s": round(statistics.median(values), 2),
                   "rounds_s": [round(v, 2) for v in values]} for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs with and without read-back")
    parser.add_argument("--rows", type=int, default=100_000, help="orders in the batch")
    parser.add_argument("--cost-rows", type=int, help="measure the cost on this many orders")
    parser.add_argument("--cost-rounds", type=int, default=3)
    parser.add_argument("--one-step", action="store_true",
                        help="set the server to commit in one step (ONE_STEP_SETTINGS)")
    args = parser.parse_args()
    if args.cost_rows:
        with tempfile.TemporaryDirectory(prefix="crash-cost-") as folder:
            measured = cost(args.cost_rows, args.cost_rounds, Path(folder))
        for name, values in measured.items():
            print(f"{name:28} median {values['median_s']:7.2f} s  rounds {values['rounds_s']}")
        _write("crash_cost", {"argv": sys.argv[1:], "rows": args.cost_rows, "cost": measured})
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="crash-window-") as folder:
        for run in range(args.runs):
            for read_back in (False, True):
                result = one_run(read_back, args.rows, Path(folder) / f"run{run}-{read_back}",
                                 args.one_step)
                results.append(result)
                print(f"run {run + 1} read_back={read_back!s:5} rows after restart "
                      f"{result['rows_after_restart']:>7,} of {args.rows:,} "
                      f"(index {result['index_entries_after_restart']:,}), "
                      f"ADMIN CHECK: {result['admin_check'][:60]}", flush=True)
    for read_back in (False, True):
        mine = [r for r in results if r["read_back"] is read_back]
        lost = [r["rows_lost"] for r in mine]
        damaged = sum(r["admin_check"] != "ok" for r in mine)
        print(f"SUMMARY read_back={read_back}: {sum(1 for n in lost if n)} of {len(mine)} runs "
              f"lost rows (lost per run: {lost}); {damaged} runs with ADMIN CHECK failing")
    _write("crash_window", {"argv": sys.argv[1:], "results": results})


def _write(prefix: str, data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{prefix}-{stamp}.json"
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()

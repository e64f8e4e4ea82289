"""`load_frame`'s batch size and worker count against the plain `LOAD DATA` stream, side by side.

    .venv/bin/python benchmarks/loader_settings.py [--rows 1000000] [--rounds 3]
        [--settings 3x100000,2x100000,4x100000,3x200000,3x50000]

Each setting is WORKERSxBATCH_ROWS. Every round loads the same orders once per setting and once
as the plain single-stream `LOAD DATA` of `bench.py`, in a rotated order, into the local TiDB
the environment names (database crm_bench, emptied between loads); each load starts once
tidb-server has gone quiet after the one before (`bench.settle`). Printed: each setting's
median time and its ratio to the plain stream round by round; JSON goes to benchmarks/results/.
This is how the loader's defaults (`DEFAULT_WORKERS`, `DEFAULT_BATCH_ROWS`) are chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime

from bench import (
    BENCH_DATABASE,
    RESULTS,
    _set_auto_analyze,
    load_data_infile,
    server_pid,
    settle,
)

from crm_helpers.analysis.generate import default_user_count, generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import (
    analysis_engine,
    analysis_orders,
    analysis_users,
    reset_analysis_tables,
)

PLAIN = "plain LOAD DATA"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default="3x100000,2x100000,4x100000,3x200000,3x50000")
    args = parser.parse_args()
    settings = [tuple(int(part) for part in text.split("x")) for text in args.settings.split(",")]
    names = [PLAIN] + [f"{workers}x{batch_rows}" for workers, batch_rows in settings]
    engine = analysis_engine(database=BENCH_DATABASE)
    reset_analysis_tables(engine)
    orders = generate_orders(args.rows)
    load_frame(engine, analysis_users, generate_users(default_user_count(args.rows)),
               progress=False)
    with engine.connect() as connection:
        auto_analyze = connection.exec_driver_sql(
            "SELECT @@GLOBAL.tidb_enable_auto_analyze").scalar_one()
    # A background ANALYZE after one load would slow whichever load comes next.
    _set_auto_analyze(engine, "OFF")
    seconds: dict[str, list[float]] = {name: [] for name in names}
    pid = server_pid()
    try:
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for name in order:
                with engine.begin() as connection:
                    connection.exec_driver_sql("TRUNCATE TABLE orders")
                settle(pid)
                started = time.perf_counter()
                if name == PLAIN:
                    load_data_infile(engine, orders)
                else:
                    workers, batch_rows = (int(part) for part in name.split("x"))
                    load_frame(engine, analysis_orders, orders, workers=workers,
                               batch_rows=batch_rows, progress=False)
                seconds[name].append(time.perf_counter() - started)
                print(f" round {round_ + 1} {name:>16} {seconds[name][-1]:7.2f} s "
                      f"{args.rows / seconds[name][-1]:>9,.0f} rows/s  load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
    finally:
        _set_auto_analyze(engine, "ON" if str(auto_analyze) in ("1", "ON") else "OFF")
    print(f"\n{args.rows:,} orders, {args.rounds} rounds; medians, and the speed against the "
          "plain stream round by round:")
    for name in names:
        ratios = [plain / mine for plain, mine in zip(seconds[PLAIN], seconds[name], strict=True)]
        print(f"  {name:>16}: {statistics.median(seconds[name]):7.2f} s  "
              + " ".join(f"{ratio:.2f}" for ratio in ratios)
              + f" (median {statistics.median(ratios):.2f})")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"loader-settings-{args.rows}-{stamp}.json"
    out.write_text(json.dumps({"rows": args.rows, "rounds": args.rounds,
                               "machine": platform.machine(), "cpus": os.cpu_count(),
                               "seconds": seconds}, indent=1))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

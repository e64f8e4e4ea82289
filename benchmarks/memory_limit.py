"""What bounding the local TiDB's memory costs the loader: load speed and peak memory per bound.

    python benchmarks/memory_limit.py [--rows 1000000] [--rounds 3] [--limits 0,2GB,1GB]

Each round starts a fresh local TiDB per bound (TIDB_SERVER_MEMORY_LIMIT, which
`start_local_tidb` sets as `tidb_server_memory_limit`; "0" is TiDB's own default of no bound
below 80% of the machine), loads the same generated users and orders with `load_frame`, and
samples the server's resident memory while it loads. The bounds take turns within a round,
in a rotated order, so a busy moment of the machine does not fall on one bound only. Printed:
each bound's median load time and peak memory, and the round by round time ratio to no bound;
JSON goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from crash_window import RESULTS, throwaway_tidb

from crm_helpers.analysis.generate import default_user_count, generate_orders, generate_users
from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import analysis_orders, analysis_users
from crm_helpers.local.server import local_tidb_status
from crm_helpers.local.server_config import MEMORY_LIMIT_VARIABLE


def resident_mb(pid: int) -> float:
    """The process's resident memory now, in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_load(limit: str, users, orders, home: Path) -> dict:
    """A fresh server bounded by `limit`, one load of `orders`; seconds and peak memory."""
    os.environ[MEMORY_LIMIT_VARIABLE] = limit
    with throwaway_tidb(home, "memory") as (local, engine):
        pid = local_tidb_status(local).pid
        with engine.connect() as connection:
            applied = connection.exec_driver_sql(
                "SELECT @@GLOBAL.tidb_server_memory_limit").scalar_one()
        peak = [resident_mb(pid)]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                peak.append(resident_mb(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        load_frame(engine, analysis_users, users, progress=False)
        load_frame(engine, analysis_orders, orders, progress=False)
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        engine.dispose()
    return {"limit": limit, "applied": applied, "seconds": round(seconds, 2),
            "peak_mb": round(max(peak)), "load_average": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limits", default="0,2GB,1GB")
    args = parser.parse_args()
    limits = args.limits.split(",")
    n_users = default_user_count(args.rows)
    users, orders = generate_users(n_users), generate_orders(args.rows, n_users)
    runs = []
    with tempfile.TemporaryDirectory(prefix="crm-memory-") as folder:
        for round_ in range(args.rounds):
            order = limits[round_ % len(limits):] + limits[:round_ % len(limits)]
            for limit in order:
                run = one_load(limit, users, orders, Path(folder) / f"r{round_}-{limit}")
                run["round"] = round_ + 1
                runs.append(run)
                print(json.dumps(run), flush=True)
    print(f"\n{args.rows:,} orders, {args.rounds} rounds, medians:")
    baseline = limits[0]
    for limit in limits:
        mine = [run for run in runs if run["limit"] == limit]
        ratios = [run["seconds"] / next(other["seconds"] for other in runs
                                        if other["limit"] == baseline
                                        and other["round"] == run["round"]) for run in mine]
        print(f"  {limit:>5}: {statistics.median(r['seconds'] for r in mine):6.1f} s, peak "
              f"{statistics.median(r['peak_mb'] for r in mine):6.0f} MB, time vs {baseline}: "
              + " ".join(f"{ratio:.2f}" for ratio in ratios)
              + f" (median {statistics.median(ratios):.2f})")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"memory-limit-{args.rows}-{stamp}.json"
    out.write_text(json.dumps({"rows": args.rows, "machine": platform.machine(),
                               "cores": os.cpu_count(), "runs": runs}, indent=1))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`crm-tidb`: start, stop and inspect the project's local TiDB from a terminal."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from crm_helpers.config import load_settings, mask_url
from crm_helpers.errors import CrmError
from crm_helpers.server import (
    ensure_tidb,
    local_tidb,
    local_tidb_status,
    start_local_tidb,
    stop_local_tidb,
)
from crm_helpers.tidb_build import tidb_server_binary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `crm-tidb` command; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="crm-tidb", description="Manage the local TiDB used by the CRM notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local TiDB (builds tidb-server the first time)")
    up.add_argument("--port", type=int, help="SQL port (default: TIDB_PORT or 4000)")
    up.add_argument("--status-port", type=int,
                    help="HTTP status port (default: TIDB_STATUS_PORT or 10080)")
    up.add_argument("--fresh", action="store_true", help="start from empty data")
    commands.add_parser("down", help="stop the local TiDB")
    commands.add_parser("status", help="say whether the local TiDB runs")
    commands.add_parser("url", help="print the connection URL (password masked)")
    commands.add_parser("build", help="build (or find the cached) tidb-server binary")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except CrmError as exc:
        print(f"crm-tidb {args.command}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.command == "up" and (args.port or args.status_port):
        settings = replace(settings, port=args.port or settings.port,
                           status_port=args.status_port or settings.status_port)
    if args.command == "url":
        print(mask_url(settings.url(settings.database)))
        return 0
    if args.command == "build":
        print(tidb_server_binary())
        return 0
    if settings.external and args.command in ("up", "down", "status"):
        if args.command == "up":
            ensure_tidb(settings)
        print(f"TIDB_URL / TIDB_HOST point at {mask_url(settings.url())}: "
              "nothing local is started or stopped.")
        return 0
    local = local_tidb(settings)
    if args.command == "up":
        already = None if args.fresh else local_tidb_status(local)
        started = time.monotonic()
        start_local_tidb(local, fresh=args.fresh)
        if already is not None and already.running:
            print(f"TiDB was already running (pid {already.pid}) at {mask_url(local.url())}; "
                  "nothing was started.")
        else:
            print(f"TiDB is ready in {time.monotonic() - started:.1f} s at "
                  f"{mask_url(local.url())}")
        print(f"Data and logs: {local.home}")
    elif args.command == "down":
        stopped = stop_local_tidb(local)
        print("Local TiDB stopped." if stopped else "Local TiDB was not running.")
    elif args.command == "status":
        status = local_tidb_status(local)
        print(status)
        return 0 if status.running else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

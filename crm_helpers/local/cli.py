"""`crm-tidb`: start, stop and inspect the project's local TiDB from a terminal."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from crm_helpers.config import check_port, load_settings, mask_url
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import ConfigError, CrmError, TiDBNotRunning
from crm_helpers.local.build import tidb_server_binary
from crm_helpers.local.recovery import check_tables, damaged_tables, record_damage, repair_tables
from crm_helpers.local.server import (
    ensure_tidb,
    local_tidb,
    local_tidb_status,
    start_local_tidb,
    stop_local_tidb,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `crm-tidb` command; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="crm-tidb", description="Manage the local TiDB used by the CRM notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local TiDB (builds tidb-server the first time)")
    # Ports are checked by check_port, so a bad one gets the project's message, not argparse's.
    up.add_argument("--port", help="SQL port (default: TIDB_PORT or 4000)")
    up.add_argument("--status-port",
                    help="HTTP status port (default: TIDB_STATUS_PORT or 10080)")
    up.add_argument("--fresh", action="store_true", help="start from empty data")
    commands.add_parser("down", help="stop the local TiDB cleanly (waits for its shutdown)")
    commands.add_parser("status", help="say whether the local TiDB runs")
    commands.add_parser("check", help="check every project table (ADMIN CHECK TABLE)")
    commands.add_parser("repair", help="repair tables whose indexes and rows disagree")
    commands.add_parser("url", help="print the connection URL (password masked)")
    commands.add_parser("build", help="build (or find the cached) tidb-server binary")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except CrmError as exc:
        print(f"crm-tidb {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command in ("down", "up"):
            print(f"crm-tidb {args.command}: stopped waiting. A tidb-server that was shutting "
                  "down goes on by itself; `crm-tidb down` waits for it again, "
                  "`crm-tidb status` shows whether it still runs.", file=sys.stderr)
        return 130


def _check_external_up(args: argparse.Namespace, settings) -> None:
    """`up` with TIDB_URL or TIDB_HOST set starts nothing: check that that TiDB answers."""
    if args.port is not None or args.status_port is not None:
        raise ConfigError("--port and --status-port choose the local TiDB's ports, but TIDB_URL "
                          "or TIDB_HOST is set, so `crm-tidb up` starts nothing local: unset "
                          "them to start the local TiDB, or drop the options.")
    try:
        ensure_tidb(settings)
    except TiDBNotRunning as exc:
        raise TiDBNotRunning(f"TIDB_URL or TIDB_HOST is set, so `crm-tidb up` starts nothing "
                             f"local: it only checks that that TiDB answers, and it does not. "
                             "Unset TIDB_URL and TIDB_HOST to use the local TiDB. "
                             f"{exc}", exc) from None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.command == "up" and args.port is not None:
        settings = replace(settings, port=check_port(args.port, "--port"))
    if args.command == "up" and args.status_port is not None:
        settings = replace(settings, status_port=check_port(args.status_port, "--status-port"))
    if args.command == "url":
        print(mask_url(settings.url(settings.database)))
        return 0
    if args.command == "build":
        print(tidb_server_binary())
        return 0
    if args.command in ("check", "repair"):
        return _check_or_repair(args.command, settings)
    if settings.external and args.command in ("up", "down", "status"):
        if args.command == "up":
            _check_external_up(args, settings)
        print(f"TIDB_URL / TIDB_HOST point at {mask_url(settings.url())}: "
              "nothing local is started or stopped.")
        return 0
    local = local_tidb(settings)
    if args.command == "up":
        already = None if args.fresh else local_tidb_status(local)
        started = time.monotonic()
        start_local_tidb(local, fresh=args.fresh, report=_say)
        if already is not None and already.running and already.pid == local_tidb_status(local).pid:
            print(f"TiDB was already running (pid {already.pid}) at {mask_url(local.url())}; "
                  "nothing was started.")
        else:
            print(f"TiDB is ready in {time.monotonic() - started:.1f} s at "
                  f"{mask_url(local.url())}")
        print(f"Data and logs: {local.home}")
        _print_damage(local)
        if damaged_tables(local) and sys.stdin.isatty() and sys.stdout.isatty():
            answer = input("Repair them now, like `crm-tidb repair`? [y/N] ")
            if answer.strip().lower() in ("y", "yes"):
                return _check_or_repair("repair", settings)
    elif args.command == "down":
        stopped = stop_local_tidb(local, report=_say)
        print("Local TiDB stopped cleanly." if stopped else "Local TiDB was not running.")
    elif args.command == "status":
        status = local_tidb_status(local)
        print(status)
        _print_damage(local)
        return 0 if status.running else 3
    return 0


def _print_damage(local) -> None:
    damaged = damaged_tables(local)
    if damaged:
        print(f"Found damaged after the last unclean stop: {', '.join(damaged)}. Repair with "
              "`crm-tidb repair`, then re-run the loads that wrote them (`crm-tidb check` "
              "checks again).")


def _check_or_repair(command: str, settings) -> int:
    """`check`: ADMIN CHECK TABLE on every project table; `repair`: fix the damaged ones."""
    if not settings.external:
        start_local_tidb(local_tidb(settings), report=_say)
    engine = tidb_engine(settings.url())
    try:
        results = check_tables(engine, report=_say)
        damaged = [result for result in results if not result.ok]
        repairs = repair_tables(engine, damaged, report=_say) if command == "repair" else []
    finally:
        engine.dispose()
    if not settings.external:
        record_damage(local_tidb(settings), [r.name for r in repairs if r.problem]
                      if command == "repair" else [r.name for r in damaged])
    for result in repairs:
        print(result)
    if command == "check":
        for result in damaged:
            print(f"{result.name}: DAMAGED ({result.problem})")
        print(f"{len(results) - len(damaged)} of {len(results)} tables consistent."
              + (" Repair with `crm-tidb repair`." if damaged else ""))
        return 1 if damaged else 0
    still = [result for result in repairs if result.problem]
    if not repairs:
        print(f"All {len(results)} tables are consistent; nothing to repair.")
    elif not still:
        print("Repaired. Rows lost in the crash are not brought back: re-run the loads that "
              "wrote these tables (load_frame / load_generated resume and rewrite them).")
    else:
        print("Some tables are still damaged: drop and reload them, or start from empty data "
              "with `crm-tidb up --fresh`.")
    return 1 if still else 0


if __name__ == "__main__":
    sys.exit(main())

"""The local tidb-server's configuration file and environment, written for one folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm_helpers.local.server import LocalTiDB

# The only variables tidb-server inherits: no password or token of ours reaches its environment.
SERVER_ENVIRONMENT = ("PATH", "HOME", "TZ", "LANG", "LC_ALL", "GOMAXPROCS", "GOMEMLIMIT",
                      "GOGC", "GOTRACEBACK")


def server_environment() -> dict[str, str]:
    """The part of this process's environment that tidb-server may inherit."""
    return {name: os.environ[name] for name in SERVER_ENVIRONMENT if name in os.environ}


def write_config(local: LocalTiDB) -> Path:
    """A tidb.toml that keeps every file this server writes inside `local.home`."""
    config = local.home / "tidb.toml"
    # No self-signed certificate of TiDB's own (auto-tls): TLS only with the one given.
    security = "[security]\nauto-tls = false\n"
    if local.tls is not None:
        security += (f"ssl-cert = {toml_string(local.tls.cert)}\n"
                     f"ssl-key = {toml_string(local.tls.key)}\n")
    config.write_text(
        f"temp-dir = {toml_string(local.home / 'tmp')}\n"
        f"tmp-storage-path = {toml_string(local.home / 'tmp-storage')}\n"
        "[performance]\n"
        # Row counts of new writes reach the statistics every 20 leases plus a random offset
        # of up to a minute: 10 to 70 s instead of 60 to 120 s, so an ANALYZE after a bulk
        # load need not wait long (crm_helpers.analysis.statistics).
        'stats-lease = "500ms"\n'
        + (f"txn-total-size-limit = {int(local.txn_total_size_limit)}\n"
           if local.txn_total_size_limit is not None else "")
        + "[log]\n"
        f"slow-query-file = {toml_string(local.home / 'tidb-slow.log')}\n"
        "[log.file]\n"
        f"filename = {toml_string(local.log_file)}\n"
        + security,
        encoding="utf-8",
    )
    return config


def toml_string(path: Path) -> str:
    """`path` as a TOML basic string: backslash, double quote and control characters escaped."""
    text = str(path).replace("\\", "\\\\").replace('"', '\\"')
    text = "".join(f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return f'"{text}"'

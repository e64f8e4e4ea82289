"""The local tidb-server's configuration file and environment, written for one folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from crm_helpers.errors import ConfigError

if TYPE_CHECKING:
    from crm_helpers.local.server import LocalTiDB

# The only variables tidb-server inherits: no password or token of ours reaches its environment.
SERVER_ENVIRONMENT = ("PATH", "HOME", "TZ", "LANG", "LC_ALL", "GOMAXPROCS", "GOMEMLIMIT",
                      "GOGC", "GOTRACEBACK")


#: The local TiDB's memory bound (TiDB's `tidb_server_memory_limit`), set at each start unless
#: TIDB_SERVER_MEMORY_LIMIT gives another ("3GB"; "80%", TiDB's own default share of the
#: machine; "0": no bound at all). A 1,000,000-order load took TiDB to 4.5 GB unbounded,
#: 11.8 GB when its disk filled; what the bound costs the loader: benchmarks/memory_limit.py.
DEFAULT_SERVER_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_VARIABLE = "TIDB_SERVER_MEMORY_LIMIT"
# TiDB's units (varsutil.parseByteSize), which it reads in these capitals only.
_UNITS = {"": 1, "KB": 1 << 10, "KIB": 1 << 10, "MB": 1 << 20, "MIB": 1 << 20,
          "GB": 1 << 30, "GIB": 1 << 30, "TB": 1 << 40, "TIB": 1 << 40}
_SPELLING = {"KIB": "KiB", "MIB": "MiB", "GIB": "GiB", "TIB": "TiB"}
_SIZE = re.compile(r"([0-9]+)\s*([KMGT]I?B)?", re.IGNORECASE)
_SHARE = re.compile(r"([0-9]+)\s*%")
#: TiDB raises a smaller bound to this, with only a warning.
_SMALLEST_BOUND = 512 << 20


def server_memory_limit() -> str:
    """TIDB_SERVER_MEMORY_LIMIT (or the default) as TiDB reads it; ConfigError if it cannot."""
    value = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip() or DEFAULT_SERVER_MEMORY_LIMIT
    share, size = _SHARE.fullmatch(value), _SIZE.fullmatch(value)
    if share and 1 <= int(share.group(1)) <= 99:
        return f"{int(share.group(1))}%"
    if size:
        unit = (size.group(2) or "").upper()
        if int(size.group(1)) == 0 or int(size.group(1)) * _UNITS[unit] >= _SMALLEST_BOUND:
            return f"{int(size.group(1))}{_SPELLING.get(unit, unit)}"
    raise ConfigError(f"{MEMORY_LIMIT_VARIABLE} is {value!r}: give a size of at least 512MB "
                      "such as 2GB, a whole share of the machine's memory from 1% to 99% (TiDB's "
                      "own default is 80%), or 0 for no bound (tidb_server_memory_limit).")


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

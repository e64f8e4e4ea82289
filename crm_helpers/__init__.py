"""Shared helpers for the TiDB CRM notebooks: settings, the local TiDB, models and frames."""

import os

# Nothing in this project may reach the network. JupySQL 0.11 sends nothing, but its helper
# library ploomber-core can send usage statistics and ask PyPI for new versions: both off.
os.environ["PLOOMBER_STATS_ENABLED"] = "false"
os.environ["PLOOMBER_VERSION_CHECK_DISABLED"] = "true"

from sqlalchemy_tidb.transaction import run_transaction

from crm_helpers.config import Settings, load_settings, mask_url
from crm_helpers.engines import check_connection, tidb_engine
from crm_helpers.errors import (
    CrmError,
    InvalidInput,
    InvalidPrice,
    PortInUse,
    TiDBAuthError,
    TiDBNotRunning,
    UnknownGender,
    UserNotFound,
    WriteConflict,
)
from crm_helpers.local.server import ensure_tidb, start_local_tidb, stop_local_tidb

__all__ = [
    "CrmError",
    "InvalidInput",
    "InvalidPrice",
    "PortInUse",
    "Settings",
    "TiDBAuthError",
    "TiDBNotRunning",
    "UnknownGender",
    "UserNotFound",
    "WriteConflict",
    "check_connection",
    "ensure_tidb",
    "load_settings",
    "mask_url",
    "run_transaction",
    "start_local_tidb",
    "stop_local_tidb",
    "tidb_engine",
]

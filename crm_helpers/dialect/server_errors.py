"""TiDB's errors about the dialect's features, as the project's exceptions.

These rules join `crm_helpers.translate.RULES`, the one table every `tidb://` engine's error
translation uses; each gets the failure (its `code` and TiDB's `message`) and returns the
project exception, or None to leave the error as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from crm_helpers.dialect.base import refuse_missing_isolation_level
from crm_helpers.dialect.transaction import RETRYABLE_ERRORS, write_conflict_for
from crm_helpers.errors import CrmError, TiFlashRequired, UnsupportedByTiDB

# TiDB's codes for the features below.
UNSUPPORTED_DDL = 8200  # "Unsupported add vector index: unsupported empty TiFlash replica ..."
NOOP_FUNCTION = 1235  # "function LOCK IN SHARE MODE has only noop implementation in tidb now"
ISOLATION_NOT_SUPPORTED = 8048  # "The isolation level 'SERIALIZABLE' is not supported."
UNKNOWN_ERROR = 1105  # TiDB's catch-all; "pessimistic lock retry limit reached" is one

_LEVEL = re.compile(r"isolation level '([^']+)'", re.IGNORECASE)


def _write_conflict(failure: Any) -> CrmError | None:
    return write_conflict_for(failure.code, failure.message)


def _unknown_error(failure: Any) -> CrmError | None:
    # 1105 carries both "pessimistic lock retry limit reached" and, for ALTER TABLE ... SET
    # TIFLASH REPLICA on a TiDB without TiFlash, "... total tiflash server count: 0".
    return _write_conflict(failure) or _tiflash_required(failure)


def _tiflash_required(failure: Any) -> CrmError | None:
    if "tiflash" not in failure.message.lower():
        return None
    return TiFlashRequired(
        f"This needs TiFlash, TiDB's columnar storage, and this TiDB has none (TiDB said: "
        f"{failure.message}). A vector index lives in TiFlash; the project's local TiDB "
        "(unistore) never has it. Vector search still works without the index: ordering by "
        "a distance, e.g. .order_by(Document.embedding.cosine_distance(query)).limit(5), "
        "scans the rows exactly. For the index use TiDB Cloud, or a cluster with TiFlash "
        "(`tiup playground --tiflash 1`) and `ALTER TABLE ... SET TIFLASH REPLICA 1` first.")


def _no_shared_locks(failure: Any) -> CrmError | None:
    if "SHARE MODE" not in failure.message.upper():
        return None
    return UnsupportedByTiDB(
        "TiDB has no shared row locks: SELECT ... FOR SHARE / LOCK IN SHARE MODE "
        "(with_for_update(read=True)) is refused. Do not turn on tidb_enable_noop_functions "
        "to get past this: the statement would then lock nothing. Use with_for_update() for "
        "an exclusive lock on the rows you read.")


def _isolation_level(failure: Any) -> CrmError | None:
    found = _LEVEL.search(failure.message)
    try:
        refuse_missing_isolation_level(found.group(1) if found else "SERIALIZABLE")
    except UnsupportedByTiDB as refused:
        return refused
    return None


#: TiDB error code -> rule, for crm_helpers.translate.RULES.
TIDB_RULES: dict[int, Callable[[Any], CrmError | None]] = {
    **{code: _write_conflict for code in RETRYABLE_ERRORS},
    UNKNOWN_ERROR: _unknown_error,
    UNSUPPORTED_DDL: _tiflash_required,
    NOOP_FUNCTION: _no_shared_locks,
    ISOLATION_NOT_SUPPORTED: _isolation_level,
}

"""TiDB's own errors, refined into the dialect's subclasses of SQLAlchemy's classes.

Every `tidb://` engine gets `refine_tidb_error` as a `handle_error` listener. It looks at the
driver's error code and, where TiDB means something specific (a write conflict, a transaction
too large, a feature that needs TiFlash), returns the matching class of `sqlalchemy_tidb.exc`
with a sentence of general advice. The refined class always subclasses the SQLAlchemy class
the error already had, so nothing that catches SQLAlchemy's classes changes; any other
error is left exactly as SQLAlchemy raised it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError

from sqlalchemy_tidb.exc import (
    EntryTooLarge,
    IsolationLevelUnsupported,
    RefinedError,
    SharedLocksUnsupported,
    TiFlashRequired,
    TransactionTooLarge,
    WriteConflict,
)
from sqlalchemy_tidb.isolation import missing_isolation_level_advice
from sqlalchemy_tidb.transaction import describe_retryable, is_retryable

# TiDB's codes for the errors below.
TRANSACTION_TOO_LARGE = 8004  # "Transaction is too large, size: 104857600"
ENTRY_TOO_LARGE = 8025  # "entry too large, the max entry size is 6291456, the size of data is ..."
UNSUPPORTED_DDL = 8200  # "Unsupported add vector index: unsupported empty TiFlash replica ..."
NOOP_FUNCTION = 1235  # "function LOCK IN SHARE MODE has only noop implementation in tidb now"
ISOLATION_NOT_SUPPORTED = 8048  # "The isolation level 'SERIALIZABLE' is not supported."
UNKNOWN_ERROR = 1105  # TiDB's catch-all; "pessimistic lock retry limit reached" is one

_LEVEL = re.compile(r"isolation level '([^']+)'", re.IGNORECASE)

#: What a rule returns: the refined class and its advice, or None to leave the error alone.
Refinement = tuple[type[RefinedError], str] | None
Rule = Callable[[int, str], Refinement]


def error_code_and_message(error: BaseException) -> tuple[int | None, str]:
    """The driver error's code and text, for a driver error or SQLAlchemy's wrapper of one."""
    original = getattr(error, "orig", None) or error
    args = getattr(original, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    return code, str(args[1]) if len(args) > 1 else ""


def _write_conflict(code: int, message: str) -> Refinement:
    if not is_retryable(code, message):
        return None
    return WriteConflict, (
        f"TiDB error {code}, {describe_retryable(code, message)}; the transaction was not "
        "committed. Run the whole transaction again: sqlalchemy_tidb.run_transaction(engine, "
        "work) does that, with backoff.")


def _too_large(code: int, message: str) -> Refinement:
    return TransactionTooLarge, (
        f"TiDB refused the transaction as too large ({message}); nothing of it was committed. "
        "Its size limit is this TiDB's txn-total-size-limit (configuration, [performance]; "
        "left at its default of 100 MiB, TiDB v6.5+ bounds a transaction by the session's "
        "memory quota, tidb_mem_quota_query, instead). Ways out: commit in smaller "
        "transactions (batches of a few thousand rows), load files with LOAD DATA, let TiDB "
        "split a big DML statement with its non-transactional BATCH ON <column> LIMIT <n> "
        "<statement>, or have the server's txn-total-size-limit raised.")


def _entry_too_large(code: int, message: str) -> Refinement:
    # The same kind of refusal as 8004, for one row: a key-value entry over the entry limit.
    return EntryTooLarge, (
        f"TiDB refused a row as too large ({message}); nothing of the transaction was "
        "committed. One row may be at most txn-entry-size-limit bytes (6 MiB by default; the "
        "session variable tidb_txn_entry_size_limit overrides it, up to 120 MiB). Ways out: "
        "keep large values (files, images, documents) outside the table and store a "
        "reference, split a value over several rows, or raise the limit, e.g. SET SESSION "
        "tidb_txn_entry_size_limit = 33554432 (32 MiB; max_allowed_packet must allow the "
        "statement too).")


def _tiflash_required(code: int, message: str) -> Refinement:
    if "tiflash" not in message.lower():
        return None
    return TiFlashRequired, (
        f"This needs TiFlash, TiDB's columnar storage, and this TiDB has none (TiDB said: "
        f"{message}). A vector index lives in TiFlash. Vector search still works without the "
        "index: ordering by a distance, e.g. .order_by(Doc.embedding.cosine_distance(q))"
        ".limit(5), scans the rows exactly. For the index use a TiDB with TiFlash (TiDB Cloud, "
        "or a cluster with a TiFlash node) and ALTER TABLE ... SET TIFLASH REPLICA 1 first.")


def _unknown_error(code: int, message: str) -> Refinement:
    # 1105 carries both "pessimistic lock retry limit reached" and, for ALTER TABLE ... SET
    # TIFLASH REPLICA on a TiDB without TiFlash, "... total tiflash server count: 0".
    return _write_conflict(code, message) or _tiflash_required(code, message)


def _no_shared_locks(code: int, message: str) -> Refinement:
    if "SHARE MODE" not in message.upper():
        return None
    return SharedLocksUnsupported, (
        "TiDB has no shared row locks: SELECT ... FOR SHARE / LOCK IN SHARE MODE "
        "(with_for_update(read=True)) is refused. Do not turn on tidb_enable_noop_functions "
        "to get past this: the statement would then lock nothing. Use with_for_update() for "
        "an exclusive lock on the rows you read.")


def _isolation_level(code: int, message: str) -> Refinement:
    found = _LEVEL.search(message)
    return IsolationLevelUnsupported, missing_isolation_level_advice(
        found.group(1) if found else "SERIALIZABLE")


#: TiDB error code -> the rule that refines it.
RULES: dict[int, Rule] = {
    **dict.fromkeys((9007, 8002, 8022, 8028, 1213, 1205), _write_conflict),
    UNKNOWN_ERROR: _unknown_error,
    TRANSACTION_TOO_LARGE: _too_large,
    ENTRY_TOO_LARGE: _entry_too_large,
    UNSUPPORTED_DDL: _tiflash_required,
    NOOP_FUNCTION: _no_shared_locks,
    ISOLATION_NOT_SUPPORTED: _isolation_level,
}


def refine(error: DBAPIError) -> RefinedError | None:
    """The dialect's refinement of a SQLAlchemy database error, or None to leave it as it is."""
    if isinstance(error, RefinedError):
        return None
    code, message = error_code_and_message(error)
    rule = RULES.get(code) if code is not None else None
    found = rule(code, message) if rule is not None else None  # type: ignore[arg-type]
    if found is None:
        return None
    refined_class, advice = found
    return refined_class.replacing(error, advice)


def refine_tidb_error(context: ExceptionContext) -> BaseException | None:
    """The `handle_error` listener every `tidb://` engine gets (see TiDBDialect.engine_created)."""
    if context.is_pre_ping:
        return None  # the pool decides about reconnecting; nothing reaches the caller
    error = context.sqlalchemy_exception
    if not isinstance(error, DBAPIError):
        return None
    return refine(error)

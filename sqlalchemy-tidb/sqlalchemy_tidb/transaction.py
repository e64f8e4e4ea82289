"""Run a unit of work in a transaction, again when TiDB says it lost a write conflict.

TiDB documents which errors mean "nothing was committed, run the transaction again":
write conflicts (9007 at commit in optimistic mode, 8002 for SELECT ... FOR UPDATE), a failed
commit (8022), a schema change during the transaction (8028), and from MySQL deadlock (1213)
and lock wait timeout (1205). Since v8.0 TiDB no longer retries optimistic transactions by
itself, so the application must. `run_transaction` does, with bounded exponential backoff
and jitter; `WriteConflict` (an `OperationalError`) is what reaches the caller when retries
run out, or at once when a retry cannot be done safely. Every `tidb://` engine refines these
errors into `WriteConflict` with the same `is_retryable` (sqlalchemy_tidb.errors), so there
is one definition of "retryable"; the loop also works on other MySQL-protocol engines.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from sqlalchemy_tidb.exc import WriteConflict

T = TypeVar("T")

#: TiDB error code -> what it means; each is safe to answer by running the transaction again.
RETRYABLE_ERRORS: dict[int, str] = {
    9007: "write conflict: another transaction committed a change to the same row first",
    8002: "SELECT ... FOR UPDATE met a write conflict",
    8022: "the commit failed and the transaction was rolled back",
    8028: "a table's schema changed while the transaction ran",
    1213: "deadlock: two transactions waited for each other's locks",
    1205: "lock wait timeout: another transaction held a row lock too long",
}

# 1105 is TiDB's catch-all code. With this text it means a pessimistic statement hit write
# conflicts more often than TiDB's own in-statement retry allows (pessimistic-txn.max-retry-
# count): the statement failed because of concurrent writers, and rolling back and running
# the transaction again later is the remedy, as for 9007. Measured on v8.5.6: 4 of 960
# concurrent add_orders for the same three users (16 threads), the only error they got.
_PESSIMISTIC_RETRY_LIMIT = (1105, "pessimistic lock retry limit reached")

DEFAULT_MAX_RETRIES = 10
DEFAULT_MAX_BACKOFF = 1.0
DEFAULT_FIRST_BACKOFF = 0.01


def _code_and_message(error: BaseException) -> tuple[int | None, str]:
    original = getattr(error, "orig", None) or error
    args = getattr(original, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    return code, str(args[1]) if len(args) > 1 else ""


def is_retryable(code: int | None, message: str = "") -> bool:
    """True for TiDB's retryable error codes (and 1105 "pessimistic lock retry limit")."""
    if code in RETRYABLE_ERRORS:
        return True
    return code == _PESSIMISTIC_RETRY_LIMIT[0] and _PESSIMISTIC_RETRY_LIMIT[1] in message


def retryable_code(error: BaseException) -> int | None:
    """TiDB's error code if `error` (a driver's or SQLAlchemy's) is retryable, else None."""
    code, message = _code_and_message(error)
    return code if is_retryable(code, message) else None


def describe_retryable(code: int | None, message: str) -> str:
    """What a retryable error means, in a few words."""
    if code in RETRYABLE_ERRORS:
        return RETRYABLE_ERRORS[code]
    return f"{message}: a pessimistic statement kept meeting concurrent writes"


def _describe(error: BaseException) -> str:
    return describe_retryable(*_code_and_message(error))


def run_transaction(target: Engine | Connection | Session | sessionmaker,
                    callback: Callable[[Any], T], *,
                    max_retries: int = DEFAULT_MAX_RETRIES,
                    max_backoff: float = DEFAULT_MAX_BACKOFF,
                    on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Run `callback` in a transaction and commit, retrying on TiDB's retryable errors.

    `target` is an Engine or Connection (the callback gets a Connection), or a sessionmaker or
    Session (the callback gets a Session). **The callback may run more than once**: it must
    do all of the transaction's reads and writes itself, have no other side effects, and
    return plain values (or objects it does not use after a failed attempt). Each failed
    attempt is rolled back, then run again after a random pause that doubles each time, up
    to `max_backoff` seconds, at most `max_retries` times; then WriteConflict says what to do.
    `on_retry(attempt, error, pause)` is called before each pause, e.g. to count conflicts.

    A Session or Connection already in a transaction that has written (or locked) rows holds
    work a retry could not replay, so the unit then runs once, and a conflict raises
    WriteConflict at once; a transaction that has only read is ended first and retries apply.
    Other errors roll back and propagate unchanged.
    """
    _check_limits(max_retries, max_backoff)
    attempt_once = _attempt_for(target, callback)
    already_open = _holds_uncommitted_work(target)
    attempt = 0
    while True:
        attempt += 1
        try:
            return attempt_once()
        except Exception as error:
            time.sleep(_pause_before_retry(error, attempt, max_retries, max_backoff, on_retry,
                                           already_open))


async def run_transaction_async(target: Any, callback: Callable[[Any], Awaitable[T]], *,
                                max_retries: int = DEFAULT_MAX_RETRIES,
                                max_backoff: float = DEFAULT_MAX_BACKOFF,
                                on_retry: Callable[[int, BaseException, float], None] | None
                                = None) -> T:
    """`run_transaction` for asyncio: `await callback(...)` in a new transaction, retried.

    `target` is an AsyncEngine (the callback gets an AsyncConnection) or an
    async_sessionmaker (it gets an AsyncSession); each attempt is a transaction of its own,
    so the rules of `run_transaction` apply, **the callback may run more than once** first
    among them. Pauses between attempts are `asyncio.sleep`, so other tasks run meanwhile.
    """
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

    _check_limits(max_retries, max_backoff)
    if not isinstance(target, (AsyncEngine, async_sessionmaker)):
        raise ArgumentError(f"run_transaction_async needs an AsyncEngine or async_sessionmaker "
                            f"(each attempt starts a transaction of its own); got "
                            f"{type(target).__name__}.")
    attempt = 0
    while True:
        attempt += 1
        try:
            async with target.begin() as connection_or_session:
                return await callback(connection_or_session)
        except Exception as error:
            await asyncio.sleep(_pause_before_retry(error, attempt, max_retries, max_backoff,
                                                    on_retry))


def _check_limits(max_retries: Any, max_backoff: Any) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ArgumentError(f"max_retries is {max_retries!r}: give a whole number, 0 or more.")
    if isinstance(max_backoff, bool) or not isinstance(max_backoff, (int, float)) \
            or not max_backoff >= 0:
        raise ArgumentError(f"max_backoff is {max_backoff!r}: give seconds, 0 or more.")


def _pause_before_retry(error: Exception, attempt: int, max_retries: int, max_backoff: float,
                        on_retry: Callable[[int, BaseException, float], None] | None,
                        already_open: bool = False) -> float:
    """The pause before the next attempt after `error`; raises it (or WriteConflict) instead."""
    code = retryable_code(error)
    if code is None:
        raise error
    if already_open:
        raise _gave_up(
            error, 1, f"TiDB error {code}, {_describe(error)}; the transaction was "
            "rolled back and not retried, because the session's transaction had already "
            "written or locked rows when this unit of work started (that earlier work "
            "cannot be replayed). Commit or roll back before calling it, or put the "
            "whole unit of work in run_transaction.") from error
    if attempt > max_retries:
        raise _gave_up(
            error, attempt, f"TiDB error {code}, {_describe(error)}, on each of "
            f"{attempt} attempts; nothing of the last attempt was committed. Other "
            "transactions keep changing the same rows: try again later, allow more "
            "retries (max_retries), or make concurrent transactions touch fewer shared "
            "rows.") from error
    pause = _backoff(attempt, max_backoff)
    if on_retry is not None:
        on_retry(attempt, error, pause)
    return pause


# Keys in the open transaction's write buffer: 0 while it has only read (TiDB >= 5.1).
_OWN_TRANSACTION_WRITES = ("SELECT MEM_BUFFER_KEYS FROM information_schema.tidb_trx "
                           "WHERE SESSION_ID = CONNECTION_ID()")


def _holds_uncommitted_work(target: Any) -> bool:
    """True if `target` is in a transaction that a rollback would lose work from.

    A transaction that has only read is ended here (nothing is lost: the unit of work
    commits anyway), so that a conflict in the unit can be retried.
    """
    if not isinstance(target, (Session, Connection)) or not target.in_transaction():
        return False
    if isinstance(target, Session) and (target.new or target.dirty or target.deleted):
        return True
    connection = target.connection() if isinstance(target, Session) else target
    try:
        written = connection.exec_driver_sql(_OWN_TRANSACTION_WRITES).scalar()
    except Exception:  # cannot tell: assume the worst, never lose work
        return True
    if written:
        return True
    target.rollback()
    return False


def _gave_up(error: BaseException, attempts: int, advice: str) -> WriteConflict:
    conflict = WriteConflict(advice, error)
    conflict.attempts = attempts
    return conflict


def _backoff(attempt: int, max_backoff: float) -> float:
    # "Equal jitter": half of the capped exponential step is fixed, half random, so
    # conflicting workers spread out but none retries at once.
    step = min(max_backoff, DEFAULT_FIRST_BACKOFF * 2 ** (attempt - 1))
    return step / 2 + random.uniform(0, step / 2)


def _attempt_for(target: Any, callback: Callable[[Any], T]) -> Callable[[], T]:
    if isinstance(target, Engine):
        def on_engine() -> T:
            with target.begin() as connection:
                return callback(connection)
        return on_engine
    if isinstance(target, Connection):
        def on_connection() -> T:
            if target.in_transaction():
                return _commit_or_roll_back(target, callback)
            with target.begin():
                return callback(target)
        return on_connection
    if isinstance(target, sessionmaker):
        def on_new_session() -> T:
            with target() as session, session.begin():
                return callback(session)
        return on_new_session
    if isinstance(target, Session):
        return lambda: _commit_or_roll_back(target, callback)
    raise ArgumentError(f"run_transaction needs an Engine, Connection, Session or sessionmaker; "
                    f"got {type(target).__name__}.")


def _commit_or_roll_back(target: Session | Connection, callback: Callable[[Any], T]) -> T:
    try:
        result = callback(target)
        target.commit()
    except BaseException:
        target.rollback()
        raise
    return result

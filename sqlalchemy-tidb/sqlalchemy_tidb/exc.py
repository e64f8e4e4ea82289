"""The dialect's exceptions: each one is a subclass of the SQLAlchemy class it refines.

Database errors keep SQLAlchemy's contract. A write conflict is still an `OperationalError`
with the driver's error as `.orig`, so `except OperationalError` (retry loops, web frameworks,
pandas) catches it as it does on `mysql+pymysql://`; the subclass only adds what TiDB means by
it and what to do. Errors raised before anything is sent (an option TiDB cannot use, a feature
it lacks) are SQLAlchemy's `ArgumentError` / `CompileError` / `InvalidRequestError` kinds.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc

E = TypeVar("E", bound="RefinedError")


class RefinedError(sa_exc.DBAPIError):
    """A database error with a sentence of advice put before SQLAlchemy's own message.

    Build one from the error SQLAlchemy raised, `Refined(advice, error)`: statement,
    parameters, `.orig` and `connection_invalidated` are taken over, so pool invalidation and
    `pool_pre_ping` behave as for the original. Given a driver's error, that becomes `.orig`;
    without one (`Refined(advice)`) it stands for a failure found before anything was sent.
    """

    def __init__(self, advice: str, error: BaseException | None = None) -> None:
        # DBAPIError's own __init__ by name: in a subclass that also derives from a builtin
        # error (ValueError), super() would reach that builtin's instead.
        if isinstance(error, sa_exc.DBAPIError):
            sa_exc.DBAPIError.__init__(self, error.statement, error.params, error.orig,
                                       hide_parameters=error.hide_parameters,
                                       connection_invalidated=error.connection_invalidated,
                                       ismulti=error.ismulti)
            self.detail = list(error.detail)
        else:  # a driver's own error (a raw DBAPI connection), or nothing at all
            sa_exc.DBAPIError.__init__(self, None, None, error)  # type: ignore[arg-type]
            if error is None:
                self.args = (advice,)
        self.advice = advice

    @property
    def error_code(self) -> int | None:
        """The server's (or driver's) error number, such as 9007; None without one."""
        args = getattr(self.orig, "args", ())
        return args[0] if args and isinstance(args[0], int) else None

    def _message(self) -> str:
        if self.orig is None:
            return self.advice
        return f"{self.advice}\n{super()._message()}"

    def __reduce__(self) -> Any:
        return self.__class__, (self.advice,), dict(self.__dict__)

    @classmethod
    def replacing(cls: type[E], error: BaseException, advice: str) -> E | None:
        """`cls(advice, error)` if `error` has the SQLAlchemy class this class refines; else None.

        A caller catching that SQLAlchemy class must keep catching the error, so an error of
        another class is never replaced.
        """
        return cls(advice, error) if cls.refines(error) else None

    @classmethod
    def refines(cls, error: BaseException) -> bool:
        """True when `error` is of the SQLAlchemy class this class refines (it may replace it)."""
        base = next(klass for klass in cls.__mro__
                    if klass.__module__ == sa_exc.__name__ and issubclass(klass, sa_exc.DBAPIError))
        return isinstance(error, base)


class WriteConflict(RefinedError, sa_exc.OperationalError):
    """The transaction lost a write conflict or a lock wait and was not committed: run it again.

    `error_code` is TiDB's error code (9007, 8002, 8022, 8028, 1213, 1205, or 1105 with
    "pessimistic lock retry limit reached"); `attempts` is how many times
    `run_transaction` ran the unit of work before giving up (None outside it).
    """

    attempts: int | None = None


class TransactionTooLarge(RefinedError, sa_exc.OperationalError):
    """TiDB refused a transaction bigger than its size limit (error 8004); nothing was committed."""


class EntryTooLarge(TransactionTooLarge):
    """TiDB refused one row bigger than its entry size limit (error 8025); nothing was committed."""


class TiFlashRequired(RefinedError, sa_exc.OperationalError):
    """The statement needs TiFlash, TiDB's columnar engine, which this TiDB does not have."""


class SharedLocksUnsupported(RefinedError, sa_exc.NotSupportedError):
    """TiDB has no shared row locks (SELECT ... FOR SHARE / LOCK IN SHARE MODE)."""


class IsolationLevelUnsupported(RefinedError, sa_exc.OperationalError):
    """The server refused an isolation level TiDB does not have (SERIALIZABLE, READ UNCOMMITTED)."""


class UnsupportedByTiDB(sa_exc.InvalidRequestError, NotImplementedError):
    """An SQLAlchemy or MySQL feature this TiDB does not offer; nothing was sent."""


class UnsupportedIsolationLevel(UnsupportedByTiDB, sa_exc.ArgumentError):
    """An isolation level TiDB does not have (SERIALIZABLE, READ UNCOMMITTED)."""


class NotTiDB(sa_exc.InvalidRequestError):
    """The server behind a `tidb://` URL is not TiDB."""


class InvalidDialectOption(sa_exc.ArgumentError, ValueError):
    """A `tidb_*` table, column or index option, or a URL option, TiDB cannot use."""


class InvalidVector(sa_exc.ArgumentError, ValueError):
    """A value for a VECTOR column that is not a finite list of numbers of the right length."""

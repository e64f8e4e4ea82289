"""The tutorial's CRM operations, with validation: bad input raises and writes nothing.

Each operation is one transaction run through `run_transaction`, so a write conflict with a
concurrent caller is retried (with backoff) instead of reaching the caller; if the session's
open transaction had already written rows, or retries run out, the caller gets WriteConflict.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

from sqlalchemy import Engine, Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy_tidb.transaction import run_transaction

from crm_helpers.errors import (
    NO_PARENT_ROW,
    CrmError,
    InvalidInput,
    OrderNotFound,
    UserNotFound,
    error_code,
)
from crm_helpers.lesson.models import (
    Base,
    Gender,
    Order,
    User,
    as_gender,
    as_name,
    as_price,
    as_uid,
)

#: The tutorial's data, in the order the tutorial inserts it.
TUTORIAL_USERS: list[tuple[str, Gender]] = [
    ("Alice", Gender.Female), ("Peter", Gender.Male), ("Ben", Gender.Male)]
TUTORIAL_FIRST_ORDER: tuple[int, float] = (1, 2.5)
TUTORIAL_MORE_ORDERS: list[tuple[int, float]] = [
    (1, 0.5), (2, 4.5), (2, 2123.87), (3, 212.5), (3, 8.5)]

# Largest value of the INTEGER key column oid.
_OID_MAX = 2**31 - 1


def reset_crm_tables(engine: Engine) -> None:
    """Drop and re-create `users` and `orders`, so AUTO_INCREMENT starts again at 1."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"reset_crm_tables needs a SQLAlchemy Engine, not "
                           f"{type(engine).__name__}: make one with tidb_engine(url).")
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)


def add_users(session: Session, users: Iterable[tuple[str, Gender | str]]) -> list[User]:
    """Insert users in one transaction; all are checked before any is written."""
    _require_session(session)
    checked = [(as_name(name), as_gender(gender))
               for name, gender in _pairs(users, "users", "(name, gender)")]

    def write(session: Session) -> list[User]:
        new_users = [User(name=name, gender=gender) for name, gender in checked]
        session.add_all(new_users)
        _commit(session)
        return new_users

    return run_transaction(session, write)


def add_orders(session: Session, orders: Iterable[tuple[int, float]]) -> list[Order]:
    """Insert orders in one transaction, refusing bad prices and unknown uids up front."""
    _require_session(session)
    checked = [(as_uid(uid), as_price(price))
               for uid, price in _pairs(orders, "orders", "(uid, price)")]

    def write(session: Session) -> list[Order]:
        _require_users(session, {uid for uid, _ in checked})
        new_orders = [Order(uid=uid, price=price) for uid, price in checked]
        session.add_all(new_orders)
        _commit(session)
        return new_orders

    return run_transaction(session, write)


def delete_order(session: Session, oid: int) -> None:
    """Delete order `oid`; OrderNotFound if there is none."""
    _require_session(session)
    oid = _as_oid(oid)

    def write(session: Session) -> None:
        result = session.execute(delete(Order).where(Order.oid == oid))
        if result.rowcount == 0:
            raise OrderNotFound(f"No order has oid {oid}; nothing was deleted. Check the oid "
                                "(orders_frame(engine) lists the orders).")
        _commit(session)

    run_transaction(session, write)


def set_order_price(session: Session, oid: int, price: float) -> None:
    """Change the price of order `oid`."""
    _require_session(session)
    oid = _as_oid(oid)
    checked = as_price(price)
    # rowcount counts matched rows here (PyMySQL's FOUND_ROWS flag), so an unchanged
    # price still counts as found.

    def write(session: Session) -> None:
        result = session.execute(update(Order).where(Order.oid == oid).values(price=checked))
        if result.rowcount == 0:
            raise OrderNotFound(f"No order has oid {oid}; no price was changed. Check the oid "
                                "(orders_frame(engine) lists the orders).")
        _commit(session)

    run_transaction(session, write)


def user_orders_statement(uid: int | None = None) -> Select:
    """users JOIN orders ON uid (all users, or one): name and price, in order of oid."""
    uid = None if uid is None else as_uid(uid)
    statement = (select(User.name, Order.price)
                 .join(Order, Order.uid == User.uid)
                 .order_by(Order.oid))
    return statement if uid is None else statement.where(User.uid == uid)


def order_prices_of_user(session: Session, uid: int) -> list[tuple[str, float]]:
    """The tutorial's join result for one user, e.g. [('Ben', 212.5), ('Ben', 8.5)]."""
    _require_session(session)
    uid = as_uid(uid)
    return [tuple(row) for row in session.execute(user_orders_statement(uid))]


def _require_session(session: object) -> None:
    if not isinstance(session, Session):
        raise InvalidInput(f"Expected a SQLAlchemy Session (with Session(engine) as session: "
                           f"...), not {type(session).__name__}.")


def _pairs(items: object, what: str, shape: str) -> list[tuple]:
    """`items` as a list of 2-tuples; InvalidInput naming the first one that is not."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidInput(f"{what} must be a list of {shape} tuples, not "
                           f"{type(items).__name__}: e.g. [{shape}].")
    pairs = list(items)
    for item in pairs:
        if isinstance(item, str | bytes) or not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidInput(f"Each of the {what} must be a {shape} pair; {item!r} is not. "
                               f"Give a list such as [{shape}]; nothing was written.")
    return pairs


def _as_oid(value: object) -> int:
    """`value` as an oid: a whole number from 1 (text and True/False refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidInput(f"oid {value!r} is a {type(value).__name__}, not a whole number: "
                           "give an int such as 1 (int(...) converts text).")
    if not 0 < value <= _OID_MAX:
        raise InvalidInput(f"oid {value} is out of range: oids run from 1 to {_OID_MAX}.")
    return int(value)


def _require_users(session: Session, uids: set[int]) -> None:
    if not uids:
        return
    found = set(session.scalars(select(User.uid).where(User.uid.in_(uids))))
    missing = sorted(uids - found)
    if missing:
        listed = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise UserNotFound(f"No user has uid {listed}: every order must belong to an existing "
                           "user. Add the user first (add_users) or fix the uid; no order "
                           "was written.")


def _commit(session: Session) -> None:
    try:
        session.commit()
    except CrmError:
        # Already the project's error (tidb:// engines translate database errors).
        session.rollback()
        raise
    except IntegrityError as exc:
        session.rollback()
        if error_code(exc) == NO_PARENT_ROW:
            raise UserNotFound("An order refers to a uid that no user has (the user was "
                               "removed meanwhile?); no order was written.", exc) from None
        raise

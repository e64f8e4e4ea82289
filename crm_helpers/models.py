"""The tutorial's ORM models `User`, `Order`, `Gender`, and the value checks they enforce.

The checks live on the models, so plain SQLAlchemy code gets them: `Order(uid=1, price=-3)`
raises `InvalidPrice` before anything is sent. `Price` repeats the price check when a value
bypasses the objects (`session.query(Order)...update({"price": ...})`, Core `insert()`).
"""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

import numpy as np
from sqlalchemy import Enum, Float, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator, TypeEngine

from crm_helpers.errors import InvalidInput, InvalidPrice, UnknownGender

#: Longest user name the `users.name` column (VARCHAR(50)) holds.
NAME_MAX_CHARS = 50
#: Largest value of a signed INTEGER column such as `uid`.
UID_MAX = 2**31 - 1


class Base(DeclarativeBase):
    """Declarative base of the CRM tables."""


class Gender(enum.Enum):
    """The tutorial's two genders; the database stores the member names."""

    Female = 1
    Male = 2


def as_gender(value: object, gender_type: type[enum.Enum] = Gender) -> Any:
    """`value` as a member of `gender_type` (default Gender): a member, or its name in any case."""
    if isinstance(value, gender_type):
        return value
    if isinstance(value, str):
        for member in gender_type:
            if member.name.lower() == value.strip().lower():
                return member
    allowed = ", ".join(member.name for member in gender_type)
    raise UnknownGender(f"Unknown gender {value!r}: use one of {allowed} "
                        "(a Gender member or its name).")


def as_name(value: object) -> str:
    """`value` as a user name: text of 1 to 50 characters, not only spaces."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"User name {value!r} is empty or not text: give a name such as 'Ben'.")
    if len(value) > NAME_MAX_CHARS:
        raise InvalidInput(f"User name {value[:20]!r}... has {len(value)} characters; "
                           f"the users table allows at most {NAME_MAX_CHARS}: shorten it.")
    return value


def as_uid(value: object) -> int:
    """`value` as a uid: a whole number from 1 to 2147483647 (text and True/False refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        hint = f" (int({value!r}) converts text)" if isinstance(value, str) else ""
        raise InvalidInput(f"uid {value!r} is a {type(value).__name__}, not a whole number: "
                           f"give an int such as 1{hint}.")
    uid = int(value)
    if not 0 < uid <= UID_MAX:
        raise InvalidInput(f"uid {uid} is out of range: uids run from 1 to {UID_MAX}.")
    return uid


def as_price(value: object) -> float:
    """`value` as a price the FLOAT column stores exactly: a finite number, zero or more."""
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        raise InvalidPrice(f"Price {value!r} is not a number: give a number such as 9.99.")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidPrice(f"Price {value!r} is not a finite number: give an amount such as 9.99.")
    price = float(value)
    if not math.isfinite(price):
        raise InvalidPrice(f"Price {value!r} is not a finite number: give an amount such as 9.99.")
    if price < 0:
        raise InvalidPrice(f"Price {value!r} is negative: prices must be zero or more.")
    # FLOAT is single precision: about 7 significant digits, at most ~3.4e38. TiDB answers
    # with the shortest text that names the stored value, which is what float32's str gives.
    with np.errstate(over="ignore"):
        stored = np.float32(price)
    if not np.isfinite(stored):
        raise InvalidPrice(f"Price {value!r} is too large for the orders table's FLOAT column "
                           "(at most about 3.4e38): give a realistic amount.")
    if float(str(stored)) != price:
        raise InvalidPrice(
            f"Price {value!r} cannot be stored exactly: the orders table's FLOAT column keeps "
            f"about 7 significant digits and would store {float(str(stored))!r}. Round it "
            "(e.g. round(price, 2) for amounts under 100,000), or use a Numeric column for "
            "exact money.")
    return price


class Price(TypeDecorator[float]):
    """FLOAT that refuses, at execution, a price `as_price` refuses (negative, inexact, ...)."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> float | None:
        return None if value is None else as_price(value)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        # WHERE price > -1 is a fair question, not a price: compare as a plain FLOAT.
        return Float()


class User(Base):
    """A customer (table `users`)."""

    __tablename__ = "users"

    uid: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_CHARS))
    gender: Mapped[Gender] = mapped_column(Enum(Gender))

    @validates("uid")
    def _check_uid(self, key: str, value: object) -> int:
        return as_uid(value)

    @validates("name")
    def _check_name(self, key: str, value: object) -> str:
        return as_name(value)

    @validates("gender")
    def _check_gender(self, key: str, value: object) -> Gender:
        return as_gender(value)

    def __repr__(self) -> str:
        return f"<User(uid={self.uid}, name={self.name!r}, gender={self.gender.name})>"


class Order(Base):
    """An order of one user (table `orders`); TiDB enforces the foreign key to `users`."""

    __tablename__ = "orders"

    oid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[int] = mapped_column(Integer, ForeignKey("users.uid"))
    price: Mapped[float] = mapped_column(Price)

    @validates("uid")
    def _check_uid(self, key: str, value: object) -> int:
        return as_uid(value)

    @validates("price")
    def _check_price(self, key: str, value: object) -> float:
        return as_price(value)

    def __repr__(self) -> str:
        return f"<Order(oid={self.oid}, uid={self.uid}, price={self.price})>"

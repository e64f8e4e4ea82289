"""The tutorial's ORM models `User`, `Order`, `Gender`, and the value checks they enforce.

The checks live in the column types (`Uid`, `UserName`, `GenderEnum`, `Price`), which every
statement that writes a value passes through: ORM objects, ORM bulk `insert()`/`update()`,
`session.query(...).update({...})`, Core `insert()`/`update()` and executemany. A bad value
raises the project's exception (InvalidInput, UnknownGender, InvalidPrice) before the
statement is sent. An INSERT that leaves such a column out (an attribute never set, a None in
an ORM bulk insert, a Core insert without it) meets the same rule as None. The models'
`@validates` run the same checks when an attribute is set, so `Order(uid=1, price=-3)`
already raises where it is written.
"""

from __future__ import annotations

import enum
import math
import unicodedata
from decimal import Decimal
from numbers import Integral
from typing import Any, TypeVar

from sqlalchemy import Column, Enum, Float, ForeignKey, Integer, String, Table, event, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.schema import ColumnDefault
from sqlalchemy.types import TypeDecorator, TypeEngine

from crm_helpers.errors import InvalidInput, InvalidPrice, UnknownGender
from crm_helpers.numbers import float_text_back, given_decimal, is_exact, is_number

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


def as_name(value: object, max_chars: int = NAME_MAX_CHARS) -> str:
    """`value` as a user name: 1 to `max_chars` (50) characters, at least one of them visible."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"User name {value!r} is empty or not text: give a name such as 'Ben'.")
    control = next((char for char in value if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        raise InvalidInput(f"User name {value!r} holds the control character {control!r} "
                           f"(U+{ord(control):04X}): remove it; a name is printable text "
                           "such as 'Ben'.")
    if not any(map(_visible, value)):
        raise InvalidInput(f"User name {value!r} has no visible character (only spaces, "
                           "combining marks or invisible ones such as a zero-width space): "
                           "give a name such as 'Ben'.")
    if len(value) > max_chars:
        raise InvalidInput(f"User name {value[:20]!r}... has {len(value)} characters; "
                           f"the users table allows at most {max_chars}: shorten it.")
    return value


# Letters and symbols that are drawn as nothing (Hangul fillers, the blank Braille pattern).
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(character: str) -> bool:
    """False for spaces, control and format characters (a zero-width space) and combining marks.

    A combining mark (an accent) is drawn only on the character before it, so a name made of
    marks alone shows nothing.
    """
    category = unicodedata.category(character)
    return not (category[0] in "ZM" or category in ("Cc", "Cf", "Cs", "Cn")
                or character in _BLANK_CHARACTERS)


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
    if not is_number(value):
        raise InvalidPrice(f"Price {value!r} is not a number: give a number such as 9.99.")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidPrice(f"Price {value!r} is not a finite number: give an amount such as 9.99.")
    price = float(value)
    if math.isnan(price) or (math.isinf(price) and not isinstance(value, Decimal)):
        raise InvalidPrice(f"Price {value!r} is not a finite number: give an amount such as 9.99.")
    if price < 0 or (price == 0 and given_decimal(value) < 0):
        raise InvalidPrice(f"Price {value!r} is negative: prices must be zero or more.")
    # FLOAT is single precision: about 7 significant digits, at most ~3.4e38. TiDB answers
    # with the shortest text that names the stored value; the one rule of crm_helpers.numbers.
    back = float_text_back(value, single_precision=True)
    if back is None:
        raise InvalidPrice(f"Price {value!r} is too large for the orders table's FLOAT column "
                           "(at most about 3.4e38): give a realistic amount.")
    if not is_exact(value, single_precision=True):
        raise InvalidPrice(
            f"Price {value!r} cannot be stored exactly: the orders table's FLOAT column keeps "
            f"about 7 significant digits and would store {float(back)!r}. Round it "
            "(e.g. round(price, 2) for amounts under 100,000), or use a Numeric column for "
            "exact money.")
    return price


T = TypeVar("T")


class CheckedType(TypeDecorator[T]):
    """A column type that refuses, in every statement that writes it, what `check` refuses."""

    def check(self, value: object) -> T:
        """`value` as the column stores it; the project's exception if the column refuses it."""
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect: Any) -> T:
        # None too: every CRM column is NOT NULL, so None gets the rule's message, not TiDB's.
        return self.check(value)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        # A literal in an expression (WHERE uid = 0, price > -1, name LIKE 'A%') is compared
        # or computed with, not stored as it is: it gets the plain type, unchecked.
        return self.impl_instance


class Uid(CheckedType[int]):
    """INTEGER holding a user id: a whole number from 1 to 2147483647 (`as_uid`)."""

    impl = Integer
    cache_ok = True

    def check(self, value: object) -> int:
        """`value` as a uid, or InvalidInput."""
        return as_uid(value)


class UserName(CheckedType[str]):
    """VARCHAR(length) holding a user name: 1 to `length` characters, not blank (`as_name`)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int = NAME_MAX_CHARS) -> None:
        super().__init__(length)
        self.length = length

    def check(self, value: object) -> str:
        """`value` as a user name, or InvalidInput."""
        return as_name(value, self.length)


class GenderEnum(CheckedType[enum.Enum]):
    """ENUM of `enum_class`'s names; refuses anything else with UnknownGender (`as_gender`)."""

    impl = Enum
    cache_ok = True

    def __init__(self, enum_class: type[enum.Enum] = Gender) -> None:
        super().__init__(enum_class)
        self.enum_class = enum_class

    def check(self, value: object) -> enum.Enum:
        """`value` as a member of `enum_class` (a member or its name), or UnknownGender."""
        return as_gender(value, self.enum_class)


class Price(CheckedType[float]):
    """FLOAT holding a price: finite, zero or more, and exact in a FLOAT (`as_price`)."""

    impl = Float
    cache_ok = True

    def check(self, value: object) -> float:
        """`value` as a price, or InvalidPrice."""
        return as_price(value)


@event.listens_for(Column, "after_parent_attach")
def _refuse_leaving_out(column: Column, table: Table) -> None:
    """An INSERT that leaves out a checked NOT NULL column gets the column's rule for None."""
    # TiDB fills a left-out ENUM NOT NULL column with its first value ('Female') even in
    # strict mode, and ORM bulk inserts leave a None out of the statement; this insert-side
    # default runs in both cases (and for an attribute never set on an object).
    if isinstance(column.type, CheckedType) and not column.nullable and \
            not column.primary_key and column.default is None and column.server_default is None:
        column.default = ColumnDefault(lambda: column.type.check(None))
        column.default.column = column


def checked(instance: object, key: str, value: object) -> Any:
    """`value` for attribute `key` of a model object, checked by its column's type (@validates)."""
    return inspect(instance).mapper.columns[key].type.check(value)


class User(Base):
    """A customer (table `users`)."""

    __tablename__ = "users"

    uid: Mapped[int] = mapped_column(Uid, primary_key=True)
    name: Mapped[str] = mapped_column(UserName(NAME_MAX_CHARS))
    gender: Mapped[Gender] = mapped_column(GenderEnum(Gender))

    # The types check every statement; this checks a value as soon as it is set, so the
    # error points at the line that set it.
    @validates("uid", "name", "gender")
    def _check(self, key: str, value: object) -> Any:
        return checked(self, key, value)

    def __repr__(self) -> str:
        return f"<User(uid={self.uid}, name={self.name!r}, gender={self.gender.name})>"


class Order(Base):
    """An order of one user (table `orders`); TiDB enforces the foreign key to `users`."""

    __tablename__ = "orders"

    oid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[int] = mapped_column(Uid, ForeignKey("users.uid"))
    price: Mapped[float] = mapped_column(Price)

    @validates("uid", "price")
    def _check(self, key: str, value: object) -> Any:
        return checked(self, key, value)

    def __repr__(self) -> str:
        return f"<Order(oid={self.oid}, uid={self.uid}, price={self.price})>"

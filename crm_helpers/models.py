"""The tutorial's ORM models: `User`, `Order` and the `Gender` enum, in SQLAlchemy 2.0 style."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, Float, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the CRM tables."""


class Gender(enum.Enum):
    """The tutorial's two genders; the database stores the member names."""

    Female = 1
    Male = 2


class User(Base):
    """A customer (table `users`)."""

    __tablename__ = "users"

    uid: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[Gender] = mapped_column(Enum(Gender))

    def __repr__(self) -> str:
        return f"<User(uid={self.uid}, name={self.name!r}, gender={self.gender.name})>"


class Order(Base):
    """An order of one user (table `orders`); TiDB enforces the foreign key to `users`."""

    __tablename__ = "orders"

    oid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[int] = mapped_column(Integer, ForeignKey("users.uid"))
    price: Mapped[float] = mapped_column(Float)

    def __repr__(self) -> str:
        return f"<Order(oid={self.oid}, uid={self.uid}, price={self.price})>"

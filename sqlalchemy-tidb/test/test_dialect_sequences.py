"""Sequences through tidb://: DDL, reflection, next_value() and a key default, Core and ORM."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


@pytest.fixture
def metadata(engine):
    metadata = MetaData()
    yield metadata
    metadata.drop_all(engine)


def test_sequence_create_really_creates_it_and_reflection_sees_it(engine, metadata):
    invoice_numbers = Sequence("invoice_numbers", start=100, increment=5, metadata=metadata)
    assert not inspect(engine).has_sequence("invoice_numbers")
    invoice_numbers.create(engine)
    inspector = inspect(engine)
    assert inspector.has_sequence("invoice_numbers")
    assert "invoice_numbers" in inspector.get_sequence_names()
    with engine.connect() as connection:
        drawn = [connection.scalar(invoice_numbers.next_value()) for _ in range(3)]
    assert drawn == [100, 105, 110]
    invoice_numbers.drop(engine)
    assert not inspect(engine).has_sequence("invoice_numbers")
    assert "invoice_numbers" not in inspect(engine).get_sequence_names()


def test_sequence_in_another_schema_is_not_reported_here(engine, metadata):
    Sequence("numbers_here", metadata=metadata).create(engine)
    assert not inspect(engine).has_sequence("numbers_here", schema="mysql")
    assert "numbers_here" not in inspect(engine).get_sequence_names(schema="mysql")


def test_sequence_as_key_default_core_insert_gets_the_drawn_key(engine, metadata):
    ticket_ids = Sequence("ticket_ids", start=1000, metadata=metadata)
    tickets = Table("tickets", metadata,
                    Column("id", Integer, ticket_ids, primary_key=True),
                    Column("title", String(40)))
    metadata.create_all(engine)
    assert "ticket_ids" in inspect(engine).get_sequence_names()
    with engine.begin() as connection:
        first = connection.execute(tickets.insert().values(title="printer jam"))
        second = connection.execute(tickets.insert().values(title="no coffee"))
    assert first.inserted_primary_key == (1000,)
    assert second.inserted_primary_key == (1001,)
    with engine.connect() as connection:
        rows = dict(connection.execute(select(tickets.c.title, tickets.c.id)).all())
    assert rows == {"printer jam": 1000, "no coffee": 1001}


def test_sequence_as_key_default_orm_flush_gets_the_drawn_key(engine, metadata):
    class Base(DeclarativeBase):
        metadata = MetaData()

    class Invoice(Base):
        __tablename__ = "invoices"
        number: Mapped[int] = mapped_column(Sequence("invoice_seq", start=7), primary_key=True)
        customer: Mapped[str] = mapped_column(String(40))

    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            alice, ben = Invoice(customer="Alice"), Invoice(customer="Ben")
            session.add_all([alice, ben])
            session.commit()
            assert (alice.number, ben.number) == (7, 8)
        with Session(engine) as session:
            assert session.get(Invoice, 8).customer == "Ben"
    finally:
        Base.metadata.drop_all(engine)
    assert not inspect(engine).has_sequence("invoice_seq")


def test_sequence_options_reach_tidb(engine, metadata):
    cycling = Sequence("cycling", start=5, increment=2, minvalue=1, maxvalue=9, cycle=True,
                       cache=3, metadata=metadata)
    cycling.create(engine)
    with engine.connect() as connection:
        drawn = [connection.scalar(cycling.next_value()) for _ in range(6)]
        stored = connection.execute(text(
            "SELECT start, increment, min_value, max_value, cycle, cache_value "
            "FROM information_schema.sequences WHERE sequence_schema = DATABASE() "
            "AND sequence_name = 'cycling'")).one()
    assert drawn == [5, 7, 9, 1, 3, 5]
    assert tuple(stored) == (5, 2, 1, 9, 1, 3)

"""VECTOR(dim) through tidb://: DDL, binding, NumPy results, reflection, distances, index."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateIndex
from sqlalchemy_tidb import VECTOR, InvalidDialectOption, InvalidVector, TiFlashRequired


class Base(DeclarativeBase):
    metadata = MetaData()


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(30))
    embedding: Mapped[np.ndarray] = mapped_column(VECTOR(3))


DOCUMENTS = {
    1: ("east", [1.0, 0.0, 0.0]),
    2: ("north", np.array([0.0, 1.0, 0.0])),
    3: ("north-east", (0.7, 0.7, 0.0)),
    4: ("down", [0, 0, -2]),
}


@pytest.fixture
def documents(engine):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(Document(id=key, title=title, embedding=vector)
                        for key, (title, vector) in DOCUMENTS.items())
        session.commit()
    yield Document
    Base.metadata.drop_all(engine)


def test_vectors_go_in_as_lists_tuples_or_arrays_and_come_back_as_float32_arrays(documents,
                                                                                 engine):
    with Session(engine) as session:
        stored = {doc.id: doc.embedding for doc in session.scalars(select(Document))}
    for key, (_, given) in DOCUMENTS.items():
        assert isinstance(stored[key], np.ndarray)
        assert stored[key].dtype == np.float32
        np.testing.assert_allclose(stored[key], np.asarray(given, dtype=np.float32))


def test_ddl_and_reflection_give_vector_of_the_dimension(documents, engine):
    with engine.connect() as connection:
        ddl = connection.exec_driver_sql("SHOW CREATE TABLE documents").one()[1]
    assert "vector(3)" in ddl.lower()
    (column,) = [c for c in inspect(engine).get_columns("documents") if c["name"] == "embedding"]
    assert isinstance(column["type"], VECTOR)
    assert column["type"].dim == 3


def test_reflected_table_round_trips_and_reads_arrays(documents, engine):
    reflected = Table("documents", MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        row = connection.execute(select(reflected.c.embedding)
                                 .where(reflected.c.id == 1)).scalar_one()
    np.testing.assert_allclose(row, [1, 0, 0])
    copy = reflected.to_metadata(MetaData(), name="documents_copy")
    copy.create(engine)
    try:
        assert isinstance(inspect(engine).get_columns("documents_copy")[2]["type"], VECTOR)
    finally:
        copy.drop(engine)


def test_vector_of_any_dimension(engine):
    metadata = MetaData()
    loose = Table("loose", metadata, Column("id", Integer, primary_key=True),
                  Column("v", VECTOR()))
    metadata.create_all(engine)
    try:
        with engine.begin() as connection:
            connection.execute(loose.insert(), [{"id": 1, "v": [1, 2]}, {"id": 2, "v": [1, 2, 3]}])
            values = dict(connection.execute(select(loose.c.id, loose.c.v)).all())
        assert [len(values[1]), len(values[2])] == [2, 3]
        assert inspect(engine).get_columns("loose")[1]["type"].dim is None
    finally:
        metadata.drop_all(engine)


def _cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return 1 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(("method", "expected"), [
    ("cosine_distance", _cosine),
    ("l2_distance", lambda a, b: float(np.linalg.norm(np.subtract(a, b)))),
    ("l1_distance", lambda a, b: float(np.abs(np.subtract(a, b)).sum())),
    ("negative_inner_product", lambda a, b: -float(np.dot(a, b))),
])
def test_distances_are_floats_and_match_numpy(documents, engine, method, expected):
    query = [1.0, 1.0, 0.0]
    distance = getattr(Document.embedding, method)(query)
    assert isinstance(distance.type, Float)
    with engine.connect() as connection:
        rows = dict(connection.execute(select(Document.id, distance)).all())
    for key, (_, vector) in DOCUMENTS.items():
        assert isinstance(rows[key], float)
        assert rows[key] == pytest.approx(expected(np.asarray(vector, dtype=float), query),
                                          abs=1e-6)


def test_nearest_documents_by_cosine_distance(documents, engine):
    distance = Document.embedding.cosine_distance(np.array([1.0, 0.9, 0.0]))
    with Session(engine) as session:
        nearest = session.execute(select(Document.title, distance.label("distance"))
                                  .order_by(distance).limit(2)).all()
    assert [title for title, _ in nearest] == ["north-east", "east"]
    assert nearest[0].distance < nearest[1].distance


def test_distance_between_two_columns(documents, engine):
    other = Document.__table__.alias("other")
    distance = Document.embedding.l2_distance(other.c.embedding)
    with engine.connect() as connection:
        value = connection.execute(select(distance).select_from(Document)
                                   .join(other, other.c.id == 2).where(Document.id == 1)
                                   ).scalar_one()
    assert value == pytest.approx(2 ** 0.5, abs=1e-6)


@pytest.mark.parametrize(("value", "message"), [
    ([1.0, 2.0], "dimension 3"),
    ([1.0, float("nan"), 0.0], "finite"),
    ([1.0, "2", 3.0], "not a number"),
    ([True, 0, 0], "not a number"),
    ("[1,2,3]", "list, tuple or NumPy array"),
    (np.zeros((1, 3)), "one-dimensional"),
])
def test_bad_vectors_are_refused_before_anything_is_written(documents, engine, value, message):
    with Session(engine) as session:
        session.add(Document(id=9, title="bad", embedding=value))
        with pytest.raises(Exception) as raised:
            session.commit()
    # the engine's error translation hands back our own error; a bare engine wraps it
    refused = getattr(raised.value, "orig", raised.value)
    assert isinstance(refused, InvalidVector)
    assert re.search(message, str(refused))
    with pytest.raises(InvalidVector, match=message):
        Document.embedding.cosine_distance(value)
    with Session(engine) as session:
        assert session.get(Document, 9) is None


def test_vector_dimension_must_be_sensible():
    with pytest.raises(InvalidVector, match="dimension"):
        VECTOR(0)
    with pytest.raises(InvalidVector, match="dimension"):
        VECTOR(20000)


def detached_documents_table() -> Table:
    # an Index attaches itself to its table; keep the model's table free of it
    return Document.__table__.to_metadata(MetaData())


def test_vector_index_ddl_is_tidbs(engine):
    table = detached_documents_table()
    index = Index("ix_documents_embedding", table.c.embedding, tidb_vector_distance="cosine")
    assert str(CreateIndex(index).compile(dialect=engine.dialect)) == (
        "CREATE VECTOR INDEX ix_documents_embedding ON documents "
        "((VEC_COSINE_DISTANCE(embedding))) USING HNSW")
    with pytest.raises(InvalidDialectOption, match="'cosine', 'l2'"):
        str(CreateIndex(Index("ix_bad", table.c.embedding, tidb_vector_distance="dot"))
            .compile(dialect=engine.dialect))


def test_vector_index_without_tiflash_says_so(documents, engine):
    table = detached_documents_table()
    index = Index("ix_documents_embedding", table.c.embedding, tidb_vector_distance="l2")
    with pytest.raises(TiFlashRequired, match="TiFlash") as raised:
        index.create(engine)
    assert raised.value.__cause__.args[0] == 8200  # TiDB: "... empty TiFlash replica ..."
    assert "order_by" in str(raised.value)  # says what works without the index
    assert inspect(engine).get_indexes("documents") == []


def test_a_tiflash_replica_without_tiflash_says_so(documents, engine):
    with engine.connect() as connection, pytest.raises(TiFlashRequired) as raised:
        connection.exec_driver_sql("ALTER TABLE documents SET TIFLASH REPLICA 1")
    # TiDB: 1105 "the tiflash replica count: 1 should be less than the total tiflash server
    # count: 0"
    assert raised.value.__cause__.args[0] == 1105


def test_a_vector_index_declared_with_the_table_without_tiflash_says_so(engine):
    metadata = MetaData()
    table = Table("indexed_documents", metadata, Column("id", Integer, primary_key=True),
                  Column("embedding", VECTOR(3)))
    Index("ix_indexed_embedding", table.c.embedding, tidb_vector_distance="cosine")
    try:
        with pytest.raises(TiFlashRequired, match="vector index lives in TiFlash"):
            metadata.create_all(engine)
    finally:
        metadata.drop_all(engine)

"""AUTO_RANDOM keys, clustered primary keys and TiDB table options: DDL, reflection, ORM."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateTable
from sqlalchemy_tidb import InvalidDialectOption


def show_create(engine, table: str) -> str:
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").one()[1]


@pytest.fixture
def metadata(engine):
    metadata = MetaData()
    yield metadata
    metadata.drop_all(engine)


def reflect(engine, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=engine)


# -- AUTO_RANDOM --------------------------------------------------------------------------

def test_auto_random_key_core_and_orm_inserts_get_the_generated_key(engine, metadata):
    class Base(DeclarativeBase):
        pass

    Base.metadata = metadata

    class Event(Base):
        __tablename__ = "events"
        id: Mapped[int] = mapped_column(BigInteger, primary_key=True, tidb_auto_random=5)
        name: Mapped[str] = mapped_column(String(30))

    metadata.create_all(engine)
    assert "AUTO_RANDOM(5)" in show_create(engine, "events")
    with engine.begin() as connection:
        (core_key,) = connection.execute(insert(Event).values(name="core")).inserted_primary_key
    with Session(engine) as session:
        orm_events = [Event(name=f"orm {n}") for n in range(3)]
        session.add_all(orm_events)
        session.commit()
        orm_keys = {event.id: event.name for event in orm_events}
    assert isinstance(core_key, int)
    assert all(isinstance(key, int) for key in orm_keys) and len(orm_keys) == 3
    with engine.connect() as connection:
        stored = dict(connection.execute(select(Event.id, Event.name)).all())
    assert stored == {core_key: "core", **orm_keys}


def test_auto_random_keys_spread_over_shards(engine, metadata):
    events = Table("spread", metadata,
                   Column("id", BigInteger, primary_key=True, tidb_auto_random=4),
                   Column("n", Integer))
    metadata.create_all(engine)
    keys = []
    for n in range(40):
        with engine.begin() as connection:  # TiDB picks the shard per transaction
            keys.append(connection.execute(events.insert().values(n=n)).inserted_primary_key[0])
    # the top bits (after the sign bit) hold a shard number: 40 transactions use several
    shards = {key >> (63 - 4) for key in keys}
    assert len(shards) > 1
    assert len(set(keys)) == 40


def test_reflected_auto_random_is_autoincrement_and_survives_round_trip(engine):
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS visits")
        connection.exec_driver_sql(
            "CREATE TABLE visits (id BIGINT PRIMARY KEY AUTO_RANDOM(4, 60), page VARCHAR(20))")
    original = show_create(engine, "visits")
    try:
        visits = reflect(engine, "visits")
        assert visits.c.id.autoincrement is True
        assert visits.c.id.dialect_options["tidb"]["auto_random"] == (4, 60)
        assert visits.autoincrement_column is visits.c.id
        with engine.begin() as connection:
            (key,) = connection.execute(visits.insert().values(page="/home")).inserted_primary_key
        assert key is not None

        class Base(DeclarativeBase):
            pass

        class Visit(Base):
            __table__ = visits

        with Session(engine) as session:
            visit = Visit(page="/about")
            session.add(visit)
            session.commit()
            assert session.get(Visit, visit.id).page == "/about"

        visits.drop(engine)
        visits.create(engine)
        assert "AUTO_RANDOM(4, 60)" in show_create(engine, "visits")
        assert show_create(engine, "visits") == original.replace(
            _auto_random_base(original), _auto_random_base(show_create(engine, "visits")))
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS visits")


def _auto_random_base(ddl: str) -> str:
    # TiDB reports how far it has allocated (AUTO_RANDOM_BASE=...); that is state, not design
    start = ddl.find("AUTO_RANDOM_BASE=")
    return "" if start < 0 else ddl[start:ddl.find(" ", start)]


@pytest.mark.parametrize("column", [
    Column("id", Integer, primary_key=True, tidb_auto_random=5),
    Column("id", BigInteger, tidb_auto_random=5),
])
def test_auto_random_needs_a_bigint_primary_key(engine, column):
    table = Table("wrong", MetaData(), column, Column("other", Integer, primary_key=True)
                  if not column.primary_key else Column("x", Integer))
    with pytest.raises(InvalidDialectOption, match="BIGINT primary key"):
        str(CreateTable(table).compile(dialect=engine.dialect))


@pytest.mark.parametrize("value", ["five", (1, 2, 3), -1.5, 0, 16, (5, 31), (5, 65)])
def test_auto_random_bad_values_are_refused(engine, value):
    table = Table("wrong", MetaData(),
                  Column("id", BigInteger, primary_key=True, tidb_auto_random=value))
    with pytest.raises(InvalidDialectOption, match="tidb_auto_random"):
        str(CreateTable(table).compile(dialect=engine.dialect))


# -- clustered primary keys and table options ------------------------------------------------

@pytest.mark.parametrize("clustered", [True, False])
def test_clustered_primary_key_ddl_reflection_and_round_trip(engine, metadata, clustered):
    tiles = Table("tiles", metadata, Column("x", Integer), Column("y", Integer),
                  Column("color", String(10)), PrimaryKeyConstraint("x", "y"),
                  tidb_clustered=clustered)
    metadata.create_all(engine)
    word = "CLUSTERED" if clustered else "NONCLUSTERED"
    assert f"/*T![clustered_index] {word} */" in show_create(engine, "tiles")
    reflected = reflect(engine, "tiles")
    assert reflected.dialect_options["tidb"]["clustered"] is clustered
    with engine.begin() as connection:
        connection.execute(tiles.insert(), [{"x": 1, "y": 2, "color": "red"}])
    rows = _rows(engine, reflected)
    reflected.drop(engine)
    reflected.create(engine)
    assert f"/*T![clustered_index] {word} */" in show_create(engine, "tiles")
    assert _rows(engine, reflected) == []
    assert rows == [(1, 2, "red")]


def _rows(engine, table):
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(table))]


OPTIONS = {
    "tidb_clustered": False,
    "tidb_shard_row_id_bits": 4,
    "tidb_pre_split_regions": 2,
    "tidb_auto_id_cache": 1,
    "tidb_ttl": "seen_at + INTERVAL 90 DAY",
    "tidb_ttl_enable": False,
    "tidb_ttl_job_interval": "2h",
}


def test_table_options_are_emitted_reflected_and_kept(engine, metadata):
    Table("sightings", metadata, Column("id", BigInteger, primary_key=True),
          Column("seen_at", DateTime, nullable=False), Column("animal", String(20)), **OPTIONS)
    metadata.create_all(engine)
    ddl = show_create(engine, "sightings")
    for written in ("NONCLUSTERED", "SHARD_ROW_ID_BITS=4", "PRE_SPLIT_REGIONS=2",
                    "AUTO_ID_CACHE=1", "TTL=`seen_at` + INTERVAL 90 DAY", "TTL_ENABLE='OFF'",
                    "TTL_JOB_INTERVAL='2h'"):
        assert written in ddl

    reflected = reflect(engine, "sightings")
    options = reflected.dialect_options["tidb"]
    assert options["clustered"] is False
    assert {key: str(options[key.removeprefix("tidb_")]) for key in OPTIONS
            if key != "tidb_clustered"} == {
        "tidb_shard_row_id_bits": "4", "tidb_pre_split_regions": "2",
        "tidb_auto_id_cache": "1", "tidb_ttl": "`seen_at` + INTERVAL 90 DAY",
        "tidb_ttl_enable": "OFF", "tidb_ttl_job_interval": "2h"}

    # the ORM works on the reflected table, and re-creating it gives the same DDL
    class Base(DeclarativeBase):
        pass

    class Sighting(Base):
        __table__ = reflected

    with Session(engine) as session:
        session.add(Sighting(id=1, seen_at=dt.datetime(2026, 1, 2, 3, 4, 5), animal="fox"))
        session.commit()
        assert session.get(Sighting, 1).animal == "fox"
    reflected.drop(engine)
    reflected.create(engine)
    assert show_create(engine, "sightings") == ddl


@pytest.mark.parametrize(("option", "value", "message"), [
    ("tidb_shard_row_id_bits", "4; DROP TABLE users", "whole number"),
    ("tidb_auto_id_cache", True, "whole number"),
    ("tidb_ttl_enable", "maybe", "True or False"),
    ("tidb_ttl_job_interval", "1 hour'", "duration"),
    ("tidb_clustered", "yes", "True"),
])
def test_bad_table_option_values_are_refused_before_sending(engine, option, value, message):
    extra = {"tidb_ttl": "made_at + INTERVAL 1 DAY"} if option.startswith("tidb_ttl_") else {}
    table = Table("wrong", MetaData(), Column("id", Integer, primary_key=True),
                  Column("made_at", DateTime), **{option: value}, **extra)
    with pytest.raises(InvalidDialectOption, match=message):
        str(CreateTable(table).compile(dialect=engine.dialect))


def test_ttl_details_need_a_ttl(engine):
    table = Table("wrong", MetaData(), Column("id", Integer, primary_key=True),
                  tidb_ttl_enable=True)
    with pytest.raises(InvalidDialectOption, match="needs tidb_ttl"):
        str(CreateTable(table).compile(dialect=engine.dialect))


def test_reflection_of_a_plain_table_reports_no_tidb_only_options(engine, metadata):
    Table("plain", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))
    metadata.create_all(engine)
    options = inspect(engine).get_table_options("plain")
    assert options.get("tidb_clustered") is True  # TiDB clusters an INT key by default
    assert not {"tidb_ttl", "tidb_shard_row_id_bits", "tidb_auto_id_cache"} & set(options)


def test_reflection_keeps_only_options_it_can_write_again(engine):
    parser = engine.dialect._tabledef_parser
    state = parser.parse(
        "CREATE TABLE `t` (\n"
        "  `id` bigint NOT NULL /*T![auto_rand] AUTO_RANDOM(5) */,\n"
        "  PRIMARY KEY (`id`) /*T![clustered_index] CLUSTERED */\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin "
        "/*T![auto_rand_base] AUTO_RANDOM_BASE=30001 */ /*T![placement] PLACEMENT POLICY=`p1` */ "
        "/*T![auto_id_cache] AUTO_ID_CACHE=1 */", "utf8mb4")
    tidb_options = {key: value for key, value in state.table_options.items()
                    if key not in ("tidb_engine", "tidb_default charset", "tidb_collate")}
    assert tidb_options == {"tidb_clustered": True, "tidb_auto_id_cache": "1"}
    assert state.columns[0]["dialect_options"] == {"tidb_auto_random": 5}
    assert state.columns[0]["autoincrement"] is True


@pytest.mark.parametrize(("value", "written"), [(True, "AUTO_RANDOM(5)"), (15, "AUTO_RANDOM(15)"),
                                                ((3, 32), "AUTO_RANDOM(3, 32)")])
def test_auto_random_limits_tidb_accepts(engine, metadata, value, written):
    Table("limits", metadata, Column("id", BigInteger, primary_key=True, tidb_auto_random=value))
    metadata.create_all(engine)
    assert written in show_create(engine, "limits")

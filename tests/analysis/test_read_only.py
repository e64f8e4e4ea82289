"""read_frame only reads: anything but one query is refused before it reaches TiDB."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text, update

from crm_helpers.analysis import reading
from crm_helpers.analysis.reading import NotAQuery, read_frame
from crm_helpers.analysis.schema import analysis_orders, analysis_users
from tests.conftest import loaded_analysis_database


@pytest.fixture(scope="module")
def loaded_analysis_engine(tidb_settings):
    with loaded_analysis_database(tidb_settings, "crm_pytest_readonly", users=100,
                                  orders=1_000) as loaded_analysis_engine:
        yield loaded_analysis_engine


def fingerprint(engine) -> tuple:
    """Row counts, a checksum of the orders and the table list: changes if anything writes."""
    with engine.connect() as connection:
        return (
            connection.exec_driver_sql("SELECT COUNT(*), SUM(oid), SUM(price) FROM orders").one(),
            connection.exec_driver_sql("SELECT COUNT(*) FROM users").scalar_one(),
            tuple(connection.exec_driver_sql("SHOW TABLES").scalars()),
        )


NOT_QUERIES = [
    "DELETE FROM orders WHERE oid = 2",
    "delete from orders",
    "  \n\tDELETE FROM orders WHERE oid = 2",
    "/* just a comment */ DELETE FROM orders WHERE oid = 2",
    "-- comment\nDELETE FROM orders WHERE oid = 2",
    "# comment\nUPDATE orders SET price = 0",
    "(DELETE FROM orders)",
    "INSERT INTO users VALUES (9999, 'Eve', 'Female')",
    "REPLACE INTO users VALUES (1, 'Eve', 'Female')",
    "UPDATE orders SET price = price + 1",
    "DROP TABLE orders",
    "TRUNCATE TABLE orders",
    "CREATE TABLE spare (id INT PRIMARY KEY)",
    "ALTER TABLE orders ADD COLUMN note TEXT",
    "SET @x = 1",
    "SELECT 1; DELETE FROM orders",
    "SELECT 1;DELETE FROM orders;",
    "SELECT * FROM orders WHERE oid = 1 FOR UPDATE",
    "SELECT * FROM orders LOCK IN SHARE MODE",
    "SELECT * FROM orders FOR SHARE",
    "VALUES ROW(1, 2)",
    "SELECT * FROM orders INTO OUTFILE '/tmp/crm_orders_leak.csv'",
    "SELECT oid INTO @o FROM orders LIMIT 1",
    "WITH gone AS (SELECT 2 AS oid) DELETE FROM orders WHERE oid IN (SELECT oid FROM gone)",
    "EXPLAIN ANALYZE DELETE FROM orders WHERE oid = 2",
    "EXPLAIN ANALYZE INSERT INTO users VALUES (9998, 'Eve', 'Female')",
    "DESC ANALYZE UPDATE orders SET price = 0",
    "/*!40000 DELETE FROM orders */",
    "SELECT 1 /*! ; DELETE FROM orders */",
    "SELECT /*T![auto_rand] 1 */ 2",
    "SELECT 'unclosed",
    "SELECT 1 /* unclosed comment",
    "SELECT 'a\\' ; DELETE FROM orders; -- '",
    "SELECT GET_LOCK('crm', 1)",
    "SELECT LOAD_FILE('/etc/passwd')",
    "SELECT NEXTVAL(seq)",
    "SELECT NEXT VALUE FOR seq",
    "BEGIN",
    "COMMIT",
    "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE orders",
    "CALL something()",
    "GRANT ALL ON *.* TO 'crm_app'@'%'",
    "",
    "   ",
    "-- nothing but a comment",
    ";",
]


@pytest.mark.parametrize("sql", NOT_QUERIES)
def test_statements_that_are_not_one_query_are_refused_before_sending(
        loaded_analysis_engine, sql, monkeypatch):
    before = fingerprint(loaded_analysis_engine)
    sent = []
    monkeypatch.setattr(reading.connectorx, "read_sql", lambda *a, **k: sent.append(a))
    with pytest.raises(NotAQuery, match="Nothing was sent"):
        read_frame(loaded_analysis_engine, sql)
    assert sent == []
    assert fingerprint(loaded_analysis_engine) == before


def test_the_issue_example_keeps_the_row(loaded_analysis_engine):
    with pytest.raises(NotAQuery, match="starts with DELETE"):
        read_frame(loaded_analysis_engine, "DELETE FROM orders WHERE oid = 2")
    remaining = read_frame(loaded_analysis_engine, "SELECT COUNT(*) AS n FROM orders WHERE oid = 2")
    assert remaining["n"].item() == 1


@pytest.mark.parametrize("statement", [
    delete(analysis_orders).where(analysis_orders.c.oid == 2),
    update(analysis_orders).values(price=0),
    insert(analysis_users).values(uid=9999, name="Eve", gender="Female"),
    select(analysis_orders).with_for_update(),
    text("DELETE FROM orders"),
    select(analysis_orders).with_for_update(read=True),
    text("SELECT * FROM orders FOR UPDATE").columns(),
])
def test_sqlalchemy_writes_are_refused(loaded_analysis_engine, statement):
    before = fingerprint(loaded_analysis_engine)
    with pytest.raises(NotAQuery):
        read_frame(loaded_analysis_engine, statement)
    assert fingerprint(loaded_analysis_engine) == before


@pytest.mark.parametrize("bad", [None, 42, b"SELECT 1", ["SELECT 1"], object()])
def test_things_that_are_not_sql_are_refused(loaded_analysis_engine, bad):
    with pytest.raises(NotAQuery, match="SQL text or a select"):
        read_frame(loaded_analysis_engine, bad)


QUERIES = [
    ("SELECT COUNT(*) AS n FROM orders", "n", 1_000),
    ("  select count(*) as n from orders ;", "n", 1_000),
    ("(SELECT COUNT(*) AS n FROM orders)", "n", 1_000),
    ("/* why */ SELECT COUNT(*) AS n FROM orders -- counted\n", "n", 1_000),
    ("WITH t AS (SELECT oid FROM orders) SELECT COUNT(*) AS n FROM t", "n", 1_000),
    ("SELECT REPLACE(name, '.', '') AS name FROM users WHERE uid = 1", "name", None),
    ("SELECT COUNT(*) AS n FROM users WHERE name LIKE '%;%' OR name = 'DELETE FROM orders'",
     "n", 0),
    ("SELECT /*+ USE_INDEX(orders, PRIMARY) */ COUNT(*) AS n FROM orders", "n", 1_000),
    ("SELECT 'it''s' AS s", "s", "it's"),
    ("SELECT updated FROM (SELECT 1 AS updated) AS t", "updated", 1),
    ("TABLE users", None, None),
    ("SHOW TABLES", None, None),
    ("SHOW CREATE TABLE orders", None, None),
    ("SHOW GRANTS", None, None),
    ("EXPLAIN SELECT * FROM orders WHERE oid = 2", None, None),
    ("DESC orders", None, None),
]


@pytest.mark.parametrize(("sql", "column", "expected"), QUERIES)
def test_queries_are_read(loaded_analysis_engine, sql, column, expected):
    before = fingerprint(loaded_analysis_engine)
    frame = read_frame(loaded_analysis_engine, sql)
    assert len(frame) > 0
    if expected is not None:
        assert frame[column].iloc[0] == expected
    assert fingerprint(loaded_analysis_engine) == before


def test_show_and_explain_never_take_the_autocommit_path(loaded_analysis_engine, monkeypatch):
    def no_connectorx(*args, **kwargs):
        raise AssertionError("connectorx was used")

    monkeypatch.setattr(reading.connectorx, "read_sql", no_connectorx)
    assert read_frame(loaded_analysis_engine, "SHOW TABLES").attrs["read_path"] == "pandas.read_sql"


def test_parameters_and_chunksize_are_checked(loaded_analysis_engine):
    frame = read_frame(loaded_analysis_engine, select(analysis_orders.c.oid).where(
        analysis_orders.c.oid == 5))
    assert frame["oid"].tolist() == [5]
    with pytest.raises(reading.InvalidInput, match="parameters do not fit"):
        read_frame(loaded_analysis_engine, "SELECT :a AS a", params={"b": 1})
    for chunksize in (0, -5, 2.5, True, "10"):
        with pytest.raises(reading.InvalidInput, match="chunksize"):
            read_frame(loaded_analysis_engine, "SELECT 1 AS a", chunksize=chunksize)


def test_a_column_of_nulls_falls_back_instead_of_crashing(loaded_analysis_engine):
    # connectorx panics (a BaseException from Rust) on a NULL-typed column.
    with pytest.warns(UserWarning, match="connectorx could not run the query"):
        frame = read_frame(loaded_analysis_engine, "SELECT NULL AS nothing, 1 AS one")
    assert frame["nothing"].isna().all() and frame["one"].tolist() == [1]
    assert frame.attrs["read_path"] == "pandas.read_sql"

"""The analysis database: its tables, an engine on it, and emptying them.

Notebook 5's data lives in a database of its own (`crm_analysis`), so the tutorial's tables
stay as notebook 4 leaves them. `dataset` records which generated data set the tables hold.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
)

from crm_helpers.config import SYSTEM_DATABASES, Settings, plain_name, sql_identifier
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import InvalidInput
from crm_helpers.local.server import ensure_tidb

ANALYSIS_DATABASE = "crm_analysis"


analysis_metadata = MetaData()
analysis_users = Table(
    "users", analysis_metadata,
    Column("uid", Integer, primary_key=True, autoincrement=False),
    Column("name", String(50), nullable=False),
    Column("gender", Enum("Female", "Male", name="gender"), nullable=False),
)


# No database-level foreign key here: the loader checks uids before writing, and a foreign
# key would add a lookup per loaded row.
analysis_orders = Table(
    "orders", analysis_metadata,
    Column("oid", BigInteger, primary_key=True, autoincrement=False),
    Column("uid", Integer, nullable=False, index=True),
    Column("price", Double, nullable=False),
    Column("ordered_at", DateTime, nullable=False),
)


# Which generated data set the tables hold, so a resumed load never mixes two of them.
analysis_dataset = Table(
    "dataset", analysis_metadata,
    Column("name", String(20), primary_key=True),
    Column("n_orders", BigInteger, nullable=False),
    Column("n_users", BigInteger, nullable=False),
    Column("seed", BigInteger, nullable=False),
)


def analysis_engine(settings: Settings | None = None,
                    database: str = ANALYSIS_DATABASE) -> Engine:
    """An engine on the analysis database (created with its tables if needed), LOCAL INFILE on."""
    plain_name(database, "The analysis database name")  # fullmatch: no trailing newline
    if database.lower() in SYSTEM_DATABASES or "." in database:
        raise InvalidInput(f"Database name {database!r} is not usable: give 1 to 64 letters, "
                           "digits or '_', not one of TiDB's own schemas (the default is "
                           "'crm_analysis').")
    if settings is not None and not isinstance(settings, Settings):
        raise InvalidInput(f"settings must be a Settings (crm_helpers.config.load_settings()), "
                           f"not {type(settings).__name__}.")
    settings = ensure_tidb(settings)
    admin = tidb_engine(settings.url())
    with admin.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE DATABASE IF NOT EXISTS {sql_identifier(database, formatted=True)}")
    admin.dispose()
    engine = tidb_engine(settings.url(database), connect_args={"local_infile": True})
    analysis_metadata.create_all(engine)
    return engine


def reset_analysis_tables(engine: Engine) -> None:
    """Empty the analysis tables (TRUNCATE: fast, and frees the space)."""
    if not isinstance(engine, Engine):
        raise InvalidInput(f"reset_analysis_tables needs an Engine, not "
                           f"{type(engine).__name__}: pass the one analysis_engine() made.")
    require_analysis_database(engine)
    with engine.begin() as connection:
        for table in analysis_metadata.sorted_tables:
            connection.exec_driver_sql(
                f"TRUNCATE TABLE {sql_identifier(table.name, formatted=True)}")


def require_analysis_database(engine: Engine) -> None:
    """Refuse an engine on another database (e.g. the CRM's): its tables are not ours to empty."""
    with engine.connect() as connection:
        tables = set(connection.exec_driver_sql("SHOW TABLES").scalars())
    if analysis_dataset.name not in tables:
        raise InvalidInput(
            f"The engine's database {engine.url.database!r} is not an analysis database (it "
            f"has no {analysis_dataset.name!r} table), so its tables are left alone. Use the "
            "engine analysis_engine() returns.")

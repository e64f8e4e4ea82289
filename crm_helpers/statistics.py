"""Table statistics after a bulk load: wait until TiDB has counted the new rows, then ANALYZE.

TiDB counts the rows each transaction writes in memory and adds them to its statistics
(`mysql.stats_meta`) in the background, every 20 statistics leases (about a minute by default,
seconds on the project's local TiDB). An `ANALYZE` that runs before that is partly undone: the
late count is added on top of the analyzed one, and the optimizer then sees twice the rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import Engine, text

from crm_helpers.errors import InvalidInput

#: How long `analyze_after_load` waits for TiDB to count the loaded rows before analyzing anyway.
COUNT_WAIT_SECONDS = 120.0


def counted_rows(engine: Engine, tables: list[str]) -> dict[str, int]:
    """The row count TiDB's statistics hold for each of `tables` in the engine's database."""
    with engine.connect() as connection:
        database = connection.execute(text("SELECT DATABASE()")).scalar()
        rows = connection.execute(
            text("SHOW STATS_META WHERE Db_name = :database AND Table_name IN :names"),
            {"database": database, "names": tuple(tables)}).mappings().all()
    return {row["Table_name"]: int(row["Row_count"]) for row in rows}


def analyze_after_load(engine: Engine, loaded: Mapping[str, int], *,
                       wait: float = COUNT_WAIT_SECONDS) -> None:
    """ANALYZE the tables in `loaded` once TiDB counts at least that many rows in each."""
    names = list(loaded)
    if not names or any(not name.isidentifier() for name in names):
        raise InvalidInput(f"analyze_after_load needs plain table names, got {names!r}.")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        counted = counted_rows(engine, names)
        if all(counted.get(name, 0) >= rows for name, rows in loaded.items()):
            break
        time.sleep(0.5)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE TABLE " + ", ".join(f"`{n}`" for n in names))

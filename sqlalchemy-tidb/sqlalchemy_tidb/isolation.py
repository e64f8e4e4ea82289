"""TiDB's isolation levels, and what to use instead of the ones it lacks."""

from __future__ import annotations

from sqlalchemy_tidb.exc import UnsupportedIsolationLevel

#: The isolation levels TiDB has (besides AUTOCOMMIT, which is a driver setting).
ISOLATION_LEVELS = ("READ COMMITTED", "REPEATABLE READ")

# Levels of the SQL standard that TiDB refuses (error 8048), and what to use instead.
_MISSING_ISOLATION_LEVELS = {
    "SERIALIZABLE": "TiDB has no SERIALIZABLE isolation. Its REPEATABLE READ is snapshot "
                    "isolation; to make a read-then-write safe, lock the rows you read with "
                    "SELECT ... FOR UPDATE (select(...).with_for_update()).",
    "READ UNCOMMITTED": "TiDB has no READ UNCOMMITTED isolation: it never shows uncommitted "
                        "data. Use READ COMMITTED.",
}


def missing_isolation_level_advice(level: str) -> str:
    """What to use instead of an isolation level TiDB lacks (SERIALIZABLE, READ UNCOMMITTED)."""
    normalized = level.replace("_", " ").replace("-", " ").upper().strip()
    instead = _MISSING_ISOLATION_LEVELS.get(normalized, "")
    return (f"Isolation level {level!r} is not available on TiDB: {instead} TiDB offers "
            f"{' and '.join(ISOLATION_LEVELS)} (the default), plus AUTOCOMMIT.")


def refuse_missing_isolation_level(level: str) -> None:
    """Raise UnsupportedIsolationLevel for SERIALIZABLE / READ UNCOMMITTED (any spelling)."""
    normalized = level.replace("_", " ").replace("-", " ").upper().strip()
    if normalized in _MISSING_ISOLATION_LEVELS:
        raise UnsupportedIsolationLevel(missing_isolation_level_advice(level))

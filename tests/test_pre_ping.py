"""pool_pre_ping=True after a TiDB restart: each kind of engine reconnects without a word.

The pooled connections die with the server. On the next checkout the pre-ping fails, the
pool opens a new connection, and the caller sees nothing, on a plain `tidb://` engine (the
dialect's handle_error listener must leave the ping alone), on `mysql+pymysql://`, and on a
project engine (the `crm_lesson` plugin's listener too).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, text

from crm_helpers.config import Settings
from crm_helpers.local.server import start_local_tidb, stop_local_tidb
from tests.conftest import spare_tidb


def _use_once(engine: Engine) -> None:
    """Run SELECT 1 and return the connection to the pool."""
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def _count_connections(engine: Engine) -> list[object]:
    """A list that gets one entry for each new DBAPI connection the engine's pool opens."""
    opened: list[object] = []
    event.listen(engine, "connect", lambda dbapi_connection, record: opened.append(record))
    return opened


@pytest.mark.lifecycle
def test_pre_ping_reconnects_silently_after_a_restart(tmp_path: Path) -> None:
    with spare_tidb(tmp_path / "tidb") as local:
        settings = Settings(port=local.port, status_port=local.status_port)
        engines = {
            "tidb://": create_engine(local.url(), pool_pre_ping=True),
            "mysql+pymysql://": create_engine(local.url().set(drivername="mysql+pymysql"),
                                              pool_pre_ping=True),
            # Settings.url() names the crm_lesson plugin: the lesson's advice is on it.
            "project (crm_lesson)": create_engine(settings.url(), pool_pre_ping=True),
        }
        opened = {name: _count_connections(engine) for name, engine in engines.items()}
        try:
            for engine in engines.values():
                _use_once(engine)
                assert engine.pool.checkedin() == 1, "the connection went back to the pool"

            stop_local_tidb(local)
            start_local_tidb(local)

            with warnings.catch_warnings():
                warnings.simplefilter("error")  # silently: not even a warning
                for engine in engines.values():
                    _use_once(engine)
            for name in engines:
                # The ping found the old connection dead and the pool opened a second one.
                assert len(opened[name]) == 2, f"{name}: {len(opened[name])} connections opened"
        finally:
            for engine in engines.values():
                engine.dispose()

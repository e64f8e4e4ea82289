"""Alembic's dialect test suite (`alembic.testing.suite`), as third-party dialects run it.

Collected only with `--suite alembic` (conftest.py); the requirements class
(sqlalchemy_tidb/alembic_requirements.py) decides which tests apply to TiDB.
"""

from alembic.testing.suite import *  # noqa: F403

"""SQLAlchemy's dialect compliance suite, as third-party dialects run it.

Every test class of `sqlalchemy.testing.suite` is collected here; the requirements class
(sqlalchemy_tidb/requirements.py) decides which apply to TiDB.
"""

from sqlalchemy.testing.suite import *  # noqa: F403

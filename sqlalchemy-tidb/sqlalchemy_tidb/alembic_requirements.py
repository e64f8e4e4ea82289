"""What TiDB offers, in the terms of Alembic's dialect test suite (`alembic.testing.suite`).

Alembic's suite asks the same kind of requirements object as SQLAlchemy's, with names of its
own (foreign-key options, comments, ALTER COLUMN). This class is SQLAlchemy's requirements for
TiDB (sqlalchemy_tidb/requirements.py) plus Alembic's, so both suites see TiDB the same way;
the tidb:// and mysql+pymysql:// runs share it, as they share the SQLAlchemy one.

Used only by the compliance suite (test/compliance/, `--suite alembic`); it needs pytest and
Alembic.
"""

from __future__ import annotations

from alembic.testing.requirements import SuiteRequirements as AlembicSuiteRequirements
from sqlalchemy.testing import exclusions

from sqlalchemy_tidb.requirements import TiDBRequirements, mysql_family


class TiDBAlembicRequirements(TiDBRequirements, AlembicSuiteRequirements):
    """Alembic-suite requirements for TiDB; TiDBRequirements' choices win where both speak."""

    # Alembic's suite keeps these closed unless the database says otherwise.
    # The AUTOCOMMIT isolation level (ISOLATION_LEVELS), so autocommit_block() works.
    autocommit_isolation = exclusions.open()
    # AUTO_INCREMENT on the first column of a composite primary key, as MySQL.
    autoincrement_on_composite_pk = exclusions.open()
    # SHOW CREATE TABLE names ON DELETE / ON UPDATE unless it is the default (RESTRICT).
    fk_ondelete_is_reflected = exclusions.open()
    fk_onupdate_is_reflected = exclusions.open()

    # As in MySQL, and Alembic's defaults: foreign keys are checked at once, never deferred.
    fk_deferrable = mysql_family(
        "foreign keys cannot be DEFERRABLE or INITIALLY DEFERRED",
        "1064 You have an error in your SQL syntax ... near \"DEFERRABLE INITIALLY DEFERRED)\"")
    fk_initially = fk_deferrable
    fk_deferrable_is_reflected = fk_deferrable


#: Single Alembic suite tests (pattern over `Class::test[params]`) that fail on TiDB for a reason
#: no requirement covers, with TiDB's behaviour; marked like KNOWN_TIDB_ISSUES.
KNOWN_TIDB_ALEMBIC_ISSUES: dict[str, tuple[str, str]] = {}

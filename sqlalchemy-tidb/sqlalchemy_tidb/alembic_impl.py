"""Alembic for `tidb://`: MySQL's migration implementation under the dialect name `tidb`.

Alembic picks an implementation by the dialect's name; defining `TiDBImpl` registers it for
`tidb`, so `alembic revision --autogenerate`, `upgrade` and `downgrade` work through tidb://.
`sqlalchemy_tidb` imports this module whenever Alembic is installed.
"""

from __future__ import annotations

from alembic.ddl.base import ColumnDefault, ColumnName, ColumnNullable, ColumnType
from alembic.ddl.mysql import (
    MySQLAlterDefault,
    MySQLChangeColumn,
    MySQLImpl,
    MySQLModifyColumn,
    _mysql_alter_default,
    _mysql_change_column,
    _mysql_doesnt_support_individual,
    _mysql_drop_constraint,
    _mysql_modify_column,
)
from sqlalchemy import schema
from sqlalchemy.ext.compiler import compiles


class TiDBImpl(MySQLImpl):
    """Alembic's MySQL implementation, for the dialect named `tidb`."""

    __dialect__ = "tidb"


# Alembic compiles its MySQL ALTER statements only for dialects named mysql and mariadb;
# TiDB speaks the same ALTER TABLE ... MODIFY / CHANGE / ALTER COLUMN, so reuse them.
for _construct, _compile in (
        (ColumnNullable, _mysql_doesnt_support_individual),
        (ColumnName, _mysql_doesnt_support_individual),
        (ColumnDefault, _mysql_doesnt_support_individual),
        (ColumnType, _mysql_doesnt_support_individual),
        (MySQLAlterDefault, _mysql_alter_default),
        (MySQLModifyColumn, _mysql_modify_column),
        (MySQLChangeColumn, _mysql_change_column),
        (schema.DropConstraint, _mysql_drop_constraint)):
    compiles(_construct, "tidb")(_compile)

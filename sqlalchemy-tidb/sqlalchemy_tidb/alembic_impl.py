"""Alembic for `tidb://`: MySQL's migration implementation under the dialect name `tidb`.

Alembic picks an implementation by the dialect's name; defining `TiDBImpl` registers it for
`tidb`, so `alembic revision --autogenerate`, `upgrade` and `downgrade` work through tidb://.
`sqlalchemy_tidb` imports this module whenever Alembic is installed.

Autogenerate already reads TiDB's additions back as they were declared (AUTO_RANDOM and the
`tidb_*` table options through sqlalchemy_tidb.reflection, VECTOR through the dialect's type
names), so a schema made from metadata compares equal to it. What differs from MySQL is the
VECTOR type: its dimension is compared (`compare_type`), and a revision script writes it with
the import it needs (`render_type`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

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
from sqlalchemy.types import TypeDecorator, TypeEngine

from sqlalchemy_tidb.vector import VECTOR

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext


class TiDBImpl(MySQLImpl):
    """Alembic's MySQL implementation, for the dialect named `tidb`."""

    __dialect__ = "tidb"

    def render_type(self, type_obj: TypeEngine[Any],
                     autogen_context: AutogenContext) -> str | Literal[False]:
        if not isinstance(type_obj, VECTOR):
            return super().render_type(type_obj, autogen_context)
        # Alembic writes a type from outside SQLAlchemy as module.Class(...) but imports no
        # module for it, so the revision would fail with a NameError when it runs.
        if autogen_context.imports is not None:
            autogen_context.imports.add("import sqlalchemy_tidb")
        return f"sqlalchemy_tidb.VECTOR({'' if type_obj.dim is None else type_obj.dim})"

    def compare_type(self, inspector_column: schema.Column[Any],
                     metadata_column: schema.Column[Any]) -> bool:
        reflected = _vector(inspector_column.type)
        declared = _vector(metadata_column.type)
        if reflected is None and declared is None:
            return super().compare_type(inspector_column, metadata_column)
        # Alembic overlooks a type argument only one side has (VARCHAR vs VARCHAR(30) is a
        # detail of reflection), but VECTOR takes any dimension and VECTOR(3) only three:
        # going from one to the other is a change that ALTER TABLE must make.
        return reflected is None or declared is None or reflected.dim != declared.dim


def _vector(type_: TypeEngine[Any]) -> VECTOR | None:
    """The VECTOR a column type is (directly or under a TypeDecorator), else None."""
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_ if isinstance(type_, VECTOR) else None


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

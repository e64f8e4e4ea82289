"""Notebook 04 defines the tutorial's classes in a cell: they must match crm_helpers' models."""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Iterator
from decimal import Decimal

import nbformat
import pytest
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateTable

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.errors import CrmError
from crm_helpers.lesson import models

NOTEBOOK = PROJECT_ROOT / "notebooks" / "04_crm_application.ipynb"


def notebook_cell(marker: str) -> str:
    """The source of the code cell of notebook 04 that contains `marker`."""
    cells = [cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells
             if cell.cell_type == "code" and marker in cell.source]
    assert len(cells) == 1, f"expected one cell with {marker!r}, found {len(cells)}"
    return cells[0]


@pytest.fixture(scope="module")
def notebook_models() -> Iterator[dict]:
    """The names the notebook's model cell defines, run with the imports the notebook makes."""
    module = types.ModuleType("notebook_04_models")
    sys.modules[module.__name__] = module  # SQLAlchemy resolves annotations through it
    imports = [node for node in ast.parse(notebook_cell("import enum")).body
               if isinstance(node, ast.Import | ast.ImportFrom)]
    model_cell = notebook_cell("class Base(DeclarativeBase)")
    for source in (ast.unparse(ast.Module(imports, [])), model_cell):
        # dont_inherit: run the cell as the notebook does, not under this file's __future__.
        exec(compile(source, str(NOTEBOOK), "exec", dont_inherit=True), module.__dict__)
    yield module.__dict__
    del sys.modules[module.__name__]


@pytest.mark.parametrize("table", ["users", "orders"])
def test_notebook_tables_are_the_models_tables(notebook_models, table):
    dialect = mysql.dialect()
    ours = notebook_models["Base"].metadata.tables[table]
    theirs = models.Base.metadata.tables[table]
    assert str(CreateTable(ours).compile(dialect=dialect)) == \
        str(CreateTable(theirs).compile(dialect=dialect))
    assert [type(c.type) for c in ours.columns] == [type(c.type) for c in theirs.columns]


def test_notebook_gender_is_the_models_gender(notebook_models):
    assert [(m.name, m.value) for m in notebook_models["Gender"]] == \
        [(m.name, m.value) for m in models.Gender]


@pytest.mark.parametrize("cls", ["User", "Order"])
def test_notebook_classes_validate_the_same_attributes(notebook_models, cls):
    ours = notebook_models[cls].__mapper__.validators
    theirs = getattr(models, cls).__mapper__.validators
    assert set(ours) == set(theirs)


def _outcome(make):
    try:
        made = make()
    except CrmError as error:
        return type(error).__name__, str(error)
    return "ok", repr(made)


@pytest.mark.parametrize("values", [
    {"uid": 1, "price": 2.5}, {"uid": 1, "price": -3}, {"uid": "1", "price": 1.0},
    {"uid": True, "price": 1.0}, {"uid": 2, "price": 123456789.99},
    {"uid": 3, "price": Decimal("9.99")}, {"uid": 3, "price": 1e308}])
def test_notebook_order_checks_like_the_model(notebook_models, values):
    assert _outcome(lambda: notebook_models["Order"](**values)) == \
        _outcome(lambda: models.Order(**values))


@pytest.mark.parametrize(("name", "gender"), [
    ("Ben", "Male"), ("Ben", "robot"), ("", "Female"), ("x" * 51, "Male"), ("Ann", "female")])
def test_notebook_user_checks_like_the_model(notebook_models, name, gender):
    ours = _outcome(lambda: notebook_models["User"](name=name, gender=gender))
    theirs = _outcome(lambda: models.User(name=name, gender=gender))
    assert ours == theirs

"""The committed notebooks teach the tutorial's own code and save outputs a reader can trust."""

from __future__ import annotations

import nbformat
import pytest

from crm_helpers.config import PROJECT_ROOT, load_settings
from crm_helpers.devtools.notebook_run import tagged_output

NOTEBOOKS = PROJECT_ROOT / "notebooks"
LESSON = NOTEBOOKS / "04_crm_application.ipynb"


def code_of(name: str) -> str:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def outputs_of(name: str) -> list[dict]:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs]


def output_text(output: dict) -> str:
    return output.get("text", "") + "".join(
        value for value in output.get("data", {}).values() if isinstance(value, str))


@pytest.mark.parametrize("operation", [
    "class User(Base):", "class Order(Base):", "class Gender(enum.Enum):",
    "Base.metadata.create_all(engine)", "session.add_all([", "session.add(first_order)",
    "session.commit()", "session.query(Order).filter(Order.oid == 4).delete()",
    'session.query(Order).filter(Order.oid == 1).update({"price": 3.5})',
    "delete(Order).where(Order.oid == 4)", "update(Order).where(Order.oid == 1)",
    "session.query(User.name, Order.price)", "select(User.name, Order.price)",
    "session.add(Order(uid=1, price=-3))", "session.add(Order(uid=42, price=9.99))",
    "%load_ext sql", "%%sql",
])
def test_notebook_04_cells_hold_the_tutorials_operations(operation):
    assert operation in code_of("04_crm_application.ipynb")


def test_notebook_04_no_longer_hides_the_lesson_in_helpers():
    code = code_of("04_crm_application.ipynb")
    for helper in ("add_users(", "add_orders(", "delete_order(", "set_order_price(",
                   "reset_crm_tables("):
        assert helper not in code


def test_notebook_04_prints_the_tutorials_result():
    assert tagged_output(LESSON) == "[('Ben', 212.5), ('Ben', 8.5)]"


def test_notebook_05_aggregates_in_sql_cells():
    assert "%%sql" in code_of("05_explore_orders.ipynb")


def test_saved_progress_bars_show_no_frozen_zero_percent():
    for output in outputs_of("05_explore_orders.ipynb"):
        data = output.get("data", {})
        if "application/vnd.jupyter.widget-view+json" in data:
            assert "0%" not in data.get("text/plain", "")


@pytest.mark.parametrize("name", ["02_create_database.ipynb", "04_crm_application.ipynb"])
def test_saved_outputs_hold_no_password(name):
    settings = load_settings()
    secrets = [s for s in (settings.app_password, settings.password) if s and len(s) >= 6]
    text = "\n".join(output_text(output) for output in outputs_of(name))
    assert "IDENTIFIED BY '***'" in text or name != "02_create_database.ipynb"
    for secret in secrets:
        assert secret not in text

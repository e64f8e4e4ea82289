"""Every exercise's reference solution, put in its notebook in place of the placeholder and run
there (nbclient, against the session's TiDB), passes its check; the committed notebooks hold
the exercises unanswered."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.lesson.exercise_bank import NOTEBOOKS

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
FILES = {
    "create_database": "02_create_database.ipynb",
    "crm_application": "04_crm_application.ipynb",
    "explore_orders": "05_explore_orders.ipynb",
    "what_tidb_adds": "06_what_tidb_adds.ipynb",
}


def exercise_cells(notebook: nbformat.NotebookNode, bank: list) -> list[nbformat.NotebookNode]:
    """The cell of each exercise: the one that starts with its starter code."""
    cells = []
    for exercise in bank:
        found = [cell for cell in notebook.cells
                 if cell.cell_type == "code" and cell.source.startswith(exercise.starter)]
        assert len(found) == 1, f"no single cell starts with {exercise.starter!r}"
        cells.append(found[0])
    return cells


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.outputs
                   if output.output_type == "stream")


@pytest.mark.parametrize("key", sorted(FILES))
def test_exercise_cells_are_committed_unanswered(key: str) -> None:
    _, bank, _ = NOTEBOOKS[key]
    notebook = nbformat.read(NOTEBOOK_DIR / FILES[key], as_version=4)
    for number, cell in enumerate(exercise_cells(notebook, bank), start=1):
        assert f"q{number}.check({bank[number - 1].answer_name})" in cell.source
        # Code only, no prose: the Japanese edition reuses these cells byte for byte.
        rest = cell.source[len(bank[number - 1].starter):].splitlines()
        assert all(re.fullmatch(rf"(# )?q{number}\.(check\(\w+\)|hint\(\)|solution\(\))|",
                                line) for line in rest), rest
        assert printed(cell) == (f"q{number}: not answered yet. Replace ____ with your code, "
                                 "then run the cell again.\n")


@pytest.mark.parametrize("key", sorted(FILES))
def test_exercise_solutions_pass_their_checks_in_the_notebook(key: str) -> None:
    _, bank, _ = NOTEBOOKS[key]
    notebook = nbformat.read(NOTEBOOK_DIR / FILES[key], as_version=4)
    cells = exercise_cells(notebook, bank)
    for exercise, cell in zip(bank, cells, strict=True):
        cell.source = exercise.solution.strip() + "\n" + cell.source[len(exercise.starter):]
    # Notebook 5 runs at the suite's CRM_EXPLORE_ORDERS (the root conftest sets it).
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    for number, cell in enumerate(cells, start=1):
        assert printed(cell).startswith(f"q{number}: Correct"), printed(cell)
    summary = notebook.cells[[c.source for c in notebook.cells].index(
        next(c.source for c in notebook.cells if c.source.endswith(".summary()")))]
    assert printed(summary) == (f"{len(bank)} of {len(bank)} exercises of this notebook "
                                "done.\n")

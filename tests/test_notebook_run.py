"""`make run`: notebooks executed headless into a build folder, HTML next to them."""

from __future__ import annotations

from crm_helpers.devtools.notebook_run import NOTEBOOKS, run_notebooks, tagged_output


def test_crm_notebook_runs_headless_and_gives_the_tutorial_result(tmp_path):
    seconds = run_notebooks(tmp_path, [NOTEBOOKS / "04_crm_application.ipynb"])
    assert list(seconds) == ["04_crm_application.ipynb"]
    assert (tmp_path / "04_crm_application.html").read_text().count("Ben") >= 2
    assert tagged_output(tmp_path / "04_crm_application.ipynb") == (
        "[('Ben', 212.5), ('Ben', 8.5)]")

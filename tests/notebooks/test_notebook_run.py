"""`make run`: notebooks executed headless into a build folder, HTML next to them.

The machinery is tested on a small notebook of the test's own that asks the session's TiDB a
question: the lesson notebooks themselves run once per suite, under nbval.
"""

from __future__ import annotations

import nbformat

from crm_helpers.devtools.notebook_run import RESULT_TAG, run_notebooks, tagged_output


def test_a_notebook_runs_headless_into_the_build_folder_with_html(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from crm_helpers import ensure_tidb, tidb_engine\n"
                                  "engine = tidb_engine(ensure_tidb().url())"),
        nbformat.v4.new_code_cell("with engine.connect() as connection:\n"
                                  "    print(connection.exec_driver_sql("
                                  "\"SELECT CONCAT('Ben', ' ', 6 * 7)\").scalar())",
                                  metadata={"tags": [RESULT_TAG]}),
    ])
    nbformat.write(notebook, source / "99_probe.ipynb")
    build = tmp_path / "build"
    seconds = run_notebooks(build, [source / "99_probe.ipynb"])
    assert list(seconds) == ["99_probe.ipynb"]
    assert tagged_output(build / "99_probe.ipynb") == "Ben 42"
    assert "Ben 42" in (build / "99_probe.html").read_text()

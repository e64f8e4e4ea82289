"""The tutorial's step 3 with Poetry, on this repository's dialect instead of PingCAP's archive.

The tutorial runs `poetry init --no-interaction --dependency sqlalchemy`, then `poetry add` of
PingCAP's archived sqlalchemy-tidb git repository (SQLAlchemy < 2 only), then `python3 main.py`.
Here the same steps take the dialect by path (`poetry add <repo>/sqlalchemy-tidb`) in a new
project, and the tutorial's program runs in Poetry's virtualenv on the session's TiDB. Poetry
reaches PyPI only; its virtualenv, cache, configuration and data stay in the temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_helpers.config import PROJECT_ROOT, Settings
from tests.conftest import throwaway_database

DIALECT = PROJECT_ROOT / "sqlalchemy-tidb"
PROGRAM = PROJECT_ROOT / "examples" / "tutorial_main.py"
#: The output the tutorial documents for its main.py.
TUTORIAL_OUTPUT = "[('Ben', 212.5), ('Ben', 8.5)]"
# Resolving and installing from PyPI on a busy machine takes a while.
STEP_TIMEOUT = 900

pytestmark = pytest.mark.skipif(
    shutil.which("poetry") is None,
    reason="poetry is not on PATH: install it (pip install poetry, as .ci/run does in "
           "build/poetry-venv) to run the tutorial's Poetry step")


@pytest.fixture
def database(tidb_settings: Settings) -> Iterator[str]:
    """An empty database of this test's own for the tutorial's tables."""
    with throwaway_database(tidb_settings, "crm_pytest_poetry") as name:
        yield name


def poetry_env(home: Path) -> dict[str, str]:
    """This process's environment for Poetry, with all of Poetry's own state under `home`."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("POETRY_", "VIRTUAL_ENV", "PIP_", "TIDB_", "CA_PATH"))}
    return {**env, "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            "POETRY_CACHE_DIR": str(home / "cache"), "POETRY_CONFIG_DIR": str(home / "config"),
            "POETRY_DATA_DIR": str(home / "data"), "POETRY_NO_INTERACTION": "1"}


def run(command: list[str], project: Path, env: dict[str, str]) -> str:
    """Run one step in `project`; its stdout, or a failure that shows what Poetry said."""
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n"
                    f"{done.stderr}")
    return done.stdout


def test_the_tutorials_poetry_steps_run_its_program(tmp_path: Path, tidb_settings: Settings,
                                                     database: str) -> None:
    project = tmp_path / "crm-tutorial"
    project.mkdir()
    env = poetry_env(tmp_path / "poetry")

    run(["poetry", "init", "-n", "--name", "crm-tutorial", "--dependency", "sqlalchemy"],
        project, env)
    # The dialect by path, where the tutorial names PingCAP's archived git repository;
    # PyMySQL comes with it. The program reads .env like the project, hence python-dotenv.
    run(["poetry", "add", str(DIALECT), "python-dotenv"], project, env)
    # The project is main.py alone, no package of its own to install (Poetry 2 would refuse).
    run(["poetry", "install", "--no-root"], project, env)
    assert (project / ".venv").is_dir(), "the virtualenv is not inside the project"
    shutil.copy(PROGRAM, project / "main.py")

    # The tutorial's URL shape, on the session's TiDB; the crm_lesson plugin is the project's
    # and is not installed in the tutorial's virtualenv.
    url = tidb_settings.url(database).difference_update_query(["plugin"])
    output = run(["poetry", "run", "python", "main.py"], project,
                 {**env, "TIDB_URL": url.render_as_string(hide_password=False)})

    assert output.strip() == TUTORIAL_OUTPUT
    lock = (project / "poetry.lock").read_text()
    assert 'name = "sqlalchemy-tidb"' in lock and 'name = "pymysql"' in lock

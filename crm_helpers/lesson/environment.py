"""What the project installs, as DataFrames: requirements, installed versions, both manifests."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pandas as pd
from packaging.requirements import Requirement

from crm_helpers.config import PROJECT_ROOT

# Why each dependency is here, for notebook 03.
PURPOSE = {
    "sqlalchemy-tidb": "the tidb:// dialect, this repository's own sqlalchemy-tidb/ package",
    "sqlalchemy": "ORM and SQL toolkit; the tidb:// dialect builds on its MySQL dialect",
    "pymysql": "pure-Python MySQL-protocol driver that talks to TiDB",
    "pandas": "every query result is shown as a DataFrame",
    "packaging": "compares installed versions with these requirements",
    "numpy": "generates the exploration data set",
    "pyarrow": "columnar data behind fast reads and pandas' string columns",
    "connectorx": "reads query results into DataFrames from Rust, many times faster",
    "python-dotenv": "reads TIDB_* settings and CRM_APP_PASSWORD from .env",
    "tqdm": "progress bars for the tidb-server build and bulk loads",
    "matplotlib": "charts in the exploration notebook",
    "jupyterlab": "the notebook interface (`make lab`)",
    "ipywidgets": "progress bars drawn as widgets in JupyterLab",
    "ipykernel": "the Python kernel the notebooks run in",
    "nbconvert": "runs notebooks headless and renders HTML (`make run`)",
    "jupysql": "SQL cells (`%sql`, `%%sql`) whose results are DataFrames",
    "toml": "lets JupySQL read its settings from pyproject.toml",
    "pytest": "the test runner (`make test`)",
    "nbval": "re-runs every notebook and compares it with its committed outputs",
    "ruff": "linter for the package, tests and notebooks",
    "playwright": "drives JupyterLab in a real Chromium in the browser test",
    "alembic": "migrations through tidb://, tested with Alembic's own suite",
    "asyncmy": "asyncio MySQL-protocol driver behind tidb+asyncmy:// (create_async_engine)",
    "greenlet": "lets SQLAlchemy's asyncio layer run its sync core for async engines",
}
# In environment.yml only: the interpreter, pip itself, and Go for building tidb-server.
CONDA_ONLY = ("python", "pip", "go")
# conda-forge names a few packages differently from PyPI: conda name -> pip name.
PIP_NAMES = {"playwright-python": "playwright"}


def pyproject_requirements() -> list[Requirement]:
    """Runtime and dev requirements from pyproject.toml."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    # hatchling fills in {root:uri} (this folder) when it builds; packaging needs a URL.
    root = PROJECT_ROOT.as_uri()
    return [Requirement(spec.replace("{root:uri}", root)) for spec in
            project["dependencies"] + project["optional-dependencies"]["dev"]]


def _spec_text(requirement: Requirement) -> str:
    # Written as in the manifest (">=2.0,<2.2"), not in packaging's sorted form.
    return ",".join(sorted(map(str, requirement.specifier), key=lambda s: s[0] == "<"))


def conda_requirements() -> dict[str, str]:
    """Package name to version spec, from environment.yml's conda dependencies.

    A folder of this repository in the pip section (`- ./sqlalchemy-tidb[numpy]`) counts as
    the distribution it holds, with no version spec, as in pyproject.toml.
    """
    text = (PROJECT_ROOT / "environment.yml").read_text().split("\ndependencies:\n", 1)[1]
    found = {}
    for line in text.splitlines():
        match = re.match(r"^  - ([A-Za-z0-9_.\-]+)\s*([^#:]*?)\s*(#.*)?$", line)
        if match:
            name = match.group(1).lower()
            found[PIP_NAMES.get(name, name)] = match.group(2)
        folder = re.match(r"^      - \./([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*$", line)
        if folder:
            found[_distribution_in(folder.group(1))] = ""
    return found


def _distribution_in(folder: str) -> str:
    return tomllib.loads((PROJECT_ROOT / folder / "pyproject.toml").read_text())["project"]["name"]


def requirements_frame() -> pd.DataFrame:
    """Each requirement with the installed version and whether it satisfies the spec."""
    rows = []
    for requirement in pyproject_requirements():
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            installed = None
        ok = installed is not None and requirement.specifier.contains(installed, prereleases=True)
        rows.append((requirement.name, _spec_text(requirement), installed, ok,
                     PURPOSE.get(requirement.name, "")))
    return pd.DataFrame(rows, columns=["package", "required", "installed", "ok", "why"])


def manifests_frame() -> pd.DataFrame:
    """Each dependency's version spec in pyproject.toml and in environment.yml, side by side."""
    pip_specs = {r.name.lower(): _spec_text(r) for r in pyproject_requirements()}
    conda_specs = conda_requirements()
    names = list(pip_specs) + [n for n in conda_specs if n not in pip_specs]
    return pd.DataFrame(
        [(name, pip_specs.get(name, "-"), conda_specs.get(name, "-")) for name in names],
        columns=["package", "pyproject.toml", "environment.yml"])

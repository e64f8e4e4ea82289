"""What the project installs, as DataFrames: requirements, installed versions, both manifests."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pandas as pd
from packaging.requirements import Requirement

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.language import Text

# Why each dependency is here, for notebook 03, in the notebook's language.
PURPOSE = {
    "sqlalchemy-tidb": Text(
        en="the tidb:// dialect, this repository's own sqlalchemy-tidb/ package",
        ja="tidb:// 方言。このリポジトリ自身の sqlalchemy-tidb/ パッケージ"),
    "sqlalchemy": Text(
        en="ORM and SQL toolkit; the tidb:// dialect builds on its MySQL dialect",
        ja="ORM と SQL ツールキット。tidb:// 方言はその MySQL 方言の上に作られています"),
    "pymysql": Text(
        en="pure-Python MySQL-protocol driver that talks to TiDB",
        ja="TiDB と通信する純 Python の MySQL プロトコルドライバー"),
    "pandas": Text(
        en="every query result is shown as a DataFrame",
        ja="すべてのクエリ結果を DataFrame で表示します"),
    "packaging": Text(
        en="compares installed versions with these requirements",
        ja="インストール済みのバージョンをこれらの要件と照合します"),
    "numpy": Text(
        en="generates the exploration data set",
        ja="探索用のデータセットを生成します"),
    "pyarrow": Text(
        en="columnar data behind fast reads and pandas' string columns",
        ja="高速な読み込みと pandas の文字列列を支える列指向データ"),
    "connectorx": Text(
        en="reads query results into DataFrames from Rust, many times faster",
        ja="クエリ結果を Rust で DataFrame に読み込みます (何倍も高速)"),
    "python-dotenv": Text(
        en="reads TIDB_* settings and CRM_APP_PASSWORD from .env",
        ja="TIDB_* の設定と CRM_APP_PASSWORD を .env から読み込みます"),
    "tqdm": Text(
        en="progress bars for the tidb-server build and bulk loads",
        ja="tidb-server のビルドと一括読み込みの進捗バー"),
    "matplotlib": Text(
        en="charts in the exploration notebook",
        ja="探索ノートブックのグラフ"),
    "matplotlib-fontja": Text(
        en="a font with Japanese glyphs for the Japanese edition's charts",
        ja="日本語版のグラフ用の、日本語の字形を持つフォント"),
    "jupyterlab": Text(
        en="the notebook interface (`make lab`)",
        ja="ノートブックの画面 (`make lab`)"),
    "jupyterlab-language-pack-ja-jp": Text(
        en="JupyterLab's menus in Japanese (`make lab-ja`)",
        ja="JupyterLab のメニューを日本語に (`make lab-ja`)"),
    "ipywidgets": Text(
        en="progress bars drawn as widgets in JupyterLab",
        ja="JupyterLab でウィジェットとして描かれる進捗バー"),
    "ipykernel": Text(
        en="the Python kernel the notebooks run in",
        ja="ノートブックを実行する Python カーネル"),
    "nbconvert": Text(
        en="runs notebooks headless and renders HTML (`make run`)",
        ja="ノートブックを画面なしで実行し、HTML に変換します (`make run`)"),
    "jupysql": Text(
        en="SQL cells (`%sql`, `%%sql`) whose results are DataFrames",
        ja="結果が DataFrame になる SQL セル (`%sql`、`%%sql`)"),
    "toml": Text(
        en="lets JupySQL read its settings from pyproject.toml",
        ja="JupySQL が pyproject.toml から設定を読めるようにします"),
    "pytest": Text(
        en="the test runner (`make test`)",
        ja="テストランナー (`make test`)"),
    "nbval": Text(
        en="re-runs every notebook and compares it with its committed outputs",
        ja="すべてのノートブックを再実行し、コミット済みの出力と比較します"),
    "pytest-xdist": Text(
        en="runs the tests with tidb-servers of their own beside the others (`make test`)",
        ja="独自の tidb-server を使うテストを他のテストと並行して実行します (`make test`)"),
    "ruff": Text(
        en="linter for the package, tests and notebooks",
        ja="パッケージ、テスト、ノートブックのリンター"),
    "playwright": Text(
        en="drives JupyterLab in a real Chromium in the browser test",
        ja="ブラウザーテストで JupyterLab を実際の Chromium で操作します"),
    "alembic": Text(
        en="migrations through tidb://, tested with Alembic's own suite",
        ja="tidb:// 経由のマイグレーション。Alembic 自身のテストスイートで検証"),
    "asyncmy": Text(
        en="asyncio MySQL-protocol driver behind tidb+asyncmy:// (create_async_engine)",
        ja="tidb+asyncmy:// (create_async_engine) を支える asyncio 用 MySQL プロトコルドライバー"),
    "greenlet": Text(
        en="lets SQLAlchemy's asyncio layer run its sync core for async engines",
        ja="非同期エンジンのために SQLAlchemy の asyncio 層が同期コアを動かせるようにします"),
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
    the distribution it holds, with no version spec, as in pyproject.toml; a package named in
    the pip section (one conda-forge may not have) counts with its spec.
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
        # A package only PyPI has, installed by pip inside the conda environment.
        from_pypi = re.match(r"^      - ([A-Za-z][A-Za-z0-9_.\-]*)\s*([^#\s]*)\s*(#.*)?$", line)
        if from_pypi:
            found[from_pypi.group(1).lower()] = from_pypi.group(2)
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
                     str(PURPOSE.get(requirement.name, ""))))
    return pd.DataFrame(rows, columns=["package", "required", "installed", "ok", "why"])


def manifests_frame() -> pd.DataFrame:
    """Each dependency's version spec in pyproject.toml and in environment.yml, side by side."""
    pip_specs = {r.name.lower(): _spec_text(r) for r in pyproject_requirements()}
    conda_specs = conda_requirements()
    names = list(pip_specs) + [n for n in conda_specs if n not in pip_specs]
    return pd.DataFrame(
        [(name, pip_specs.get(name, "-"), conda_specs.get(name, "-")) for name in names],
        columns=["package", "pyproject.toml", "environment.yml"])

"""pyproject.toml and environment.yml list the same dependencies, with the same versions."""

from __future__ import annotations

from crm_helpers.config import PROJECT_ROOT
from crm_helpers.lesson.environment import (
    CONDA_ONLY,
    conda_requirements,
    manifests_frame,
    pyproject_requirements,
    requirements_frame,
)


def test_environment_yml_lists_the_same_packages_as_pyproject():
    pip_names = {r.name.lower() for r in pyproject_requirements()}
    conda_names = set(conda_requirements()) - set(CONDA_ONLY)
    assert conda_names == pip_names


def test_the_two_manifests_ask_for_the_same_versions():
    both = manifests_frame()
    shared = both[~both["package"].isin(CONDA_ONLY)]
    differing = shared[shared["pyproject.toml"] != shared["environment.yml"]]
    assert differing.empty, differing.to_string()


def test_environment_yml_installs_the_project_itself():
    assert "      - -e ." in (PROJECT_ROOT / "environment.yml").read_text().splitlines()


def test_this_environment_satisfies_every_requirement():
    frame = requirements_frame()
    assert frame["ok"].all(), frame[~frame["ok"]].to_string()

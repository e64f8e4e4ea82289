"""The compliance suites' plumbing: provisioning found by SQLAlchemy, exclusions with reasons.

The suites themselves (SQLAlchemy's and Alembic's) run with test/compliance/compare.py; these
checks are quick.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy_tidb.alembic_requirements import (
    KNOWN_TIDB_ALEMBIC_ISSUES,
    TiDBAlembicRequirements,
)
from sqlalchemy_tidb.requirements import KNOWN_TIDB_ISSUES, TiDBRequirements


@pytest.mark.parametrize("url", ["tidb://", "tidb+asyncmy://"])
def test_load_provisioning_registers_the_tidb_hooks(url: str) -> None:
    from sqlalchemy.testing import provision

    dialect = make_url(url).get_dialect()
    assert dialect.name == "tidb"  # the hooks are registered for_db("tidb"), whatever the driver
    dialect.load_provisioning()
    for hook in (provision.create_db, provision.drop_db, provision.configure_follower,
                 provision.temp_table_keyword_args, provision.delete_from_all_tables):
        assert "tidb" in hook.fns, f"{hook.fns.get('*')} has no tidb implementation"


def test_test_database_names_refuse_unsafe_idents() -> None:
    from sqlalchemy_tidb.provision import test_database_names

    assert test_database_names("crm_sqla_tidb") == [
        "crm_sqla_tidb", "crm_sqla_tidb_test_schema", "crm_sqla_tidb_test_schema_2"]
    for bad in ("", "x; DROP DATABASE mysql", "a`b", "1abc"):
        with pytest.raises(ValueError, match="not usable as a test database name"):
            test_database_names(bad)


def _closed_requirements(requirements_class: type = TiDBRequirements) -> dict[str, str]:
    requirements = requirements_class()
    closed = {}
    for name in dir(requirements_class):
        if name.startswith("_"):
            continue
        try:
            value = getattr(requirements, name)
        except Exception:  # some of SQLAlchemy's own requirements need a live test config
            continue
        skips = getattr(value, "skips", None)
        if not isinstance(skips, set):
            continue
        for predicate in skips:
            description = getattr(predicate, "description", "") or ""
            if description.startswith(("TiDB lacks", "as in MySQL")):
                closed[name] = description
    return closed


def test_every_exclusion_gives_a_reason_and_what_tidb_says() -> None:
    closed = _closed_requirements()
    assert "create_table_as" in closed
    assert "temp_table_reflection" in closed
    for name, description in closed.items():
        # "<what is missing>: <TiDB's error or behaviour>"
        assert re.search(r": .{8,}", description), f"{name}: {description!r} names no error"


def test_the_alembic_suite_keeps_the_sqlalchemy_exclusions_and_gives_its_own_reasons() -> None:
    closed = _closed_requirements(TiDBAlembicRequirements)
    # TiDBRequirements' choices still hold where Alembic's defaults differ.
    assert closed["check_constraint_reflection"] == _closed_requirements()[
        "check_constraint_reflection"]
    assert "fk_deferrable" in closed
    for name, description in closed.items():
        assert re.search(r": .{8,}", description), f"{name}: {description!r} names no error"


def test_known_issues_are_marked_with_a_reason() -> None:
    for pattern, (kind, reason) in {**KNOWN_TIDB_ISSUES, **KNOWN_TIDB_ALEMBIC_ISSUES}.items():
        assert "::" in pattern
        assert kind in {"skip", "xfail"}, pattern
        assert len(reason) > 30, pattern

"""The notebooks' vocabulary: every name the notebooks import from crm_helpers, in one place.

Each name lives in one module of the subpackages (local/, lesson/, analysis/) or in config,
engines, errors; `HOMES` says which. A name is imported from its module the first time it is
asked for, so `from crm_helpers.local.cli import main` (the `crm-tidb` command) or the engine
plugin does not load pandas and the analysis stack. Code outside the notebooks imports from
the module itself.
"""

import os
from importlib import import_module

# Nothing in this project may reach the network. JupySQL 0.11 sends nothing, but its helper
# library ploomber-core can send usage statistics and ask PyPI for new versions: both off.
os.environ["PLOOMBER_STATS_ENABLED"] = "false"
os.environ["PLOOMBER_VERSION_CHECK_DISABLED"] = "true"

#: Each name the notebooks import from crm_helpers -> the module that defines it.
HOMES = {
    # the notebook's language, chosen in its first cell
    "use_language": "crm_helpers.language",
    # connecting
    "ensure_tidb": "crm_helpers.local.server",
    "mask_url": "crm_helpers.config",
    "tidb_engine": "crm_helpers.engines",
    "run_transaction": "sqlalchemy_tidb.transaction",
    "TiFlashRequired": "crm_helpers.errors",
    "WriteConflict": "crm_helpers.errors",
    # the lesson
    "app_password": "crm_helpers.lesson.accounts",
    "grants_frame": "crm_helpers.lesson.accounts",
    "prepare_tutorial_database": "crm_helpers.lesson.accounts",
    "privilege_probe_frame": "crm_helpers.lesson.accounts",
    "manifests_frame": "crm_helpers.lesson.environment",
    "requirements_frame": "crm_helpers.lesson.environment",
    "shown_error": "crm_helpers.lesson.mistakes",
    "Base": "crm_helpers.lesson.models",
    "Gender": "crm_helpers.lesson.models",
    "GenderEnum": "crm_helpers.lesson.models",
    "Order": "crm_helpers.lesson.models",
    "Price": "crm_helpers.lesson.models",
    "Uid": "crm_helpers.lesson.models",
    "User": "crm_helpers.lesson.models",
    "UserName": "crm_helpers.lesson.models",
    "checked": "crm_helpers.lesson.models",
    "exercises": "crm_helpers.lesson.exercises",
    "____": "crm_helpers.lesson.exercises",
    "sql_sent": "crm_helpers.lesson.sql_sent",
    "sql_side_by_side": "crm_helpers.lesson.sql_sent",
    # results as DataFrames, and the analysis stack
    "LeftAligned": "crm_helpers.analysis.frames",
    "lock_waits": "crm_helpers.analysis.frames",
    "explain_analyze_frame": "crm_helpers.analysis.frames",
    "orders_frame": "crm_helpers.analysis.frames",
    "query_frame": "crm_helpers.analysis.frames",
    "tidb_version_frame": "crm_helpers.analysis.frames",
    "variables_frame": "crm_helpers.analysis.frames",
    "chart_labels": "crm_helpers.analysis.charts",
    "load_data_statement": "crm_helpers.analysis.encoding",
    "load_frame": "crm_helpers.analysis.loader",
    "load_generated": "crm_helpers.analysis.loader",
    "read_frame": "crm_helpers.analysis.reading",
    "analysis_engine": "crm_helpers.analysis.schema",
    "analysis_orders": "crm_helpers.analysis.schema",
    "analysis_users": "crm_helpers.analysis.schema",
    "reset_analysis_tables": "crm_helpers.analysis.schema",
}

__all__ = sorted(HOMES)


def __getattr__(name: str) -> object:
    home = HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'crm_helpers' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""The `crm_lesson` engine plugin: the lesson's error advice on the project's engines.

`Settings.url()` and `Settings.app_url()` put `plugin=crm_lesson` in the URLs they build.
SQLAlchemy finds this class through the `sqlalchemy.plugins` entry point of that name, takes
the option out of the URL before the dialect sees it, and calls `engine_created`, so a plain
`create_engine(settings.app_url())` in a notebook says "run `crm-tidb up`" or "no user has
that uid". An engine for a `tidb://` URL without the option is the dialect's alone.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import URL, CreateEnginePlugin

from crm_helpers.lesson.advice import install_error_translation

#: The name under which SQLAlchemy finds the plugin (pyproject.toml's sqlalchemy.plugins).
PLUGIN_NAME = "crm_lesson"


class LessonAdvicePlugin(CreateEnginePlugin):
    """Installs the lesson's error advice (crm_helpers.lesson.advice) on each engine it names."""

    def update_url(self, url: URL) -> URL:
        return url  # SQLAlchemy has already taken `plugin=` out; nothing else to remove

    def engine_created(self, engine: Engine) -> None:
        install_error_translation(engine)

"""The language of the text the project writes into a notebook: English or Japanese.

A notebook chooses it in its first cell with `use_language("ja")`; a fresh kernel writes
English. Only what a learner reads in a cell follows it (exercise texts and feedback, summary
lines, chart captions and axis labels); exception messages stay English.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_helpers.errors import CrmError

#: The languages the notebooks are written in, by their ISO 639-1 codes.
LANGUAGES = ("en", "ja")

_current = "en"


class UnknownLanguage(CrmError, ValueError):
    """A language the notebooks are not written in."""


def use_language(code: str) -> None:
    """Write the project's text in this notebook in `code` ("en" or "ja") from now on."""
    global _current
    if not isinstance(code, str) or code.strip().lower() not in LANGUAGES:
        raise UnknownLanguage(
            f"no text in language {code!r}: use one of {', '.join(map(repr, LANGUAGES))}"
        )
    _current = code.strip().lower()


def current_language() -> str:
    """The language chosen by `use_language`, "en" until a cell chooses another."""
    return _current


@dataclass(frozen=True)
class Text:
    """One piece of text in every language the notebooks are written in."""

    en: str
    ja: str

    def __str__(self) -> str:
        return getattr(self, _current)

    def format(self, *args: object, **kwargs: object) -> str:
        """The text in the current language, formatted like `str.format`."""
        return str(self).format(*args, **kwargs)


def localized(en: str, ja: str) -> str:
    """`en` or `ja`, whichever language the notebook chose."""
    return str(Text(en=en, ja=ja))

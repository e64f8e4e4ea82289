"""The Japanese edition against the English one: same notebooks, same code, same sections.

The Japanese notebooks (notebooks/ja/) translate the Markdown only. Their code cells are the
English ones, cell for cell, except the language their first cell chooses; every Markdown
heading of the English edition has its counterpart, at the same level, between the same code
cells. `edition_differences` lists what breaks that, in words a translator can act on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from crm_helpers.config import PROJECT_ROOT

ENGLISH = PROJECT_ROOT / "notebooks"
JAPANESE = ENGLISH / "ja"
#: The one place where the two editions' code differs: the language the notebook chooses.
LANGUAGE_CHOICE = re.compile(r"""use_language\((["'])(en|ja)\1\)""")
HEADING = re.compile(r"^(#{1,6})\s+\S", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)

Notebook = dict[str, Any]


def notebook_names(folder: Path) -> list[str]:
    """The numbered notebooks in `folder` (e.g. 04_crm_application.ipynb), sorted."""
    return sorted(path.name for path in folder.glob("[0-9][0-9]_*.ipynb"))


def missing_editions(english: Path = ENGLISH, japanese: Path = JAPANESE) -> list[str]:
    """What one edition has and the other lacks, one line per notebook."""
    en, ja = set(notebook_names(english)), set(notebook_names(japanese))
    return ([f"{name}: no Japanese edition in {japanese}" for name in sorted(en - ja)]
            + [f"{name}: Japanese notebook with no English one in {english}"
               for name in sorted(ja - en)])


def read_notebook(path: Path) -> Notebook:
    """A notebook file as its JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tags(cell: dict[str, Any]) -> list[str]:
    return sorted(cell.get("metadata", {}).get("tags", []))


def code_cells(notebook: Notebook) -> list[dict[str, Any]]:
    """The notebook's code cells, in order."""
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def heading_levels_between_code(notebook: Notebook) -> list[list[int]]:
    """For each stretch of Markdown before, between and after the code cells, the levels of
    its headings in order (code blocks inside the Markdown do not count)."""
    stretches: list[list[int]] = [[]]
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            stretches.append([])
        elif cell["cell_type"] == "markdown":
            prose = FENCE.sub("", _source(cell))
            stretches[-1].extend(len(marks) for marks in HEADING.findall(prose))
    return stretches


def _as_english(source: str) -> str:
    return LANGUAGE_CHOICE.sub(lambda match: f"use_language({match[1]}en{match[1]})", source)


def edition_differences(english: Notebook, japanese: Notebook) -> list[str]:
    """Every way `japanese` is not a translation of `english`, empty when it is one."""
    problems = []
    en_code, ja_code = code_cells(english), code_cells(japanese)
    if len(en_code) != len(ja_code):
        problems.append(f"{len(ja_code)} code cells, the English notebook has {len(en_code)}")
    for number, (en, ja) in enumerate(zip(en_code, ja_code, strict=False), start=1):
        if _source(ja) != _as_english(_source(ja)) and number != 1:
            problems.append(f"code cell {number} chooses a language; only the first one may")
        if _as_english(_source(ja)) != _source(en):
            problems.append(f"code cell {number} differs from the English one: copy the English "
                            f"cell (it starts {_source(en)[:60]!r})")
        if _tags(ja) != _tags(en):
            problems.append(f"code cell {number} has tags {_tags(ja)}, the English one {_tags(en)}")
    if ja_code and not re.search(r"""use_language\((["'])ja\1\)""", _source(ja_code[0])):
        problems.append('the first code cell does not call use_language("ja")')
    en_headings = heading_levels_between_code(english)
    ja_headings = heading_levels_between_code(japanese)
    for stretch, (en, ja) in enumerate(zip(en_headings, ja_headings, strict=False)):
        if en != ja:
            where = "before the first code cell" if stretch == 0 else f"after code cell {stretch}"
            problems.append(f"headings {where} have levels {ja}, the English ones {en}: "
                            "translate every section, keeping its level")
    return problems

"""The Japanese edition is the English one translated: every notebook, every code cell
unchanged but the language, every section; and the check fails on a real mismatch."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from crm_helpers.devtools.editions import (
    ENGLISH,
    JAPANESE,
    code_cells,
    edition_differences,
    missing_editions,
    notebook_names,
    read_notebook,
)

NAMES = notebook_names(ENGLISH)


def test_every_english_notebook_has_its_japanese_edition_and_no_other():
    assert len(NAMES) >= 6
    assert missing_editions() == []


@pytest.mark.parametrize("name", NAMES)
def test_the_japanese_notebook_shares_the_english_code_and_sections(name):
    assert edition_differences(read_notebook(ENGLISH / name), read_notebook(JAPANESE / name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_the_japanese_notebook_chooses_japanese_and_its_prose_is_japanese(name):
    japanese = read_notebook(JAPANESE / name)
    assert 'use_language("ja")' in "".join(code_cells(japanese)[0]["source"])
    for cell in japanese["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text), \
                f"an untranslated Markdown cell: {text[:80]!r}"


# A modified copy of a real pair must be caught: each change below is one a translator or an
# English edit could make.
def _first_code(notebook):
    return code_cells(notebook)[0]


def _change_code(notebook):
    cell = code_cells(notebook)[1]
    cell["source"] = ["# translated comment\n", *cell["source"]]


def _drop_code(notebook):
    notebook["cells"].remove(code_cells(notebook)[-1])


def _swap_code(notebook):
    cells = notebook["cells"]
    first, second = (cells.index(cell) for cell in code_cells(notebook)[1:3])
    cells[first], cells[second] = cells[second], cells[first]


def _english_language(notebook):
    cell = _first_code(notebook)
    cell["source"] = "".join(cell["source"]).replace('use_language("ja")', 'use_language("en")')


def _drop_heading(notebook):
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "\n## " in "\n" + text:
            cell["source"] = "\n".join(line for line in text.splitlines()
                                       if not line.startswith("## "))
            return
    raise AssertionError("no second-level heading to drop")


def _demote_heading(notebook):
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.startswith("# "):
            cell["source"] = "#" + text
            return
    raise AssertionError("no title to demote")


def _move_section_past_code(notebook):
    cells = notebook["cells"]
    index = next(i for i, cell in enumerate(cells) if cell["cell_type"] == "markdown"
                 and "\n## " in "\n" + "".join(cell["source"]) and i > 0)
    following = next(i for i in range(index + 1, len(cells)) if cells[i]["cell_type"] == "code")
    cells.insert(following, cells.pop(index))


def _drop_tags(notebook):
    for cell in code_cells(notebook):
        cell.setdefault("metadata", {})["tags"] = []


MISMATCHES = {
    "a code cell edited": (_change_code, "code cell 2 differs"),
    "a code cell missing": (_drop_code, "code cells, the English notebook has"),
    "two code cells swapped": (_swap_code, "differs from the English one"),
    "English chosen": (_english_language, 'does not call use_language("ja")'),
    "a section missing": (_drop_heading, "translate every section"),
    "a heading at another level": (_demote_heading, "translate every section"),
    "a section moved past a code cell": (_move_section_past_code, "translate every section"),
}


@pytest.mark.parametrize("change", MISMATCHES, ids=list(MISMATCHES))
def test_a_modified_japanese_copy_is_caught(change):
    english = read_notebook(ENGLISH / "04_crm_application.ipynb")
    japanese = read_notebook(JAPANESE / "04_crm_application.ipynb")
    modify, expected = MISMATCHES[change]
    modified = copy.deepcopy(japanese)
    modify(modified)
    problems = edition_differences(english, modified)
    assert any(expected in problem for problem in problems), problems


def test_a_tag_that_nbval_reads_is_part_of_the_code():
    english = read_notebook(ENGLISH / "03_environment.ipynb")
    japanese = copy.deepcopy(read_notebook(JAPANESE / "03_environment.ipynb"))
    assert any("nbval-ignore-output" in cell["metadata"].get("tags", [])
               for cell in code_cells(japanese))
    _drop_tags(japanese)
    assert any("has tags" in problem for problem in edition_differences(english, japanese))


def test_a_changed_english_cell_fails_until_the_japanese_one_follows():
    english = copy.deepcopy(read_notebook(ENGLISH / "01_start_tidb.ipynb"))
    japanese = read_notebook(JAPANESE / "01_start_tidb.ipynb")
    code_cells(english)[-1]["source"] = ["variables_frame(admin, ['version'])"]
    assert any("code cell 3 differs" in problem
               for problem in edition_differences(english, japanese))


def test_a_missing_or_extra_japanese_notebook_is_named(tmp_path: Path):
    english, japanese = tmp_path / "notebooks", tmp_path / "notebooks" / "ja"
    japanese.mkdir(parents=True)
    for name in NAMES[:2]:
        shutil.copy(ENGLISH / name, english / name)
    shutil.copy(JAPANESE / NAMES[0], japanese / NAMES[0])
    (japanese / "09_extra.ipynb").write_text(json.dumps({"cells": []}))
    assert missing_editions(english, japanese) == [
        f"{NAMES[1]}: no Japanese edition in {japanese}",
        f"09_extra.ipynb: Japanese notebook with no English one in {english}",
    ]

"""What the helpers write into a Japanese notebook is Japanese, and its charts can draw it."""

from __future__ import annotations

import re

import matplotlib
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from sqlalchemy import create_engine

from crm_helpers import chart_labels, tidb_version_frame, use_language, variables_frame
from crm_helpers.analysis.charts import LABELS, ChartLabels
from crm_helpers.analysis.loader import LoadReport
from crm_helpers.errors import InvalidPrice
from crm_helpers.lesson.environment import requirements_frame
from crm_helpers.lesson.mistakes import shown_error
from crm_helpers.lesson.models import Order

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _english_afterwards():
    yield
    use_language("en")
    chart_labels()  # the default font again for the rest of the session


@pytest.fixture
def admin(tidb_settings):
    engine = create_engine(tidb_settings.url())
    yield engine
    engine.dispose()


def test_a_load_summary_is_japanese_and_keeps_the_timing_the_sanitizer_replaces():
    report = LoadReport(table="orders", rows=50_000, loaded=40_000, skipped=10_000, batches=1,
                        seconds=2.0)
    use_language("ja")
    line = str(report)
    assert line.startswith("orders: 40,000 行を読み込み、10,000 行は読み込み済み、1 バッチ")
    # notebooks/sanitize.cfg's [load-report-timing] replaces this part in both editions.
    assert re.search(r"\d+\.\d+ s \([\d,]+ rows/s\)$", line)
    use_language("en")
    assert str(report).startswith("orders: 40,000 rows loaded, 10,000 already there")


def test_frames_the_helpers_build_have_japanese_captions(admin):
    use_language("ja")
    assert list(tidb_version_frame(admin).columns) == ["項目", "値"]
    frame = variables_frame(admin, ["tidb_txn_mode"])
    assert list(frame.columns) == ["変数", "値"]
    assert frame.iloc[0].tolist() == ["tidb_txn_mode", "pessimistic"]
    why = requirements_frame().set_index("package")["why"]
    assert JAPANESE.search(why["sqlalchemy"]) and JAPANESE.search(why["matplotlib-fontja"])


def test_shown_error_says_in_japanese_that_nothing_went_wrong(capsys):
    class Session:
        def rollback(self) -> None:
            raise AssertionError("no error, nothing to roll back")

    use_language("ja")
    with shown_error(Session()):
        pass
    assert capsys.readouterr().out == "エラーなし: 変更は受け入れられました。\n"
    with pytest.raises(InvalidPrice, match="negative"):
        Order(uid=1, price=-3)  # the exception's own message stays English


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_chart_label_is_written_in_the_chosen_language(language):
    use_language(language)
    labels = chart_labels()
    assert labels == LABELS[language]
    texts = [getattr(labels, field) for field in ChartLabels.__dataclass_fields__
             if field != "weekdays"] + list(labels.weekdays)
    assert len(labels.weekdays) == 7
    assert all(bool(JAPANESE.search(text)) == (language == "ja") for text in texts), texts


def test_japanese_charts_use_a_font_that_has_every_glyph_of_their_labels():
    use_language("ja")
    labels = chart_labels()
    family = matplotlib.rcParams["font.family"][0]
    path = font_manager.findfont(font_manager.FontProperties(family=family),
                                 fallback_to_default=False)
    assert "matplotlib_fontja" in path  # from the package, not from the system
    font = FT2Font(path)
    text = "".join([*(getattr(labels, f) for f in ChartLabels.__dataclass_fields__
                      if f != "weekdays"), *labels.weekdays])
    missing = {ch for ch in text if not ch.isspace() and font.get_char_index(ord(ch)) == 0}
    assert missing == set()  # a character with no glyph would be drawn as an empty box


def test_english_charts_go_back_to_matplotlibs_default_font():
    use_language("ja")
    chart_labels()
    use_language("en")
    chart_labels()
    assert matplotlib.rcParams["font.family"] == ["sans-serif"]

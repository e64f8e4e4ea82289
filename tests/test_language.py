"""The notebook's language: chosen by a call, checked, English by default."""

import pytest

from crm_helpers import language
from crm_helpers.language import Text, UnknownLanguage, current_language, localized, use_language


@pytest.fixture(autouse=True)
def _english_afterwards():
    yield
    use_language("en")


def test_a_fresh_kernel_writes_english() -> None:
    assert current_language() == "en"
    assert localized("Done", "完了") == "Done"


def test_japanese_once_chosen() -> None:
    use_language("ja")
    assert current_language() == "ja"
    assert str(Text(en="{n} done", ja="{n} 件完了")) == "{n} 件完了"
    assert Text(en="{n} done", ja="{n} 件完了").format(n=3) == "3 件完了"


@pytest.mark.parametrize("code", ["fr", "", None, "japanese", 1])
def test_an_unknown_language_is_refused_and_changes_nothing(code) -> None:
    use_language("ja")
    with pytest.raises(UnknownLanguage, match="use one of 'en', 'ja'"):
        use_language(code)
    assert current_language() == "ja"
    assert language.LANGUAGES == ("en", "ja")

"""Notebook 5's chart captions and axis labels, in the notebook's language and a font for it.

The Japanese edition shares notebook 5's code cells, so the charts take their text from here.
The Japanese font (IPAex Gothic) comes from the `matplotlib-fontja` package on PyPI, so no
system font is needed and Japanese labels never turn into empty boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib
from matplotlib import font_manager

from crm_helpers.language import current_language

#: matplotlib's own default family, drawn again once a notebook writes English.
DEFAULT_FAMILY = ["sans-serif"]


@dataclass(frozen=True)
class ChartLabels:
    """The text of notebook 5's charts in one language."""

    prices: str
    price_log: str
    orders: str
    orders_per_customer: str
    customers: str
    revenue_per_month: str
    revenue_thousands: str
    orders_per_weekday: str
    #: Monday first, as short as a bar's label.
    weekdays: tuple[str, ...]


LABELS = {
    "en": ChartLabels(
        prices="Order prices", price_log="price (log scale)", orders="orders",
        orders_per_customer="Orders per customer (top 1% in the last bar)",
        customers="customers", revenue_per_month="Revenue per month",
        revenue_thousands="revenue (thousands)", orders_per_weekday="Orders per weekday",
        weekdays=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")),
    "ja": ChartLabels(
        prices="注文の価格", price_log="価格 (対数目盛)", orders="注文数",
        orders_per_customer="顧客あたりの注文数 (上位 1% は最後の棒)",
        customers="顧客数", revenue_per_month="月ごとの売上",
        revenue_thousands="売上 (千)", orders_per_weekday="曜日ごとの注文数",
        weekdays=("月", "火", "水", "木", "金", "土", "日")),
}


def japanese_font_family() -> str:
    """The family name of the Japanese font that matplotlib-fontja ships, registered."""
    # Imported here: the package selects its font for every chart as soon as it is imported.
    from matplotlib_fontja import get_font_ttf_path

    path = get_font_ttf_path()
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def use_chart_font() -> None:
    """Draw the next charts in a font that has the glyphs of the notebook's language."""
    if current_language() == "ja":
        matplotlib.rcParams["font.family"] = [japanese_font_family(), *DEFAULT_FAMILY]
    else:
        matplotlib.rcParams["font.family"] = DEFAULT_FAMILY


def chart_labels() -> ChartLabels:
    """Notebook 5's chart text in the notebook's language, with the font switched to draw it."""
    use_chart_font()
    return LABELS[current_language()]

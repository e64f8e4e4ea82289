"""Progress bars for long loads: a widget in JupyterLab, a text bar in a terminal.

In a notebook, a widget's plain-text form is taken once, when the bar appears, so a saved
notebook would show every finished bar at 0%. Here the widget has no plain-text form: JupyterLab
draws the bar from the widget's saved state, at its final value, and other viewers show nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.notebook import TqdmHBox, tqdm_notebook


class _WidgetOnlyBox(TqdmHBox):
    """tqdm's widget box, shown as the widget alone (no frozen text/plain copy)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and "text/plain" in bundle:
            bundle["text/plain"] = ""
        return bundle


if issubclass(_auto_tqdm, tqdm_notebook):

    class tqdm(_auto_tqdm):  # named like the class it replaces
        """tqdm.auto's notebook bar, whose saved output is the widget alone."""

        @staticmethod
        def status_printer(*args: Any, **kwargs: Any) -> Any:
            container = tqdm_notebook.status_printer(*args, **kwargs)
            container.__class__ = _WidgetOnlyBox
            return container
else:
    tqdm = _auto_tqdm

"""Showing a refused change in a notebook: the project error printed, the session rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crm_helpers.errors import CrmError
from crm_helpers.language import Text

#: Which SQLAlchemy class a refused statement's project error still is.
ALSO_A = Text(en=" (an {kind})", ja=" ({kind} のサブクラス)")
NO_ERROR = Text(en="No error: the change was accepted.",
                ja="エラーなし: 変更は受け入れられました。")


@contextmanager
def shown_error(session: Session) -> Iterator[None]:
    """Run the block; print the project error it raises (if any) and roll `session` back.

    Only the project's own exceptions are caught: anything else is a real bug and propagates.
    """
    try:
        yield
    except CrmError as error:
        session.rollback()
        # A refused statement is also SQLAlchemy's class (IntegrityError, ...): say which.
        kind = next((klass.__name__ for klass in type(error).__mro__
                     if klass.__module__ == "sqlalchemy.exc"), None)
        also = ALSO_A.format(kind=kind) if isinstance(error, DBAPIError) and kind else ""
        print(f"{type(error).__name__}{also}: {error}")
    else:
        print(NO_ERROR)

"""The SQL that SQLAlchemy sends to TiDB, shown as text: what each line of the lesson does.

PyMySQL puts the parameters into the statement on the client (`cursor.mogrify`), so the text
shown is the statement TiDB receives, except that secrets are shown as '***': parameters whose
name contains "password", and any text passed in `hide`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pymysql.converters import escape_string
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

MASK = "***"


def _masked(parameters: Any) -> Any:
    if isinstance(parameters, Mapping):
        return {key: MASK if "password" in str(key).lower() else value
                for key, value in parameters.items()}
    return parameters


def _as_sent(cursor: Any, statement: str, parameters: Any, executemany: bool) -> list[str]:
    batches = parameters if executemany else [parameters]
    return [cursor.mogrify(statement, _masked(each)).strip() for each in batches]


@contextmanager
def sql_sent(engine: Engine, *, show: bool = True,
             hide: Iterable[str] = ()) -> Iterator[list[str]]:
    """Collect (and with `show`, print) every statement `engine` sends inside the block."""
    sent: list[str] = []
    # As typed, and as escaped inside a quoted SQL string.
    secrets = [form for secret in hide if secret
               for form in dict.fromkeys([escape_string(secret), secret])]

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        for text in _as_sent(cursor, statement, parameters, executemany):
            for secret in secrets:
                text = text.replace(secret, MASK)
            sent.append(text)
            if show:
                print(text + ";")

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sql_side_by_side(engine: Engine,
                     forms: Mapping[str, Callable[[Session], object]]) -> None:
    """Run each form in a Session of its own, roll it back, and print the SQL each one sent."""
    for name, form in forms.items():
        with Session(engine) as session, sql_sent(engine, show=False) as sent:
            form(session)
            session.rollback()
        print(f"-- {name}:")
        for text in sent:
            print(text + ";")
        print()

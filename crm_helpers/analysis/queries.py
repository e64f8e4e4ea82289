"""Is this SQL exactly one read-only query? The guard of the read helpers, checked before sending.

connectorx runs what it is given in autocommit, and a Session keeps what a statement did
until the next commit, so a helper that only reads refuses anything else up front: more
than one statement, DML and DDL (also behind WITH, EXPLAIN ANALYZE, comments or
parentheses), SELECT ... INTO, locking reads, executable comments and functions that change
state. The check is an allow-list of statement starts plus a deny-list of reserved words
outside quotes, read both with and without backslash escapes.
"""

from __future__ import annotations

import re

from sqlalchemy import CompoundSelect, Executable, Select, TextClause, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TextualSelect

from crm_helpers.errors import CrmError, InvalidInput


class NotAQuery(InvalidInput):
    """A read helper was given something that is not one read-only query; nothing was sent."""


class QueryFailed(InvalidInput):
    """TiDB could not run a query a read helper sent (syntax, unknown table or column, ...)."""


def query_failed(error: BaseException) -> CrmError:
    """The project's error for a query TiDB refused, with TiDB's code and message.

    An error that already carries the lesson's advice (TiDBTimeout, TiDBNotRunning, ...) is
    given back as it is, also when pandas wrapped it in its own DatabaseError.
    """
    for advised in (error, error.__cause__):
        if isinstance(advised, CrmError):
            return advised
    original = error
    while original is not None and not getattr(original, "orig", None) and original.__cause__:
        original = original.__cause__
    args = getattr(getattr(original, "orig", original), "args", ())
    told = f"{args[0]}: {args[1]}" if len(args) >= 2 else str(error).splitlines()[0]
    return QueryFailed(f"TiDB could not run the query ({told}). Check the SQL: the table and "
                       "column names (SHOW TABLES and DESC <table> list them) and the syntax "
                       "near where TiDB says; nothing was written.")


def query_statement(query: object) -> Executable:
    """`query` (SQL text or a select()) as a statement; NotAQuery for writes and other types."""
    if isinstance(query, str):
        return text(query)
    if isinstance(query, UpdateBase):
        raise NotAQuery(f"A read helper was given a {type(query).__name__} statement, which "
                        "writes; nothing was sent. Run writes in a transaction of your own "
                        "(with engine.begin() as connection: connection.execute(...)).")
    if isinstance(query, (Select, CompoundSelect, TextualSelect, TextClause)):
        return query
    raise NotAQuery(f"A read helper needs SQL text or a select(), not {type(query).__name__}; "
                    "nothing was sent. Give the query as a str, e.g. 'SELECT * FROM orders'.")


def checked_query(statement: Executable, dialect: Dialect) -> str:
    """The statement's first word (SELECT, SHOW, ...) if it is one read-only query."""
    if isinstance(statement, TextClause):
        return check_query(statement.text)
    if isinstance(statement, TextualSelect):
        return check_query(statement.element.text)
    return check_query(str(statement.compile(dialect=dialect)))


#: Queries that return rows of data; SHOW, EXPLAIN and DESCRIBE return facts about them.
ROW_QUERIES = {"SELECT", "WITH", "TABLE"}
_QUERY_STARTS = ROW_QUERIES | {"SHOW", "EXPLAIN", "DESC", "DESCRIBE"}
# Reserved words that make a statement write, lock or leave the database wherever they stand
# outside quotes: WITH ... DELETE, EXPLAIN ANALYZE (which runs what it explains), SELECT ...
# INTO OUTFILE / @variable, FOR UPDATE, LOCK IN SHARE MODE (and FOR SHARE, below).
_WRITING_WORDS = {"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "RENAME",
                  "GRANT", "REVOKE", "LOAD", "CALL", "LOCK", "UNLOCK", "INTO", "OUTFILE",
                  "DUMPFILE"}
# Also string functions: REPLACE(s, a, b) and INSERT(s, pos, len, t) only read.
_ALSO_FUNCTIONS = {"REPLACE", "INSERT"}
# Functions that change state: sequences, named locks; LOAD_FILE reads the server's files.
_STATEFUL_FUNCTIONS = {"NEXTVAL", "SETVAL", "LASTVAL", "GET_LOCK", "RELEASE_LOCK",
                       "RELEASE_ALL_LOCKS", "LOAD_FILE"}
_COMMENT = r"(?P<comment>/\*.*?\*/|--(?:[ \t\r\f\v].*?)?(?:\n|$)|\#.*?(?:\n|$))"
_REST = r"(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<space>\s+)|(?P<other>.)"
# Tokens as TiDB reads them, with backslash escapes in strings (the default) and without
# (sql_mode NO_BACKSLASH_ESCAPES): a query must be harmless read either way.
_TOKENIZERS = [
    re.compile(f"{_COMMENT}|(?P<quoted>{quoted}|`(?:[^`]|``)*`)|{_REST}", re.DOTALL)
    for quoted in (r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"",
                   r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")]


def check_query(sql: str) -> str:
    """The query's first word, or NotAQuery if `sql` is not exactly one read-only query."""
    for tokenizer in _TOKENIZERS:
        first = _check_tokens(sql, _significant_tokens(sql, tokenizer))
    return first


def _significant_tokens(sql: str, tokenizer: re.Pattern) -> list[str]:
    """Words (upper-cased) and punctuation outside comments; quoted text as one '?' token."""
    tokens = []
    for match in tokenizer.finditer(sql):
        kind, token = match.lastgroup, match.group()
        if kind == "comment":
            if re.match(r"/\*[A-Za-z]*!", token):
                _refuse(sql, "it holds an executable comment (/*! ... */), which TiDB runs")
        elif kind == "quoted":
            tokens.append("?")
        elif kind == "word":
            tokens.append(token.upper())
        elif kind == "other":
            if token in "'\"`":
                _refuse(sql, "a quote or backquote is never closed")
            if sql.startswith("/*", match.start()):
                _refuse(sql, "a /* comment is never closed")
            tokens.append(token)
    return tokens


def _check_tokens(sql: str, tokens: list[str]) -> str:
    while tokens and tokens[-1] == ";":
        tokens = tokens[:-1]  # a closing ';' is fine
    if ";" in tokens:
        _refuse(sql, "it holds more than one statement (text after ';')")
    words = [token for token in tokens if token[0].isalpha() or token[0] == "_"]
    if not words:
        _refuse(sql, "it holds no statement")
    if set(tokens[:tokens.index(words[0])]) - {"("}:
        _refuse(sql, "it does not start with a keyword")
    if words[0] not in _QUERY_STARTS:
        _refuse(sql, f"it starts with {words[0]}, which is not a query")
    if words[0] == "SHOW":
        # SHOW only reports (SHOW CREATE TABLE, SHOW GRANTS) and can hold no other statement;
        # DESC is not exempt: it is also EXPLAIN's synonym (DESC ANALYZE runs what it explains).
        return words[0]
    for position, token in enumerate(tokens):
        call = tokens[position + 1:position + 2] == ["("]
        if token in _WRITING_WORDS and not (call and token in _ALSO_FUNCTIONS):
            _refuse(sql, f"it contains {token}, which writes, locks or leaves the database")
        if (call and token in _STATEFUL_FUNCTIONS) or tokens[position:position + 3] == [
                "NEXT", "VALUE", "FOR"]:
            _refuse(sql, f"{token} changes the database's state")
        if tokens[position:position + 2] == ["FOR", "SHARE"]:
            _refuse(sql, "FOR SHARE locks the rows it reads")
    return words[0]


def _refuse(sql: str, reason: str) -> None:
    shown = sql if len(sql) <= 80 else sql[:77] + "..."
    raise NotAQuery(f"Refused {shown!r}: {reason}. Nothing was sent. The read helpers run one "
                    "query (SELECT, WITH ... SELECT, TABLE, SHOW, EXPLAIN); run writes "
                    "in a transaction of your own (with engine.begin() as connection: ...).")



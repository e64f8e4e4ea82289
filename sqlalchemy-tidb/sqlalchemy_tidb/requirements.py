"""What TiDB offers, in the terms of SQLAlchemy's dialect compliance suite.

`sqlalchemy.testing.suite` asks a requirements object before each test whether the database
has the feature the test needs. `SuiteRequirements` starts from a cautious default (many
features closed); this class opens what TiDB has (it speaks MySQL 8.0's SQL), and closes, one
by one, what TiDB lacks, each with the reason and the error TiDB gives (measured on TiDB
v8.5.6, and checked again on the release-8.5 branch past v8.5.8). The same class serves the
`tidb://` and the `mysql+pymysql://` runs against the same server (tests/compliance/), so
the two dialects are compared on equal terms; where a
feature depends on the dialect rather than the server (sequences, isolation levels) the
requirement asks the dialect.

Used only by the compliance suite (tests/compliance/setup.cfg); it needs pytest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements


def tidb_lacks(feature: str, error: str) -> Any:
    """Skip tests of a feature TiDB does not have, naming the feature and TiDB's error."""
    # The reason is %-formatted by SQLAlchemy's exclusions; keep percent signs out of it.
    return exclusions.closed(f"TiDB lacks {feature}: {error}".replace("%", "percent"))


def mysql_family(limit: str, error: str) -> Any:
    """Skip tests of something MySQL itself does not do, and TiDB neither."""
    return exclusions.closed(f"as in MySQL, {limit}: {error}".replace("%", "percent"))


def _backend_is(*names: str) -> Any:
    return lambda config: config.db.url.get_backend_name() in names


class TiDBRequirements(SuiteRequirements):
    """Compliance-suite requirements for TiDB, shared by the tidb:// and mysql+pymysql runs."""

    # ------------------------------------------------------------------ what TiDB has
    # DDL
    table_ddl_if_exists = exclusions.open()
    index_ddl_if_exists = exclusions.open()  # CREATE/DROP INDEX IF [NOT] EXISTS: TiDB has both
    views = exclusions.open()
    create_or_replace_view = exclusions.open()
    comment_reflection = exclusions.open()
    comment_reflection_full_unicode = exclusions.open()
    unicode_ddl = exclusions.open()
    schema_create_delete = exclusions.open()  # CREATE SCHEMA is CREATE DATABASE
    reflect_table_options = exclusions.open()
    server_defaults = exclusions.open()
    computed_columns = exclusions.open()
    computed_columns_stored = exclusions.open()
    computed_columns_virtual = exclusions.open()
    computed_columns_reflect_persisted = exclusions.open()
    cross_schema_fk_reflection = exclusions.open()
    foreign_key_constraint_name_reflection = exclusions.open()
    foreign_key_constraint_option_reflection_ondelete = exclusions.open()
    fk_constraint_option_reflection_ondelete_restrict = exclusions.open()
    fk_constraint_option_reflection_ondelete_noaction = exclusions.open()
    foreign_key_constraint_option_reflection_onupdate = exclusions.open()
    fk_constraint_option_reflection_onupdate_restrict = exclusions.open()
    # As in MySQL: a foreign key gets an index, and UNIQUE constraints and unique indexes
    # are the same thing, reflected both ways.
    foreign_keys_reflect_as_index = exclusions.open()
    unique_constraints_reflect_as_index = exclusions.open()
    unique_index_reflect_as_unique_constraints = exclusions.open()
    temporary_tables = exclusions.open()

    # queries
    tuple_in = exclusions.open()
    intersect = exclusions.open()
    except_ = exclusions.open()
    window_functions = exclusions.open()
    window_range = exclusions.open()
    window_range_numeric = exclusions.open()
    ctes = exclusions.open()
    ctes_with_update_delete = exclusions.open()
    boolean_col_expressions = exclusions.open()
    mod_operator_as_percent_sign = exclusions.open()
    regexp_match = exclusions.open()
    regexp_replace = exclusions.open()
    update_from = exclusions.open()
    delete_from = exclusions.open()
    supports_bitwise_or = exclusions.open()
    supports_bitwise_and = exclusions.open()
    supports_bitwise_not = exclusions.open()
    supports_bitwise_xor = exclusions.open()
    supports_bitwise_shift = exclusions.open()
    order_by_label_with_expression = exclusions.open()

    # types
    json_type = exclusions.open()
    legacy_unconditional_json_extract = exclusions.open()
    precision_numerics_many_significant_digits = exclusions.open()
    precision_numerics_retains_significant_digits = exclusions.open()
    datetime_historic = exclusions.open()
    date_historic = exclusions.open()

    # transactions and the driver
    savepoints = exclusions.open()  # TiDB >= 6.2
    isolation_level = exclusions.open()  # levels come from the dialect, see get_isolation_levels
    autocommit = exclusions.open()
    dbapi_lastrowid = exclusions.open()
    emulated_lastrowid = exclusions.open()

    @property
    def default_schema_name_switch(self) -> Any:
        """Only where the provisioning for the backend can switch schemas (tidb:// here)."""
        return exclusions.only_if(_backend_is("tidb"),
                                  "the backend's provisioning has no set_default_schema hook")

    def get_order_by_collation(self, config: Any) -> str:
        return "utf8mb4_bin"

    # ------------------------------------------------------------------ what TiDB lacks
    create_table_as = tidb_lacks(
        "CREATE TABLE ... AS SELECT", "1105 'CREATE TABLE ... SELECT' is not implemented yet")
    create_temp_table_as = create_table_as
    temp_table_reflection = tidb_lacks(
        "indexes on local temporary tables (the suite's temporary table always has one)",
        "8200 TiDB doesn't support CREATE INDEX for local temporary table")
    temp_table_reflect_indexes = temp_table_reflection
    check_constraint_reflection = tidb_lacks(
        "CHECK constraints by default: it parses and drops them unless the global "
        "tidb_enable_check_constraint is ON (v7.2+), so none are there to reflect",
        "no error; SHOW CREATE TABLE has no CHECK clause")
    expression_server_defaults = tidb_lacks(
        "arbitrary expressions as column DEFAULTs (only a few functions such as "
        "CURRENT_TIMESTAMP, RAND(), UUID() are allowed)",
        "1064 You have an error in your SQL syntax ... near '+ 5'")
    indexes_with_expressions = tidb_lacks(
        "expression indexes over most functions (only those listed in "
        "tidb_allow_function_for_expression_index, e.g. LOWER, UPPER, MD5)",
        "8200 Unsupported creating expression index containing unsafe functions "
        "without allow-expression-index in config")
    reflect_indexes_with_expressions = indexes_with_expressions

    # ------------------------------------------------------------------ MySQL's own limits
    # TiDB follows MySQL here; SQLAlchemy's own requirements exclude MySQL from these too.
    unbounded_varchar = mysql_family(
        "VARCHAR needs a length", "1064 You have an error in your SQL syntax")
    sql_expression_limit_offset = mysql_family(
        "LIMIT and OFFSET take only literals or parameters, not expressions",
        "1064 You have an error in your SQL syntax ... near '+ 2'")
    supports_bitwise_not = mysql_family(
        "~ is a 64-bit unsigned operation (~1 is 18446744073709551614, not -2)",
        "no error, a different number")
    precision_generic_float_type = mysql_family(
        "the generic Float type is FLOAT, single precision (about 7 digits)",
        "no error, 15.7563830 instead of 15.7563827")
    datetime_microseconds = mysql_family(
        "DATETIME and TIME without a fractional-seconds precision keep whole seconds "
        "(SQLAlchemy's generic types declare none)", "no error, microseconds dropped")
    time_microseconds = datetime_microseconds
    column_collation_reflection = mysql_family(
        "VARCHAR needs a length (the suite's collation test declares a String without one)",
        "CompileError: VARCHAR requires a length")
    date_implicit_bound = mysql_family(
        "a date, time or datetime sent as a parameter comes back as text from "
        "SELECT ? (the protocol sends it as a string)", "no error, a str instead of a date")
    time_implicit_bound = date_implicit_bound
    datetime_implicit_bound = date_implicit_bound


_STALE_VIEW = (
    "after a view's table is dropped, SQLAlchemy's MySQL has_table() / reflection runs "
    "DESCRIBE on the view and TiDB answers 1356 'View ... references invalid table(s)', which "
    "it does not expect (it expects 1146); seen in the suite only, not yet reduced to a "
    "standalone case, so skipped rather than marked as a known failure")

_LIST_ORDER = (
    "reflecting every table at once, TiDB gives a table's foreign keys and indexes in another "
    "order than MySQL (e.g. an unnamed foreign key 'fk_1' after the one the suite names "
    "'zz_email_add_id_fg' to sort last), and the suite compares the lists position by position")

#: Single suite tests (pattern over `Class::test[params]`) that fail on TiDB for a reason no
#: requirement covers, with TiDB's behaviour. Marked xfail(strict): if TiDB changes, the run
#: reports it. ("skip" where the outcome is not deterministic.)
KNOWN_TIDB_ISSUES: dict[str, tuple[str, str]] = {
    "CTETest::test_select_recursive_round_trip": (
        "xfail", "TiDB bug pingcap/tidb#45181: a recursive CTE that its recursive part refers "
        "to under an alias is unknown outside: 1054 Unknown column 'some_cte.data' in 'order "
        "clause'"),
    "TableViaSelectTest::test_without_metadata[plain*]": (
        "xfail", "TiDB lacks CREATE TABLE ... AS SELECT (the 'plain' case needs no "
        "requirement): 1105 'CREATE TABLE ... SELECT' is not implemented yet"),
    "TableViaSelectTest::test_without_metadata[use_schema0]": (
        "xfail", "TiDB lacks CREATE TABLE ... AS SELECT (needs no requirement in the suite): "
        "1105 'CREATE TABLE ... SELECT' is not implemented yet"),
    "JSONTest::test_index_cross_casts[*-None-*]": (
        "xfail", "TiDB casts a JSON null element to 0, false, 0.00 or 'null' where MySQL "
        "gives SQL NULL"),
    "JSONTest::test_*_typed_*[boolean2]": ("xfail", "TiDB casts a JSON null to false, not NULL"),
    "JSONTest::test_*_typed_*[float1]": ("xfail", "TiDB casts a JSON null to 0.0, not NULL"),
    "JSONTest::test_*_typed_*[integer3]": ("xfail", "TiDB casts a JSON null to 0, not NULL"),
    "JSONTest::test_*_typed_*[string1]": ("xfail", "TiDB casts a JSON null to 'null', not NULL"),
    "JSONTest::test_*_typed_*[_decimal1]": (
        "xfail", "TiDB keeps JSON numbers as 64-bit floats, so a 24-digit decimal loses its "
        "last digits (MySQL keeps the DECIMAL)"),
    **{f"ComponentReflectionTest::{test}[False-ObjectKind.{kind}-ObjectScope.{scope}-*]":
       ("xfail", _LIST_ORDER)
       for test in ("test_get_multi_foreign_keys", "test_get_multi_indexes")
       for kind in ("ANY", "TABLE", "TABLE|MATERIALIZED_VIEW", "TABLE|VIEW")
       for scope in ("ANY", "DEFAULT")},
    "WindowFunctionTest::test_window_range*": (
        "skip", "the test expects rows in the window's ORDER BY order from a query without "
        "ORDER BY; TiDB, like any distributed database, returns them in any order"),
    # The same three tests fail the same way with mysql+pymysql on this server: not the dialect.
    "TableViaSelectTest::test_view_dependencies_with_metadata": ("skip", _STALE_VIEW),
    "TableViaSelectTest::test_with_metadata[use_drop_all-not_use_temp-create_view]": (
        "skip", _STALE_VIEW),
    "TableViaSelectTest::test_without_metadata[use_schema1]": ("skip", _STALE_VIEW),
}

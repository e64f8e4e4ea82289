"""Bad input at the lesson's operations, models and accounts: a clear error, nothing written.

One of the bad-input sweep's modules; what counts as clear, and the table of counts, are in
tests/bad_input.py.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import insert, update

from crm_helpers.lesson import accounts, operations
from crm_helpers.lesson.models import Order, User
from tests.bad_input import (
    ENGINE,
    USER,
    Case,
    case_param,
    core_call,
    functions_swept,
    orm_call,
    runner_call,
    session_call,
    swept,
)

#: What this module's cases give bad input to (the first part of each case's id).
SWEPT = {
    "add_users", "add_orders", "delete_order", "set_order_price", "order_prices_of_user",
    "user_orders_statement", "as_gender", "as_price", "reset_crm_tables", "sqlalchemy_update",
    "sqlalchemy_bulk", "sqlalchemy_query", "sqlalchemy_core", "ensure_app_user",
    "create_database", "grants_frame", "privilege_probe", "app_password",
    "prepare_tutorial_database",
}

CASES: list[Case] = [
    # lesson/operations.py: the tutorial's operations (one Session each)
    Case("add_users-empty-name", session_call(operations.add_users, [("", "Female")]), "empty"),
    Case("add_users-blank-name", session_call(operations.add_users, [("   ", "Male")]), "empty"),
    Case("add_users-None-name", session_call(operations.add_users, [(None, "Male")]), "None"),
    Case("add_users-int-name", session_call(operations.add_users, [(42, "Male")]), "42"),
    Case("add_users-51-chars", session_call(operations.add_users, [("x" * 51, "Male")]), "51"),
    Case("add_users-unknown-gender", session_call(operations.add_users, [("Eve", "robot")]),
         "robot"),
    Case("add_users-None-gender", session_call(operations.add_users, [("Eve", None)]), "None"),
    Case("add_users-int-gender", session_call(operations.add_users, [("Eve", 1)]), "gender"),
    Case("add_users-second-bad", session_call(operations.add_users,
                                              [("Eve", "Female"), ("Bob", "robot")]), "robot"),
    Case("add_users-short-tuple", session_call(operations.add_users, [("Eve",)]), "name.*gender"),
    Case("add_users-long-tuple", session_call(operations.add_users, [("Eve", "Female", 3)]),
         "name.*gender"),
    Case("add_users-a-string", session_call(operations.add_users, "Eve"), "name.*gender"),
    Case("add_users-None", session_call(operations.add_users, None), "None|name.*gender"),
    Case("add_users-no-session", runner_call(operations.add_users, None, [("Eve", "Female")]),
         "Session"),
    Case("add_orders-negative", session_call(operations.add_orders, [(1, -5)]), "negative"),
    Case("add_orders-nan", session_call(operations.add_orders, [(1, float("nan"))]), "finite"),
    Case("add_orders-inf", session_call(operations.add_orders, [(1, float("inf"))]), "finite"),
    Case("add_orders-text-price", session_call(operations.add_orders, [(1, "9.99")]),
         "not a number"),
    Case("add_orders-None-price", session_call(operations.add_orders, [(1, None)]), "not a number"),
    Case("add_orders-bool-price", session_call(operations.add_orders, [(1, True)]), "not a number"),
    Case("add_orders-complex-price", session_call(operations.add_orders, [(1, 1 + 1j)]),
         "not a number"),
    Case("add_orders-list-price", session_call(operations.add_orders, [(1, [])]), "not a number"),
    Case("add_orders-decimal-nan", session_call(operations.add_orders, [(1, Decimal("NaN"))]),
         "finite|not a number"),
    Case("add_orders-1e308", session_call(operations.add_orders, [(1, 1e308)]), "large|exactly"),
    Case("add_orders-float-precision", session_call(operations.add_orders, [(1, 123456789.99)]),
         "exactly"),
    Case("add_orders-2**24+1", session_call(operations.add_orders, [(1, 16777217)]), "exactly"),
    Case("add_orders-unknown-uid", session_call(operations.add_orders, [(999, 1.0)]), "uid 999"),
    Case("add_orders-bool-uid", session_call(operations.add_orders, [(True, 1.0)]), "True"),
    Case("add_orders-text-uid", session_call(operations.add_orders, [("1", 1.0)]),
         "'1'.*whole|int"),
    Case("add_orders-None-uid", session_call(operations.add_orders, [(None, 1.0)]), "None"),
    Case("add_orders-float-uid", session_call(operations.add_orders, [(1.5, 1.0)]), "1.5"),
    Case("add_orders-negative-uid", session_call(operations.add_orders, [(-1, 1.0)]), "-1"),
    Case("add_orders-huge-uid", session_call(operations.add_orders, [(2**40, 1.0)]),
         str(2**40) + "|range"),
    Case("add_orders-second-bad", session_call(operations.add_orders, [(1, 2.5), (1, -1)]),
         "negative"),
    Case("add_orders-short-tuple", session_call(operations.add_orders, [(1,)]), "uid.*price"),
    Case("add_orders-None", session_call(operations.add_orders, None), "None|uid.*price"),
    Case("delete_order-unknown", session_call(operations.delete_order, 999), "oid 999"),
    Case("delete_order-None", session_call(operations.delete_order, None), "None"),
    Case("delete_order-text", session_call(operations.delete_order, "1"), "'1'"),
    Case("delete_order-injection", session_call(operations.delete_order, "1 OR 1=1"), "1 OR 1=1"),
    Case("delete_order-bool", session_call(operations.delete_order, True), "True"),
    Case("delete_order-float", session_call(operations.delete_order, 1.5), "1.5"),
    Case("set_order_price-unknown", session_call(operations.set_order_price, 999, 1.0), "oid 999"),
    Case("set_order_price-negative", session_call(operations.set_order_price, 1, -1), "negative"),
    Case("set_order_price-None", session_call(operations.set_order_price, 1, None), "not a number"),
    Case("set_order_price-nan", session_call(operations.set_order_price, 1, float("nan")),
         "finite"),
    Case("set_order_price-text-oid", session_call(operations.set_order_price, "1", 5.0), "'1'"),
    Case("set_order_price-bool-oid", session_call(operations.set_order_price, True, 5.0), "True"),
    Case("set_order_price-1e308", session_call(operations.set_order_price, 1, 1e308),
         "large|exactly"),
    Case("order_prices_of_user-text", session_call(operations.order_prices_of_user, "1"), "'1'"),
    Case("order_prices_of_user-None", session_call(operations.order_prices_of_user, None), "None"),
    Case("user_orders_statement-text", runner_call(operations.user_orders_statement, "x"), "'x'"),
    Case("as_gender-empty", runner_call(operations.as_gender, ""), "gender"),
    Case("as_gender-None", runner_call(operations.as_gender, None), "None"),
    Case("as_price-text", runner_call(operations.as_price, "abc"), "not a number"),
    Case("reset_crm_tables-None", runner_call(operations.reset_crm_tables, None), "Engine"),
    Case("reset_crm_tables-url-text", runner_call(operations.reset_crm_tables, "tidb://x"),
         "Engine"),

    # lesson/models.py: plain SQLAlchemy statements that bypass @validates meet the column types
    Case("sqlalchemy_update-bool-uid", orm_call(lambda s: s.execute(
        update(Order).where(Order.oid == 5).values(uid=True))), "uid True"),
    Case("sqlalchemy_update-unknown-gender", orm_call(lambda s: s.execute(
        update(User).values(gender="robot"))), "robot"),
    Case("sqlalchemy_update-empty-name", orm_call(lambda s: s.execute(
        update(User).values(name=""))), "empty"),
    Case("sqlalchemy_bulk-insert-text-uid", orm_call(lambda s: s.execute(
        insert(Order), [{"uid": 1, "price": 3}, {"uid": "1", "price": 3}])), "'1'.*int"),
    Case("sqlalchemy_query-update-float-uid", orm_call(lambda s: s.query(Order).filter(
        Order.oid == 1).update({"uid": 1.5})), "1.5"),
    Case("sqlalchemy_core-insert-60-chars", core_call(lambda c: c.execute(
        insert(User).values(name="x" * 60, gender="Male"))), "60 characters"),
    Case("sqlalchemy_core-insert-gender-M", core_call(lambda c: c.execute(
        insert(User).values(name="Eve", gender="M"))), "'M'"),
    Case("sqlalchemy_core-executemany-blank-name", core_call(lambda c: c.execute(
        insert(User), [{"name": "Eve", "gender": "Female"}, {"name": " ", "gender": "Male"}])),
        "empty"),
    Case("sqlalchemy_core-update-None-price", core_call(lambda c: c.execute(
        update(Order).where(Order.oid == 1).values(price=None))), "Price None"),

    # lesson/accounts.py
    Case("ensure_app_user-empty-password", lambda ctx: accounts.ensure_app_user(
        ctx.admin, USER, "", ctx.crm_database), "empty"),
    Case("ensure_app_user-None-password", lambda ctx: accounts.ensure_app_user(
        ctx.admin, USER, None, ctx.crm_database), "NoneType"),
    Case("ensure_app_user-int-password", lambda ctx: accounts.ensure_app_user(
        ctx.admin, USER, 12345678, ctx.crm_database), "int"),
    Case("ensure_app_user-root", lambda ctx: accounts.ensure_app_user(
        ctx.admin, "root", "Good-Password-1", ctx.crm_database), "administrator"),
    Case("ensure_app_user-mysql-db", lambda ctx: accounts.ensure_app_user(
        ctx.admin, USER, "Good-Password-1", "mysql"), "TiDB's own schemas"),
    Case("ensure_app_user-bad-user", lambda ctx: accounts.ensure_app_user(
        ctx.admin, "bad'user", "Good-Password-1", ctx.crm_database), "bad'user"),
    Case("ensure_app_user-None-user", lambda ctx: accounts.ensure_app_user(
        ctx.admin, None, "Good-Password-1", ctx.crm_database), "None"),
    Case("ensure_app_user-bad-db", lambda ctx: accounts.ensure_app_user(
        ctx.admin, USER, "Good-Password-1", "x`y"), "x`y"),
    Case("create_database-injection", lambda ctx: accounts.create_database(
        ctx.admin, "x`; DROP DATABASE mysql; --"), "letters, digits"),
    Case("create_database-None", lambda ctx: accounts.create_database(ctx.admin, None), "None"),
    Case("create_database-65-chars", lambda ctx: accounts.create_database(ctx.admin, "a" * 65),
         "64"),
    Case("create_database-no-engine", runner_call(accounts.create_database, None, "x"),
         "Engine"),
    Case("grants_frame-unknown-user", lambda ctx: accounts.grants_frame(
        ctx.admin, "no_such_user_zz"), "no_such_user_zz"),
    Case("grants_frame-bad-user", lambda ctx: accounts.grants_frame(ctx.admin, "bad'name"),
         "bad'name"),
    Case("privilege_probe-text", runner_call(accounts.privilege_probe_frame, ENGINE,
                                             "DROP TABLE x"), "list"),
    Case("privilege_probe-None", runner_call(accounts.privilege_probe_frame, None,
                                             ["SELECT 1"]), "Engine"),
    Case("app_password-directory", lambda ctx: accounts.app_password(ctx.tmp), "directory"),
    Case("app_password-missing-dir", lambda ctx: accounts.app_password(
        ctx.tmp / "no" / "such" / ".env"), "folder|directory"),
    Case("prepare_tutorial_database-text", runner_call(accounts.prepare_tutorial_database,
                                                       "settings"), "Settings"),

    # numbers: the one exactness rule, for every number type, in the models and the loader
    Case("add_orders-decimal-rounds-up", session_call(
        operations.add_orders, [(1, Decimal("9.999999999999999999"))]), "exactly"),
    Case("add_orders-decimal-underflows", session_call(
        operations.add_orders, [(1, Decimal("1E-400"))]), "exactly"),
    Case("add_orders-decimal-overflows", session_call(
        operations.add_orders, [(1, Decimal("1E+400"))]), "large"),
    Case("add_orders-np-int64-2**24+1", session_call(
        operations.add_orders, [(1, np.int64(16777217))]), "exactly"),
    Case("add_orders-np-complex", session_call(operations.add_orders, [(1, np.complex64(1))]),
         "not a number"),
    Case("add_orders-np-bool", session_call(operations.add_orders, [(1, np.bool_(True))]),
         "not a number"),
    Case("set_order_price-decimal-rounds", session_call(
        operations.set_order_price, 1, Decimal("0.30000000000000000001")), "exactly"),
    Case("create_database-trailing-newline", lambda ctx: accounts.create_database(
        ctx.admin, "crm\n"), "letters, digits"),
    *[Case(f"add_users-invisible-{label}", session_call(operations.add_users,
                                                          [(name, "Female")]),
           "visible|empty")
      for label, name in [("zwsp", "\u200b"), ("ideographic-space", "\u3000"),
                          ("bom", "\ufeff"), ("zwj-zwnj", "\u200d\u200c"),
                          ("hangul-filler", "\u3164"), ("braille-blank", "\u2800"),
                          ("nbsp-tab", "\u00a0\t"), ("rtl-marks", "\u200f\u202e")]],
    Case("sqlalchemy_core-insert-zwsp-name", core_call(lambda c: c.execute(
        insert(User).values(name="\u200b\u200b", gender="Male"))), "visible"),
]


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_bad_input_gets_a_clear_error_and_writes_nothing(bad_input_ctx, case):
    assert swept(case, bad_input_ctx) == "clear"


def test_the_sweep_reaches_every_function_here():
    assert functions_swept(CASES) >= SWEPT



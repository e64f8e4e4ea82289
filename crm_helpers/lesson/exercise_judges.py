"""How each kind of exercise is judged: run the answer and the reference, say what differs."""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy_tidb import WriteConflict

from crm_helpers.analysis.frames import query_frame
from crm_helpers.analysis.reading import read_frame
from crm_helpers.language import Text
from crm_helpers.lesson.exercise_benches import AccountsBench, CrmBench, FeaturesBench
from crm_helpers.lesson.exercise_checks import frame_difference, rows_difference, state_difference
from crm_helpers.lesson.exercises import AnswerRaised, learner

NOT_COMMITTED = Text(
    en="nothing you wrote is in the database: the session never committed it. "
       "End with session.commit().",
    ja="書き込んだ内容がデータベースにありません: セッションがコミットしていません。"
       "最後に session.commit() を呼んでください。")
ONE_ROW_PER_ORDER = Text(
    en="you returned {n} rows, one per order: the task asks for one row per customer, "
       "with the total of their prices (group_by).",
    ja="注文ごとに 1 行、計 {n} 行を返しています: 課題は顧客ごとに 1 行で、価格の合計です "
       "(group_by)。")
USE_QUERY = Text(en="use session.query(...), the tutorial's (1.x) style, for this one.",
                 ja="この問題ではチュートリアルの (1.x) スタイル session.query(...) "
                    "を使ってください。")
USE_SELECT = Text(
    en="session.query() is SQLAlchemy 1.x's legacy API: build the query with select() and "
       "run it with session.execute() or query_frame(session, ...).",
    ja="session.query() は SQLAlchemy 1.x のレガシー API です: select() でクエリを組み立て、"
       "session.execute() または query_frame(session, ...) で実行してください。")
NO_USER = Text(en="there is no user {account}: create it with CREATE USER.",
               ja="ユーザー {account} が存在しません: CREATE USER で作成してください。")
NO_LOGIN = Text(
    en="{account} cannot log in with the password the check gave: use IDENTIFIED BY "
       ":password, with the function's password as the bound parameter.",
    ja="チェックが渡したパスワードで {account} がログインできません: IDENTIFIED BY :password "
       "とし、関数の password をバインドパラメータとして渡してください。")
GRANTS_MISSING = Text(en="grants missing: {grants}.", ja="足りない権限: {grants}。")
GRANTS_EXTRA = Text(en="grants the task does not allow: {grants}.",
                    ja="課題が許していない権限: {grants}。")
NOT_SQL = Text(en="{name} should be the SQL text (a str), not {kind}.",
               ja="{name} は SQL の文字列 (str) であるべきですが、{kind} です。")
NO_GROUP_BY = Text(
    en="your SQL has no GROUP BY, so TiDB sends every row and does not aggregate: "
       "let TiDB group the rows with GROUP BY.",
    ja="SQL に GROUP BY がないため、TiDB は集計せずにすべての行を送ります: "
       "GROUP BY で TiDB に集計させてください。")
NOT_PUSHED_DOWN = Text(
    en="the answer is right, but its plan aggregates in {where}, not in TiKV (cop[tikv]): "
       "EXPLAIN shows where each step ran; aggregate the orders table directly.",
    ja="答えは正しいですが、実行計画では {where} で集計しており、TiKV (cop[tikv]) ではありません: "
       "EXPLAIN で各ステップの実行場所を確認し、orders テーブルを直接集計してください。")
LOST_CONFLICT = Text(
    en="your transaction lost a write conflict (TiDB error {code}) and was not run again: "
       "put the reads and writes in work(connection) and run it with run_transaction(engine, "
       "work).",
    ja="トランザクションが書き込み競合 (TiDB エラー {code}) に負け、再実行されませんでした: "
       "読み書きを work(connection) にまとめ、run_transaction(engine, work) で実行してください。")
RACED_PRICE = Text(
    en="order 5 costs {got} after your code, but {expected} after the reference (another "
       "session set it to 100 while yours ran): read the price inside work, which may run "
       "more than once.",
    ja="あなたのコードの後の注文 5 の価格は {got} ですが、参照解答では {expected} です "
       "(実行中に別のセッションが 100 に変更しました): work は複数回実行されることがあるので、"
       "価格は work の中で読んでください。")
NO_OBJECT = Text(en="there is no {kind} {name} after your code: create it in the function.",
                 ja="コードの実行後に {kind} {name} がありません: 関数の中で作成してください。")
AUTO_INCREMENT_NOT_RANDOM = Text(
    en="payments.id is AUTO_INCREMENT, not AUTO_RANDOM: give the key column "
       "tidb_auto_random=5 instead of autoincrement.",
    ja="payments.id が AUTO_RANDOM ではなく AUTO_INCREMENT です: キー列には autoincrement "
       "ではなく tidb_auto_random=5 を指定してください。")
DEFINITION_DIFFERS = Text(en="the definition differs: yours has {got}, the task asks for "
                             "{expected}.",
                          ja="定義が違います: あなたの定義は {got}、課題が求めるのは {expected} "
                             "です。")
VALUES_DIFFER = Text(en="you returned {got}; the task's sequence gives {expected}.",
                     ja="返り値は {got} ですが、課題のシーケンスでは {expected} になります。")


def names_used(code: Callable[..., Any]) -> set[str]:
    """Every global and attribute name `code` (and the functions inside it) refers to."""
    found: set[str] = set()
    stack = [getattr(code, "__code__", None)]
    while stack:
        each = stack.pop()
        if each is None:
            continue
        found.update(each.co_names)
        stack.extend(const for const in each.co_consts if isinstance(const, types.CodeType))
    return found


def style_mistake(answer: Any, style: str | None) -> str | None:
    """What is wrong with the API the answer uses, when the task names one."""
    used = names_used(answer)
    if style == "legacy" and "query" not in used:
        return USE_QUERY.format()
    if style == "2.0" and "query" in used:
        return USE_SELECT.format()
    return None


def crm_change(*, style: str | None = None) -> Callable[..., str | None]:
    """A task that changes notebook 4's tables: the tables afterwards, and the commit."""

    def judge(answer: Any, reference: Any, bench: CrmBench) -> str | None:
        wrong_style = style_mistake(answer, style)
        if wrong_style:
            return wrong_style
        mine = bench.run(learner(answer))
        expected = bench.run(reference)
        if mine.uncommitted and not expected.uncommitted:
            return NOT_COMMITTED.format()
        return state_difference(bench.start, mine.state, expected.state)

    return judge


def crm_query(*, ordered: bool = False, style: str | None = None) -> Callable[..., str | None]:
    """A task that reads notebook 4's tables into a DataFrame (and must change nothing)."""

    def judge(answer: Any, reference: Any, bench: CrmBench) -> str | None:
        wrong_style = style_mistake(answer, style)
        if wrong_style:
            return wrong_style
        mine = bench.run(learner(answer))
        expected = bench.run(reference)
        changed = state_difference(bench.start, mine.state, expected.state)
        if changed:
            return changed
        orders = len(bench.start["orders"])
        if (isinstance(mine.value, pd.DataFrame) and len(mine.value) == orders
                and len(expected.value) != orders):
            return ONE_ROW_PER_ORDER.format(n=orders)
        return frame_difference(mine.value, expected.value, ordered=ordered)

    return judge


def reader_grants(start: Callable[..., Any] | None = None) -> Callable[..., str | None]:
    """A task on notebook 2's reader account, judged by its grants (from `start`'s state)."""

    def run(code: Callable[..., Any], bench: AccountsBench) -> tuple[list | None, bool]:
        bench.reset()
        if start is not None:
            start(bench)
        code(bench.admin, bench.account, bench.password)
        grants = bench.grants()
        return grants, grants is not None and bench.can_log_in()

    def judge(answer: Any, reference: Any, bench: AccountsBench) -> str | None:
        got, logs_in = run(learner(answer), bench)
        expected, _ = run(reference, bench)
        if got is None:
            return NO_USER.format(account=bench.account)
        if not logs_in:
            return NO_LOGIN.format(account=bench.account)
        missing = [grant for (grant,) in expected if (grant,) not in got]
        extra = [grant for (grant,) in got if (grant,) not in expected]
        parts = ([GRANTS_MISSING.format(grants="; ".join(missing))] if missing else []) + (
            [GRANTS_EXTRA.format(grants="; ".join(extra))] if extra else [])
        return " ".join(parts) or None

    return judge


def _plan_aggregation_task(bench: Any, sql: str) -> str | None:
    """Where the plan of `sql` aggregates: the task of its lowest aggregation operator."""
    plan = query_frame(bench.engine, f"EXPLAIN {sql}")
    aggregations = plan[plan["id"].str.contains("Agg")]
    return None if aggregations.empty else str(aggregations["task"].iloc[-1])


def analysis_sql(name: str, *, pushed_down: bool = False) -> Callable[..., str | None]:
    """A question about notebook 5's orders, answered with SQL that TiDB aggregates."""

    def judge(answer: Any, reference: str, bench: Any) -> str | None:
        if not isinstance(answer, str):
            return NOT_SQL.format(name=name, kind=type(answer).__name__)
        if not re.search(r"\bGROUP\s+BY\b", answer, re.IGNORECASE):
            return NO_GROUP_BY.format()
        mine = learner(read_frame)(bench.engine, answer)
        wrong = frame_difference(mine, read_frame(bench.engine, reference))
        if wrong or not pushed_down:
            return wrong
        where = _plan_aggregation_task(bench, answer)
        return None if where and where.startswith("cop") else NOT_PUSHED_DOWN.format(
            where=where or "pandas")

    return judge


def raced_transaction(answer: Any, reference: Any, bench: FeaturesBench) -> str | None:
    """Notebook 6: a unit of work that must survive another session's commit."""
    try:
        got = bench.raced(answer)
    except WriteConflict as conflict:
        return LOST_CONFLICT.format(code=conflict.error_code)
    except Exception as error:
        raise AnswerRaised(error) from error
    expected = bench.raced(reference)
    return None if got == expected else RACED_PRICE.format(got=got, expected=expected)


def created(kind: str, name: str, *, returns: bool = False) -> Callable[..., str | None]:
    """Notebook 6: a table or sequence the answer creates, compared by its definition."""

    def run(code: Callable[..., Any], bench: FeaturesBench) -> tuple[Any, list[str] | None]:
        bench.reset()
        value = code(bench.engine)
        return value, bench.definition(kind, name)

    def judge(answer: Any, reference: Any, bench: FeaturesBench) -> str | None:
        value, got = run(learner(answer), bench)
        expected_value, expected = run(reference, bench)
        if got is None:
            return NO_OBJECT.format(kind=kind.lower(), name=name)
        if returns and [int(v) for v in value or []] != expected_value:
            return VALUES_DIFFER.format(got=value, expected=expected_value)
        if "AUTO_RANDOM" not in " ".join(got) and "AUTO_INCREMENT" in " ".join(got):
            return AUTO_INCREMENT_NOT_RANDOM.format()
        differ = rows_difference([(line,) for line in got], [(line,) for line in expected])
        if differ:
            return DEFINITION_DIFFERS.format(
                got="; ".join(line for line in got if line not in expected),
                expected="; ".join(line for line in expected if line not in got))
        return None

    return judge


def vector_query(answer: Any, reference: Any, bench: FeaturesBench) -> str | None:
    """Notebook 6: nearest rows, where the order (nearest first) is the point."""
    return frame_difference(learner(answer)(bench.engine), reference(bench.engine), ordered=True)

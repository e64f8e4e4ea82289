"""The exercises of notebooks 2, 4, 5 and 6, each defined once: task, starter, solution, hints.

A solution is the code `qN.solution()` prints; the check runs that very code (in this
module's names) to compute the expected answer against the learner's TiDB.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy_tidb import VECTOR, run_transaction

from crm_helpers.analysis.frames import explain_analyze_frame, query_frame
from crm_helpers.analysis.reading import read_frame
from crm_helpers.language import Text
from crm_helpers.lesson import exercise_judges as judges
from crm_helpers.lesson.exercise_benches import (
    AccountsBench,
    AnalysisBench,
    CrmBench,
    FeaturesBench,
)
from crm_helpers.lesson.exercises import Exercise
from crm_helpers.lesson.models import Gender, Order, User

#: Notebook 6's catalogue, as its lesson declares it.
products = Table("products", MetaData(),
                 Column("id", Integer, primary_key=True),
                 Column("name", String(50), nullable=False),
                 Column("taste", VECTOR(3), nullable=False))

#: The names a solution may use, as the notebooks have them.
NAMESPACE: dict[str, Any] = {
    "pd": pd, "select": select, "delete": delete, "update": update, "func": func, "text": text,
    "Table": Table, "Column": Column, "MetaData": MetaData, "BigInteger": BigInteger,
    "Integer": Integer, "Sequence": Sequence, "User": User, "Order": Order, "Gender": Gender,
    "query_frame": query_frame, "read_frame": read_frame, "run_transaction": run_transaction,
    "explain_analyze_frame": explain_analyze_frame, "products": products,
}


def _reference_reader(bench: AccountsBench) -> None:
    """Notebook 2's q2 starts from q1's answer: a reader with SELECT on the database."""
    reader = CREATE_DATABASE[0].reference({**NAMESPACE, **bench.names})
    reader(bench.admin, bench.account, bench.password)


CREATE_DATABASE = [
    Exercise(
        answer_name="create_reader",
        task=Text(
            en="Create the account `account` with the password `password` (a bound parameter) and "
               "let it only read the tutorial's database: SELECT on every table of `database`, "
               "nothing else.",
            ja="アカウント `account` をパスワード `password` (バインドパラメータ) で作成し、"
               "チュートリアルのデータベースを読むことだけを許可してください: `database` "
               "の全テーブルに"
               "対する SELECT のみです。"),
        starter="def create_reader(admin, account, password):\n    ____\n",
        solution='''
def create_reader(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USER {account} IDENTIFIED BY :password"),
                           {"password": password})
        connection.execute(text(f"GRANT SELECT ON `{database}`.* TO {account}"))
''',
        hints=(Text(en="Two statements, as in steps 2 and 3: CREATE USER, then GRANT.",
                    ja="手順 2 と 3 と同じく 2 つの文です: CREATE USER、次に GRANT。"),
               Text(en="GRANT SELECT ON `test_sqlalchemy`.* allows reading that database only.",
                    ja="GRANT SELECT ON `test_sqlalchemy`.* はそのデータベースの読み取りだけを許可"
                       "します。")),
        judge=judges.reader_grants()),
    Exercise(
        answer_name="let_reader_write_orders",
        task=Text(
            en="The reader from q1 now also has to add and change rows: grant it INSERT and "
               "UPDATE on `database`, but not DELETE or anything else.",
            ja="q1 の読み取り用アカウントに行の追加と変更も必要になりました: `database` に対する "
               "INSERT と "
               "UPDATE を付与してください。DELETE などそれ以外は付与しません。"),
        starter="def let_reader_write_orders(admin, account, password):\n    ____\n",
        solution='''
def let_reader_write_orders(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"GRANT INSERT, UPDATE ON `{database}`.* TO {account}"))
''',
        hints=(Text(en="One GRANT can list several privileges, separated by commas.",
                    ja="1 つの GRANT にカンマ区切りで複数の権限を並べられます。"),
               Text(en="GRANT ALL would also allow DELETE, DROP, ...: name the two privileges.",
                    ja="GRANT ALL では DELETE や DROP なども許可されます: 2 "
                       "つの権限を明示してください。")),
        judge=judges.reader_grants(start=_reference_reader)),
]

CRM_APPLICATION = [
    Exercise(
        answer_name="add_carol",
        task=Text(en="Add the customer Carol (female) with two orders, 12.5 and 30.0, and commit.",
                  ja="顧客 Carol (女性) と、その注文 2 件 (12.5 と 30.0) "
                     "を追加してコミットしてください。"),
        starter="def add_carol(session):\n    ____\n",
        solution='''
def add_carol(session):
    carol = User(name="Carol", gender=Gender.Female)
    session.add(carol)
    session.flush()
    session.add_all([Order(uid=carol.uid, price=12.5), Order(uid=carol.uid, price=30.0)])
    session.commit()
''',
        hints=(Text(en="First the user: session.add(User(...)); session.flush() gives it its uid.",
                    ja="まずユーザーです: session.add(User(...)) の後 session.flush() で uid "
                       "が決まります。"),
               Text(en="Then the orders with uid=carol.uid, and session.commit() at the end.",
                    ja="次に uid=carol.uid の注文を追加し、最後に session.commit() を呼びます。")),
        judge=judges.crm_change()),
    Exercise(
        answer_name="delete_cheap_orders",
        task=Text(en="Delete every order that costs less than 4.5, with 2.0's delete(), and "
                     "commit.",
                  ja="価格が 4.5 未満の注文をすべて 2.0 スタイルの delete() で削除し、"
                     "コミットしてください。"),
        starter="def delete_cheap_orders(session):\n    ____\n",
        solution='''
def delete_cheap_orders(session):
    session.execute(delete(Order).where(Order.price < 4.5))
    session.commit()
''',
        hints=(Text(en="session.execute(delete(Order).where(...)) as in step 3.",
                    ja="手順 3 と同じく session.execute(delete(Order).where(...)) です。"),
               Text(en="Less than 4.5: an order of exactly 4.5 stays.",
                    ja="4.5 未満です: ちょうど 4.5 の注文は残ります。")),
        judge=judges.crm_change(style="2.0")),
    Exercise(
        answer_name="raise_order_5",
        task=Text(en="Order 5 now costs 10 more than it does: change only that order, and commit.",
                  ja="注文 5 の価格を今より 10 上げてください。変更するのはその注文だけで、"
                     "コミットもします。"),
        starter="def raise_order_5(session):\n    ____\n",
        solution='''
def raise_order_5(session):
    session.execute(update(Order).where(Order.oid == 5).values(price=Order.price + 10))
    session.commit()
''',
        hints=(Text(en="update(Order).where(...).values(...), as in step 4.",
                    ja="手順 4 と同じく update(Order).where(...).values(...) です。"),
               Text(en="values(price=Order.price + 10) lets TiDB add to the current price.",
                    ja="values(price=Order.price + 10) とすると TiDB が現在の価格に加算します。")),
        judge=judges.crm_change()),
    Exercise(
        answer_name="spend_legacy",
        task=Text(en="Each customer's name and total spend, with session.query as in the tutorial: "
                     "a DataFrame with columns name and spend.",
                  ja="顧客ごとの名前と合計支出を、チュートリアルと同じ session.query "
                     "で求めてください: "
                     "列 name と spend を持つ DataFrame です。"),
        starter="def spend_legacy(session):\n    ____\n",
        solution='''
def spend_legacy(session):
    rows = (session.query(User.name, func.sum(Order.price))
            .select_from(User)
            .join(Order, Order.uid == User.uid)
            .group_by(User.uid, User.name)
            .all())
    return pd.DataFrame(rows, columns=["name", "spend"])
''',
        hints=(Text(en="The join of step 5, with func.sum(Order.price) instead of Order.price.",
                    ja="手順 5 の結合で、Order.price の代わりに func.sum(Order.price) を使います。"
                       ""),
               Text(en="group_by(User.uid, User.name) gives one row per customer; then "
                       "pd.DataFrame(rows, columns=[...]).",
                    ja="group_by(User.uid, User.name) で顧客ごとに 1 行になります。その後 "
                       "pd.DataFrame(rows, columns=[...]) です。")),
        judge=judges.crm_query(style="legacy")),
    Exercise(
        answer_name="spend_2_0",
        task=Text(en="The same in 2.0 style with select(), with the number of orders too: columns "
                     "name, orders and spend, biggest spender first.",
                  ja="同じものを select() による 2.0 スタイルで、注文数も含めて求めてください: "
                     "列は "
                     "name、orders、spend で、支出の多い順です。"),
        starter="def spend_2_0(session):\n    ____\n",
        solution='''
def spend_2_0(session):
    spend = func.sum(Order.price).label("spend")
    totals = (select(User.name, func.count(Order.oid).label("orders"), spend)
              .join(Order, Order.uid == User.uid)
              .group_by(User.uid, User.name)
              .order_by(spend.desc()))
    return query_frame(session, totals)
''',
        hints=(Text(en="select(User.name, func.count(...).label(\"orders\"), ...).join(...)"
                       ".group_by(...), run with query_frame(session, ...).",
                    ja="select(User.name, func.count(...).label(\"orders\"), ...).join(...)"
                       ".group_by(...) を query_frame(session, ...) で実行します。"),
               Text(en="order_by(spend.desc()) puts the biggest spender first.",
                    ja="order_by(spend.desc()) で支出の多い顧客が先頭になります。")),
        judge=judges.crm_query(ordered=True, style="2.0")),
]

EXPLORE_ORDERS = [
    Exercise(
        answer_name="weekday_sql",
        task=Text(en="SQL that lets TiDB count the orders and add up the revenue per weekday: "
                     "columns weekday (DAYOFWEEK(ordered_at), 1 = Sunday), orders and revenue.",
                  ja="曜日ごとの注文数と売上を TiDB に集計させる SQL を書いてください: 列は "
                     "weekday "
                     "(DAYOFWEEK(ordered_at)、1 = 日曜日)、orders、revenue です。"),
        starter="weekday_sql = ____\n",
        solution='''
weekday_sql = """
    SELECT DAYOFWEEK(ordered_at) AS weekday, COUNT(*) AS orders, SUM(price) AS revenue
    FROM orders GROUP BY weekday"""
''',
        hints=(Text(en="Like monthly_sql above, with DAYOFWEEK instead of MONTH.",
                    ja="上の monthly_sql と同じ形で、MONTH の代わりに DAYOFWEEK を使います。"),
               Text(en="COUNT(*) counts orders; SUM(price) is the revenue.",
                    ja="COUNT(*) が注文数、SUM(price) が売上です。")),
        judge=judges.analysis_sql("weekday_sql")),
    Exercise(
        answer_name="big_spenders_sql",
        task=Text(en="SQL for the customers who spent more than 1,000 in total: columns uid and "
                     "spend, aggregated by TiDB.",
                  ja="合計 1,000 より多く支出した顧客を求める SQL を書いてください: 列は uid と "
                     "spend で、集計は TiDB で行います。"),
        starter="big_spenders_sql = ____\n",
        solution='''
big_spenders_sql = """
    SELECT uid, SUM(price) AS spend
    FROM orders GROUP BY uid HAVING SUM(price) > 1000"""
''',
        hints=(Text(en="GROUP BY uid gives one row per customer with SUM(price).",
                    ja="GROUP BY uid で顧客ごとに SUM(price) の 1 行になります。"),
               Text(en="WHERE filters orders before grouping; HAVING filters the totals after it.",
                    ja="WHERE はグループ化の前に注文を絞り込み、HAVING "
                       "はその後に合計を絞り込みます。")),
        judge=judges.analysis_sql("big_spenders_sql")),
    Exercise(
        answer_name="expensive_per_month_sql",
        task=Text(en="SQL for the number of orders priced 500 or more per month (columns month and "
                     "orders) whose plan aggregates in TiKV: EXPLAIN shows HashAgg under "
                     "cop[tikv].",
                  ja="価格が 500 以上の注文の月ごとの件数 (列 month と orders) を求める SQL "
                     "を書いてください。実行計画で集計が TiKV で行われるようにしてください: "
                     "EXPLAIN で cop[tikv] の下に HashAgg が表示されます。"),
        starter="expensive_per_month_sql = ____\n",
        solution='''
expensive_per_month_sql = """
    SELECT MONTH(ordered_at) AS month, COUNT(*) AS orders
    FROM orders WHERE price >= 500 GROUP BY month"""
''',
        hints=(Text(en="WHERE price >= 500 before GROUP BY month.",
                    ja="GROUP BY month の前に WHERE price >= 500 です。"),
               Text(en="Look at explain_analyze_frame(engine, your_sql): the task column says "
                       "where each step ran.",
                    ja="explain_analyze_frame(engine, your_sql) を見てください: task "
                       "列が各ステップの"
                       "実行場所です。")),
        judge=judges.analysis_sql("expensive_per_month_sql", pushed_down=True)),
]

WHAT_TIDB_ADDS = [
    Exercise(
        answer_name="add_one_to_order_5",
        task=Text(en="Read order 5's price and write it back plus 1, in a unit of work that "
                     "run_transaction runs on `engine`; another session changes order 5 meanwhile.",
                  ja="注文 5 の価格を読み、1 を足して書き戻す作業単位を、`engine` 上の "
                     "run_transaction で実行してください。その間に別のセッションが注文 5 "
                     "を変更します。"),
        starter="def add_one_to_order_5(engine):\n    ____\n",
        solution='''
def add_one_to_order_5(engine):
    def work(connection):
        price = connection.execute(select(Order.price).where(Order.oid == 5)).scalar_one()
        connection.execute(update(Order).where(Order.oid == 5).values(price=price + 1))

    run_transaction(engine, work)
''',
        hints=(Text(en="Define work(connection) like discount_order_4 above.",
                    ja="上の discount_order_4 と同じように work(connection) を定義します。"),
               Text(en="Read inside work: it may run again, and must see the price then.",
                    ja="work の中で読んでください: 再実行されることがあり、"
                       "そのときの価格を読む必要があります。")),
        judge=judges.raced_transaction),
    Exercise(
        answer_name="create_payments",
        task=Text(en="Create the table payments: id, a BIGINT AUTO_RANDOM key with 5 shard bits, "
                     "and amount, an INTEGER that is NOT NULL.",
                  ja="テーブル payments を作成してください: id は 5 シャードビットの BIGINT "
                     "AUTO_RANDOM "
                     "キー、amount は NOT NULL の INTEGER です。"),
        starter="def create_payments(engine):\n    ____\n",
        solution='''
def create_payments(engine):
    payments = Table("payments", MetaData(),
                     Column("id", BigInteger, primary_key=True, tidb_auto_random=5),
                     Column("amount", Integer, nullable=False))
    payments.create(engine)
''',
        hints=(Text(en="A Table in a MetaData of its own, created with .create(engine).",
                    ja="独自の MetaData に Table を定義し、.create(engine) で作成します。"),
               Text(en="The key column takes tidb_auto_random=5, as orders_random above.",
                    ja="キー列には上の orders_random と同じく tidb_auto_random=5 を指定します。")),
        judge=judges.created("TABLE", "payments")),
    Exercise(
        answer_name="next_ticket_numbers",
        task=Text(en="Create the sequence ticket_numbers, starting at 500 and going up by 5, and "
                     "return its next three values as a list.",
                  ja="500 から始まり 5 ずつ増えるシーケンス ticket_numbers を作成し、次の 3 "
                     "つの値を"
                     "リストで返してください。"),
        starter="def next_ticket_numbers(engine):\n    ____\n",
        solution='''
def next_ticket_numbers(engine):
    tickets = Sequence("ticket_numbers", start=500, increment=5)
    tickets.create(engine)
    with engine.connect() as connection:
        return [connection.execute(select(tickets.next_value())).scalar_one()
                for _ in range(3)]
''',
        hints=(Text(en="Sequence(name, start=..., increment=...), then .create(engine).",
                    ja="Sequence(name, start=..., increment=...) の後 .create(engine) です。"),
               Text(en="select(tickets.next_value()) asks for the next number.",
                    ja="select(tickets.next_value()) で次の番号を取得します。")),
        judge=judges.created("SEQUENCE", "ticket_numbers", returns=True)),
    Exercise(
        answer_name="nearest_two",
        task=Text(en="The two products nearest to the taste [0.2, 0.8, 0.4] by cosine distance, "
                     "nearest first: columns name and cosine_distance (rounded to 4 places).",
                  ja="味 [0.2, 0.8, 0.4] にコサイン距離で最も近い商品 2 つを近い順に求めてください:"
                     " "
                     "列は name と cosine_distance (小数点以下 4 桁に丸める) です。"),
        starter="def nearest_two(engine):\n    ____\n",
        solution='''
def nearest_two(engine):
    distance = products.c.taste.cosine_distance([0.2, 0.8, 0.4])
    return query_frame(engine, select(products.c.name,
                                      func.round(distance, 4).label("cosine_distance"))
                       .order_by(distance).limit(2))
''',
        hints=(Text(en="The query of the nearest three above, with another taste and limit(2).",
                    ja="上の最も近い 3 つのクエリと同じ形で、味を変えて limit(2) にします。"),
               Text(en="order_by(distance) puts the nearest first.",
                    ja="order_by(distance) で最も近いものが先頭になります。")),
        judge=judges.vector_query),
]

#: Each notebook's bench, exercises and the names its solutions use.
NOTEBOOKS = {
    "create_database": (AccountsBench, CREATE_DATABASE, NAMESPACE),
    "crm_application": (CrmBench, CRM_APPLICATION, NAMESPACE),
    "explore_orders": (AnalysisBench, EXPLORE_ORDERS, NAMESPACE),
    "what_tidb_adds": (FeaturesBench, WHAT_TIDB_ADDS, NAMESPACE),
}

"""The exercises' checks, against the session's TiDB: typical wrong answers get their feedback.

Each wrong answer is code a learner would write; it runs through the same `qN.check()` as in
the notebook, in a throwaway database holding what the notebook's lesson leaves there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from crm_helpers.config import Settings
from crm_helpers.engines import tidb_engine
from crm_helpers.language import use_language
from crm_helpers.lesson import exercises as machinery
from crm_helpers.lesson.exercise_bank import NAMESPACE, NOTEBOOKS, products
from crm_helpers.lesson.exercises import ____, exercises, unanswered
from crm_helpers.lesson.models import Base, Gender, Order, User
from tests.conftest import loaded_analysis_database, throwaway_database

#: notebook -> question -> wrong answers (code defining the answer, feedback it must get).
WRONG_ANSWERS: dict[str, dict[int, list[tuple[str, str]]]] = {
    "create_database": {
        1: [
            ('''
def create_reader(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USER {account} IDENTIFIED BY :password"),
                           {"password": password})
        connection.execute(text(f"GRANT ALL ON `{database}`.* TO {account}"))
''', "grants the task does not allow: GRANT ALL PRIVILEGES ON `{database}`.*"),
            ('''
def create_reader(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USER {account} IDENTIFIED BY :password"),
                           {"password": password})
        connection.execute(text(f"GRANT SELECT ON *.* TO {account}"))
''', "grants missing: GRANT SELECT ON `{database}`.*"),
            ('''
def create_reader(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USER {account}"))
        connection.execute(text(f"GRANT SELECT ON `{database}`.* TO {account}"))
''', "cannot log in with the password the check gave"),
            ('''
def create_reader(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"GRANT SELECT ON `{database}`.* TO {account}"))
''', "your code raised"),
        ],
        2: [
            ('''
def let_reader_write_orders(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"GRANT ALL ON `{database}`.* TO {account}"))
''', "grants the task does not allow"),
            ('''
def let_reader_write_orders(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"GRANT INSERT ON `{database}`.* TO {account}"))
''', "grants missing: GRANT SELECT,INSERT,UPDATE"),
        ],
    },
    "crm_application": {
        1: [
            ('''
def add_carol(session):
    carol = User(name="Carol", gender=Gender.Female)
    session.add(carol)
    session.flush()
    session.add_all([Order(uid=carol.uid, price=12.5), Order(uid=carol.uid, price=30.0)])
''', "the session never committed it"),
            ('''
def add_carol(session):
    session.add(User(name="Carol", gender=Gender.Female))
    session.add_all([Order(uid=1, price=12.5), Order(uid=1, price=30.0)])
    session.commit()
''', "orders after your code: 2 row(s) missing: (new, 'Carol', 12.5), (new, 'Carol', 30.0). "
     "2 row(s) that should not be there: (new, 'Alice', 12.5), (new, 'Alice', 30.0)"),
            ('''
def add_carol(session):
    carol = User(name="Carol", gender=Gender.Male)
    session.add(carol)
    session.flush()
    session.add_all([Order(uid=carol.uid, price=12.5), Order(uid=carol.uid, price=30.0)])
    session.commit()
''', "users after your code: 1 row(s) missing: (new, 'Carol', 'Female')"),
        ],
        2: [
            ('''
def delete_cheap_orders(session):
    session.execute(delete(Order).where(Order.price <= 4.5))
    session.commit()
''', "orders after your code: 1 row(s) gone that should still be there: (3, 'Peter', 4.5)"),
            ('''
def delete_cheap_orders(session):
    session.execute(delete(Order).where(Order.price < 4.5))
''', "the session never committed it"),
            ('''
def delete_cheap_orders(session):
    session.query(Order).filter(Order.price < 4.5).delete()
    session.commit()
''', "session.query() is SQLAlchemy 1.x's legacy API"),
        ],
        3: [
            ('''
def raise_order_5(session):
    session.execute(update(Order).values(price=Order.price + 10))
    session.commit()
''', "row(s) that should not be there: (1, 'Alice', 13.5)"),
            ('''
def raise_order_5(session):
    session.execute(update(Order).where(Order.oid == 5).values(price=Order.price + 10))
''', "the session never committed it"),
            ('''
def raise_order_5(session):
    session.execute(update(Order).where(Order.oid == 5).values(price=10))
    session.commit()
''', "row(s) that should not be there: (5, 'Ben', 10.0)"),
        ],
        4: [
            ('''
def spend_legacy(session):
    rows = (session.query(User.name, Order.price)
            .select_from(User)
            .join(Order, Order.uid == User.uid)
            .all())
    return pd.DataFrame(rows, columns=["name", "spend"])
''', "you returned 5 rows, one per order"),
            ('''
def spend_legacy(session):
    rows = (session.query(User.name, func.sum(Order.oid))
            .select_from(User)
            .join(Order, Order.uid == User.uid)
            .group_by(User.uid, User.name)
            .all())
    return pd.DataFrame(rows, columns=["name", "spend"])
''', "row(s) missing: ('Alice', 4.0)"),
            ('''
def spend_legacy(session):
    return query_frame(session, select(User.name, func.sum(Order.price).label("spend"))
                       .join(Order, Order.uid == User.uid).group_by(User.uid, User.name))
''', "use session.query(...), the tutorial's (1.x) style"),
            ('''
def spend_legacy(session):
    session.query(Order).filter(Order.oid == 6).delete()
    session.commit()
    rows = (session.query(User.name, func.sum(Order.price))
            .select_from(User).join(Order, Order.uid == User.uid)
            .group_by(User.uid, User.name).all())
    return pd.DataFrame(rows, columns=["name", "spend"])
''', "orders changed, but this task should not change them"),
        ],
        5: [
            ('''
def spend_2_0(session):
    spend = func.sum(Order.price).label("spend")
    return query_frame(session, select(User.name, func.count(Order.oid).label("orders"), spend)
                       .join(Order, Order.uid == User.uid)
                       .group_by(User.uid, User.name).order_by(spend))
''', "the right rows, in the wrong order"),
            ('''
def spend_2_0(session):
    rows = (session.query(User.name, func.count(Order.oid), func.sum(Order.price))
            .join(Order, Order.uid == User.uid).group_by(User.uid, User.name).all())
    return pd.DataFrame(rows, columns=["name", "orders", "spend"])
''', "session.query() is SQLAlchemy 1.x's legacy API"),
            ('''
def spend_2_0(session):
    spend = func.sum(Order.price).label("spend")
    return query_frame(session, select(User.name, spend)
                       .join(Order, Order.uid == User.uid)
                       .group_by(User.uid, User.name).order_by(spend.desc()))
''', "the columns are ['name', 'spend'], the task asks for ['name', 'orders', 'spend']"),
        ],
    },
    "explore_orders": {
        1: [
            ('weekday_sql = "SELECT ordered_at, price FROM orders"', "your SQL has no GROUP BY"),
            ('''weekday_sql = """
    SELECT DAYOFWEEK(ordered_at) AS weekday, COUNT(*) AS orders, SUM(oid) AS revenue
    FROM orders GROUP BY weekday"""''', "7 row(s) missing"),
            ('weekday_sql = read_frame(engine, "SELECT 1")', "should be the SQL text (a str)"),
        ],
        2: [
            ('''big_spenders_sql = """
    SELECT uid, SUM(price) AS spend FROM orders WHERE price > 1000 GROUP BY uid"""''',
             "row(s) missing"),
            ('''big_spenders_sql = """
    SELECT uid, SUM(price) AS spend FROM orders GROUP BY uid HAVING SUM(price) > 100"""''',
             "row(s) that should not be there"),
        ],
        3: [
            ('''expensive_per_month_sql = """
    SELECT MONTH(ordered_at) AS month, COUNT(*) AS orders
    FROM orders WHERE price >= 50 GROUP BY month"""''', "row(s) missing"),
            ('''expensive_per_month_sql = """
    SELECT MONTH(o.ordered_at) AS month, COUNT(*) AS orders
    FROM orders o JOIN users u ON u.uid = o.uid WHERE o.price >= 500 GROUP BY month"""''',
             "its plan aggregates in root, not in TiKV"),
        ],
    },
    "what_tidb_adds": {
        1: [
            ('''
def add_one_to_order_5(engine):
    with engine.begin() as connection:
        price = connection.execute(select(Order.price).where(Order.oid == 5)).scalar_one()
        connection.execute(update(Order).where(Order.oid == 5).values(price=price + 1))
''', "your transaction lost a write conflict (TiDB error 9007)"),
            ('''
def add_one_to_order_5(engine):
    with engine.connect() as connection:
        price = connection.execute(select(Order.price).where(Order.oid == 5)).scalar_one()

    def work(connection):
        connection.execute(update(Order).where(Order.oid == 5).values(price=price + 1))

    run_transaction(engine, work)
''', "order 5 costs 9.5 after your code, but 101.0 after the reference"),
        ],
        2: [
            ('''
def create_payments(engine):
    payments = Table("payments", MetaData(),
                     Column("id", BigInteger, primary_key=True, autoincrement=True),
                     Column("amount", Integer, nullable=False))
    payments.create(engine)
''', "payments.id is AUTO_INCREMENT, not AUTO_RANDOM"),
            ('''
def create_payments(engine):
    payments = Table("payments", MetaData(),
                     Column("id", BigInteger, primary_key=True, tidb_auto_random=3),
                     Column("amount", Integer, nullable=False))
    payments.create(engine)
''', "AUTO_RANDOM(3)"),
            ('''
def create_payments(engine):
    payments = Table("payments", MetaData(),
                     Column("id", BigInteger, primary_key=True, tidb_auto_random=5),
                     Column("amount", Integer, nullable=False))
''', "there is no table payments after your code"),
        ],
        3: [
            ('''
def next_ticket_numbers(engine):
    tickets = Sequence("ticket_numbers", start=500)
    tickets.create(engine)
    with engine.connect() as connection:
        return [connection.execute(select(tickets.next_value())).scalar_one()
                for _ in range(3)]
''', "you returned [500, 501, 502]; the task's sequence gives [500, 505, 510]"),
            ('''
def next_ticket_numbers(engine):
    tickets = Sequence("ticket_numbers", increment=5)
    tickets.create(engine)
    with engine.connect() as connection:
        return [connection.execute(select(tickets.next_value())).scalar_one()
                for _ in range(3)]
''', "you returned [1, 6, 11]"),
        ],
        4: [
            ('''
def nearest_two(engine):
    distance = products.c.taste.cosine_distance([0.2, 0.8, 0.4])
    return query_frame(engine, select(products.c.name,
                                      func.round(distance, 4).label("cosine_distance"))
                       .order_by(distance.desc()).limit(2))
''', "row(s) missing"),
            ('''
def nearest_two(engine):
    distance = products.c.taste.cosine_distance([0.2, 0.8, 0.4])
    return query_frame(engine, select(products.c.name,
                                      func.round(distance, 4).label("cosine_distance"))
                       .order_by(distance))
''', "row(s) that should not be there"),
            ('''
def nearest_two(engine):
    distance = products.c.taste.l2_distance([0.2, 0.8, 0.4])
    return query_frame(engine, select(products.c.name,
                                      func.round(distance, 4).label("cosine_distance"))
                       .order_by(distance).limit(2))
''', "row(s) missing"),
        ],
    },
}

LESSON_PRODUCTS = [
    {"name": "lemonade", "taste": [0.7, 0.0, 0.9]},
    {"name": "pretzels", "taste": [0.1, 0.9, 0.0]},
    {"name": "sour candy", "taste": [0.8, 0.1, 1.0]},
    {"name": "salted caramel", "taste": [0.8, 0.6, 0.0]},
    {"name": "pickles", "taste": [0.0, 0.6, 0.9]},
    {"name": "chocolate", "taste": [1.0, 0.1, 0.0]},
]


def crm_tables(engine: Engine) -> None:
    """The CRM's tables with the tutorial's users and orders, as notebook 6 creates them."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([User(name="Alice", gender=Gender.Female),
                         User(name="Peter", gender=Gender.Male),
                         User(name="Ben", gender=Gender.Male)])
        session.flush()
        session.add_all([Order(uid=1, price=3.5), Order(uid=1, price=0.5),
                         Order(uid=2, price=4.5), Order(uid=3, price=212.5),
                         Order(uid=3, price=8.5)])
        session.commit()


@pytest.fixture(scope="module")
def resources(tidb_settings: Settings) -> Iterator[dict[str, dict]]:
    """Each notebook's exercise resources, in throwaway databases as the lessons leave them."""
    with throwaway_database(tidb_settings, "crm_pytest_exercises") as crm, \
            throwaway_database(tidb_settings, "crm_pytest_exercises") as features, \
            loaded_analysis_database(tidb_settings, "crm_pytest_exercises", 300, 6000) as analysis:
        admin = tidb_engine(tidb_settings.url())
        crm_engine = tidb_engine(tidb_settings.url(crm))
        Base.metadata.create_all(crm_engine)
        features_engine = tidb_engine(tidb_settings.url(features))
        crm_tables(features_engine)
        products.create(features_engine)
        with features_engine.begin() as connection:
            connection.execute(insert(products), LESSON_PRODUCTS)
        try:
            yield {"create_database": {"admin": admin, "database": crm},
                   "crm_application": {"engine": crm_engine},
                   "explore_orders": {"engine": analysis},
                   "what_tidb_adds": {"engine": features_engine}}
        finally:
            with admin.begin() as connection:
                connection.execute(text("DROP USER IF EXISTS 'crm_reader'@'%'"))
            for engine in (admin, crm_engine, features_engine):
                engine.dispose()


def answer(code: str, name: str, names: dict) -> object:
    """The object `code` defines as `name`, with the notebook's names at hand."""
    scope = {**NAMESPACE, **names}
    exec(code, scope)
    return scope[name]


CASES = [pytest.param(notebook, number, code, feedback, id=f"{notebook}-q{number}-{index}")
         for notebook, questions in WRONG_ANSWERS.items()
         for number, wrongs in questions.items()
         for index, (code, feedback) in enumerate(wrongs)]


def test_every_exercise_has_two_wrong_answers_tried() -> None:
    for notebook, (_, bank, _) in NOTEBOOKS.items():
        for number in range(1, len(bank) + 1):
            assert len(WRONG_ANSWERS[notebook].get(number, [])) >= 2, (notebook, number)


def test_the_notebooks_hold_at_least_14_exercises() -> None:
    assert sum(len(bank) for _, bank, _ in NOTEBOOKS.values()) >= 14


@pytest.mark.parametrize(("notebook", "number", "code", "feedback"), CASES)
def test_exercise_wrong_answer_gets_its_feedback(resources, capsys, notebook, number, code,
                                                 feedback) -> None:
    question = list(exercises(notebook, **resources[notebook]))[number - 1]
    names = question.namespace
    question.check(answer(code, question.exercise.answer_name, dict(names)))
    printed = capsys.readouterr().out
    assert printed.startswith(f"q{number}: not yet right. "), printed
    assert feedback.format(**names) in printed
    assert not question.done


@pytest.mark.parametrize(("notebook", "number"), [
    pytest.param(notebook, number, id=f"{notebook}-q{number}")
    for notebook, (_, bank, _) in NOTEBOOKS.items() for number in range(1, len(bank) + 1)])
def test_exercise_reference_solution_is_correct_and_leaves_the_lesson_state(
        resources, capsys, notebook, number) -> None:
    questions = exercises(notebook, **resources[notebook])
    question = list(questions)[number - 1]
    bench = question.bench
    before = bench.committed() if hasattr(bench, "committed") else None
    question.check(question.exercise.reference(question.namespace))
    assert capsys.readouterr().out == f"q{number}: Correct\n"
    assert question.done
    if before is not None:
        assert bench.committed() == before


def test_exercise_unanswered_prints_a_stable_line_and_raises_nothing(resources, capsys) -> None:
    q1, *_ = exercises("crm_application", **resources["crm_application"])
    starter = answer(q1.exercise.starter, q1.exercise.answer_name, {"____": ____})
    assert unanswered(starter) and unanswered(____)
    q1.check(starter)
    q1.check()
    line = "q1: not answered yet. Replace ____ with your code, then run the cell again.\n"
    assert capsys.readouterr().out == line * 2
    assert not q1.done


def test_exercise_hints_come_one_at_a_time_then_point_to_the_solution(resources, capsys) -> None:
    q1, *_ = exercises("crm_application", **resources["crm_application"])
    hints = q1.exercise.hints
    for _ in range(len(hints) + 1):
        q1.hint()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"Hint 1 of {len(hints)}: {hints[0].en}"
    assert printed[1] == f"Hint 2 of {len(hints)}: {hints[1].en}"
    assert printed[-1] == "(no more hints: q1.solution() shows the answer)"


def test_exercise_solution_prints_the_code_the_check_runs(resources, capsys) -> None:
    q1, *_ = exercises("crm_application", **resources["crm_application"])
    q1.solution()
    printed = capsys.readouterr().out
    assert printed == "Solution to q1:\n" + q1.exercise.solution.strip() + "\n"
    assert "def add_carol(session):" in printed


def test_exercise_summary_counts_what_is_done(resources, capsys) -> None:
    questions = exercises("crm_application", **resources["crm_application"])
    _, q2, *_ = questions
    questions.summary()
    q2.check(q2.exercise.reference(q2.namespace))
    questions.summary()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "0 of 5 exercises of this notebook done. Still to do: q1, q2, q3, q4, q5."
    assert printed[-1] == "1 of 5 exercises of this notebook done. Still to do: q1, q3, q4, q5."


def test_exercise_feedback_in_japanese(resources, capsys) -> None:
    questions = exercises("crm_application", **resources["crm_application"])
    q1, *_ = questions
    use_language("ja")
    try:
        q1.task()
        q1.check()
        q1.check(answer(WRONG_ANSWERS["crm_application"][1][0][0], "add_carol", {}))
        questions.summary()
    finally:
        use_language("en")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"q1. {q1.exercise.task.ja}"
    assert printed[1].startswith("q1: まだ解答されていません。")
    assert printed[2] == ("q1: まだ正しくありません。書き込んだ内容がデータベースにありません: "
                          "セッションがコミットしていません。"
                          "最後に session.commit() を呼んでください。")
    assert printed[3].startswith("このノートブックの演習 5 問中 0 問が完了しました。")


def test_exercise_error_messages_never_show_the_password(resources, capsys) -> None:
    q1, _ = exercises("create_database", **resources["create_database"])
    leaky = answer('''
def create_reader(admin, account, password):
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USERR {account} IDENTIFIED BY '{password}'"))
''', "create_reader", dict(q1.namespace))
    q1.check(leaky)
    printed = capsys.readouterr().out
    assert "your code raised ProgrammingError" in printed
    assert "IDENTIFIED BY '***'" in printed
    assert q1.bench.password not in printed


def test_exercise_unknown_notebook_is_refused_with_the_names_to_use() -> None:
    with pytest.raises(machinery.UnknownExercises, match="use one of 'create_database'"):
        exercises("crm_aplication")

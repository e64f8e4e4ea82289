"""Database errors get the lesson's advice on the project's engines, keeping SQLAlchemy's class."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from crm_helpers.analysis.frames import orders_frame
from crm_helpers.config import Settings, load_settings
from crm_helpers.engines import tidb_engine
from crm_helpers.errors import (
    CrmError,
    InvalidInput,
    InvalidPrice,
    LessonAdvice,
    TiDBAuthError,
    TiDBNotRunning,
    UserNotFound,
)
from crm_helpers.lesson.advice import RULES, Failure, translate
from crm_helpers.lesson.models import Gender, Order, User
from crm_helpers.lesson.operations import reset_crm_tables
from crm_helpers.local.server import LocalTiDB, start_local_tidb, stop_local_tidb
from tests.conftest import free_port, spare_tidb


def last_line(error: BaseException) -> str:
    """What a learner reads last in the traceback of `error`."""
    return traceback.format_exception(error)[-1].strip()


@pytest.fixture
def plain_engine(tidb_settings: Settings, test_database: str) -> Iterator[Engine]:
    """An engine made the way a learner makes one: plain create_engine, no project helper."""
    engine = create_engine(tidb_settings.url(test_database).render_as_string(hide_password=False))
    reset_crm_tables(engine)
    with Session(engine) as session:
        session.add_all([User(name="Alice", gender=Gender.Female)])
        session.commit()
    yield engine
    engine.dispose()


def test_an_order_for_a_missing_user_is_user_not_found(plain_engine):
    before = orders_frame(plain_engine)
    with Session(plain_engine) as session, pytest.raises(UserNotFound) as refused:
        session.add(Order(uid=42, price=9.99))
        session.commit()
    assert "Add the user first" in str(refused.value)
    assert last_line(refused.value).startswith("crm_helpers.errors.UserNotFound")
    assert orders_frame(plain_engine).equals(before)


def test_core_insert_for_a_missing_user_is_user_not_found(plain_engine):
    with plain_engine.begin() as connection, pytest.raises(UserNotFound):
        connection.execute(text("INSERT INTO orders (uid, price) VALUES (42, 1)"))


def test_a_name_too_long_for_its_column_is_invalid_input_not_a_raw_data_error(plain_engine):
    with plain_engine.begin() as connection, pytest.raises(InvalidInput, match="Data too long"):
        connection.execute(text("INSERT INTO users (name, gender) VALUES (:n, 'Male')"),
                           {"n": "x" * 51})


def test_a_check_failing_inside_sqlalchemy_surfaces_as_itself(plain_engine):
    with Session(plain_engine) as session, pytest.raises(InvalidPrice) as refused:
        session.query(Order).filter(Order.oid == 1).update({"price": -3})
    assert last_line(refused.value).startswith("crm_helpers.errors.InvalidPrice")


def test_wrong_password_is_auth_error_without_the_password(tidb_settings):
    secret = "not-the-password-4711"
    url = tidb_settings.url().set(username="nobody_here", password=secret)
    engine = create_engine(url)
    with pytest.raises(TiDBAuthError) as refused, engine.connect():
        pass
    shown = "".join(traceback.format_exception(refused.value))
    assert "TIDB_PASSWORD" in str(refused.value)
    assert secret not in str(refused.value) and secret not in last_line(refused.value)
    assert last_line(refused.value).startswith("crm_helpers.errors.TiDBAuthError")
    assert "crm_helpers.errors.TiDBAuthError" in shown
    engine.dispose()


def test_nothing_listening_is_tidb_not_running_for_a_plain_engine_on_the_projects_url():
    settings = load_settings(environ={"TIDB_HOST": "127.0.0.1", "TIDB_PORT": str(free_port())},
                             env_file=None)
    engine = create_engine(settings.url("test_sqlalchemy"))
    with pytest.raises(TiDBNotRunning) as refused, engine.connect():
        pass
    assert "crm-tidb up" in str(refused.value)
    assert isinstance(refused.value, OperationalError)
    assert last_line(refused.value).startswith("crm_helpers.errors.TiDBNotRunning")


def test_a_tidb_url_of_ones_own_gets_no_lesson_advice():
    # Without the crm_lesson plugin in the URL, the dialect is SQLAlchemy's contract alone.
    engine = create_engine(f"tidb://root:@127.0.0.1:{free_port()}/test_sqlalchemy")
    with pytest.raises(OperationalError) as refused, engine.connect():
        pass
    assert not isinstance(refused.value, CrmError)
    assert "crm-tidb" not in str(refused.value)
    assert refused.value.orig.args[0] == 2003


@pytest.fixture(scope="module")
def spare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTiDB]:
    """A TiDB of this test's own, which the test stops (never the session's server)."""
    with spare_tidb(tmp_path_factory.mktemp("stopped-tidb"), start=False) as local:
        yield local


@pytest.mark.lifecycle
@pytest.mark.parametrize("make_engine", [create_engine, tidb_engine],
                         ids=["create_engine", "tidb_engine"])
def test_tidb_stopped_then_query_is_tidb_not_running(spare, make_engine):
    start_local_tidb(spare)
    # A URL as the project's settings build it: it names the crm_lesson plugin.
    engine = make_engine(f"tidb://root:@127.0.0.1:{spare.port}/?plugin=crm_lesson")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    stop_local_tidb(spare)
    # The pool still holds the old connection: the first query finds it dead, the next one
    # finds nothing listening. Both must say what to do.
    for _ in range(2):
        with pytest.raises(TiDBNotRunning) as refused, engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert "crm-tidb up" in str(refused.value)
        assert last_line(refused.value).startswith("crm_helpers.errors.TiDBNotRunning")
    engine.dispose()


def test_every_rule_gives_a_project_error_or_none():
    for code, rule in RULES.items():
        result = rule(Failure(code=code, message="some text", url=None))
        assert result is None or (issubclass(result[0], LessonAdvice)
                                  and isinstance(result[1], str)), code


def test_unknown_codes_are_left_alone():
    missing = pymysql.err.ProgrammingError(1146, "Table doesn't exist")
    assert translate(ProgrammingError("SELECT 1", {}, missing), None) is None


def test_advice_never_changes_the_sqlalchemy_class():
    # 1452 names a parent row; were it to arrive as another class, it is left as it is.
    odd = pymysql.err.OperationalError(1452, "REFERENCES `users`")
    assert translate(OperationalError("INSERT", {}, odd), None) is None
    usual = pymysql.err.IntegrityError(1452, "REFERENCES `users`")
    advised = translate(IntegrityError("INSERT", {}, usual), None)
    assert isinstance(advised, UserNotFound) and isinstance(advised, IntegrityError)
    assert advised.orig is usual


def test_an_insert_without_a_required_column_is_invalid_input(plain_engine):
    before = orders_frame(plain_engine)
    with plain_engine.begin() as connection, \
            pytest.raises(InvalidInput, match=r"'price'.*give every column") as refused:
        connection.execute(text("INSERT INTO orders (uid) VALUES (1)"))
    # TiDB's 1364 is an OperationalError on mysql+pymysql too; the advice keeps that class.
    assert isinstance(refused.value, OperationalError)
    assert last_line(refused.value).startswith("crm_helpers.errors.NoValueForColumn")
    assert orders_frame(plain_engine).equals(before)

"""Where each notebook's exercises run: the tables, their starting state, and how to reset them.

A bench's `reset()` puts back what the lesson left, so the cell after an exercise sees the
tables the lesson expects, however the learner's answer changed them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crm_helpers.lesson.exercise_checks import TableState, plain
from crm_helpers.lesson.models import Gender, Order, User

#: The tables as notebook 4 leaves them, where its exercises start.
CRM_USERS = [(1, "Alice", Gender.Female), (2, "Peter", Gender.Male), (3, "Ben", Gender.Male)]
CRM_ORDERS = [(1, 1, 3.5), (2, 1, 0.5), (3, 2, 4.5), (5, 3, 212.5), (6, 3, 8.5)]


@dataclass
class Outcome:
    """What a learner's or the reference's code did: its value and the tables after it."""

    value: Any
    state: TableState
    uncommitted: bool


class CrmBench:
    """Notebook 4's `users` and `orders`, reset to the six-step tutorial's end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.names: dict[str, Any] = {}
        self.reset()
        self.start = self.committed()

    def reset(self) -> None:
        """The tables as the tutorial's steps leave them."""
        with self.engine.begin() as connection:
            connection.execute(delete(Order))
            connection.execute(delete(User))
            connection.execute(insert(User), [{"uid": uid, "name": name, "gender": gender}
                                              for uid, name, gender in CRM_USERS])
            connection.execute(insert(Order), [{"oid": oid, "uid": uid, "price": price}
                                               for oid, uid, price in CRM_ORDERS])

    def state(self, runner: Any) -> TableState:
        """Users and orders, with ids the start did not have shown as new (they vary by run)."""
        users = runner.execute(text("SELECT uid, name, gender FROM users")).all()
        orders = runner.execute(text(
            "SELECT orders.oid, users.name, orders.price FROM orders "
            "LEFT JOIN users ON users.uid = orders.uid")).all()
        known_uids = {uid for uid, _, _ in CRM_USERS}
        known_oids = {oid for oid, _, _ in CRM_ORDERS}
        return {
            "users": [(uid if uid in known_uids else None, name, plain(gender))
                      for uid, name, gender in users],
            "orders": [(oid if oid in known_oids else None, name, plain(price))
                       for oid, name, price in orders],
        }

    def committed(self) -> TableState:
        """The tables as every other session sees them."""
        with self.engine.connect() as connection:
            return self.state(connection)

    def run(self, code: Callable[[Session], Any]) -> Outcome:
        """Run `code` with a session of its own, from the starting state."""
        self.reset()
        session = Session(self.engine)
        try:
            value = code(session)
            seen_inside = (self.state(session) if session.in_transaction()
                           else self.committed())
            pending = bool(session.new or session.dirty or session.deleted)
            state = self.committed()
            return Outcome(value, state, pending or seen_inside != state)
        finally:
            session.rollback()
            session.close()


class AccountsBench:
    """Notebook 2's server accounts: a reader account that exists only while a check runs."""

    account = "'crm_reader'@'%'"

    def __init__(self, admin: Engine, database: str) -> None:
        self.admin = admin
        self.password = secrets.token_urlsafe(18)
        self.secrets = (self.password,)
        self.names = {"database": database}
        self.database = database

    def reset(self) -> None:
        """No reader account, as the lesson has none."""
        with self.admin.begin() as connection:
            connection.execute(text(f"DROP USER IF EXISTS {self.account}"))

    def grants(self) -> list[tuple] | None:
        """The reader's grants, or None when the account does not exist."""
        with self.admin.connect() as connection:
            exists = connection.execute(text(
                "SELECT COUNT(*) FROM mysql.user WHERE user = 'crm_reader' AND host = '%'"
            )).scalar_one()
            if not exists:
                return None
            # USAGE is "no privileges": every account has it, until it has something on *.*.
            return [(row[0],) for row in connection.execute(
                text(f"SHOW GRANTS FOR {self.account}")) if not row[0].startswith("GRANT USAGE")]

    def can_log_in(self) -> bool:
        """Whether the reader logs in with the password the check gave."""
        url = self.admin.url.set(username="crm_reader", password=self.password,
                                 database=self.database)
        reader = create_engine(url, connect_args={"connect_timeout": 10})
        try:
            with reader.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except DBAPIError:
            return False
        finally:
            reader.dispose()


class AnalysisBench:
    """Notebook 5's million orders: read only, so there is nothing to reset."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.names = {"engine": engine}

    def reset(self) -> None:
        """Nothing to do: the exercises only read."""


class FeaturesBench:
    """Notebook 6's database: order 5, and the tables and sequence the exercises create."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.optimistic = engine.execution_options(tidb_txn_mode="optimistic")
        self.names: dict[str, Any] = {}

    def reset(self) -> None:
        """Order 5 at the lesson's 8.5, and no `payments` table or `ticket_numbers` sequence."""
        with self.engine.begin() as connection:
            connection.execute(update(Order).where(Order.oid == 5).values(price=8.5))
            connection.execute(text("DROP TABLE IF EXISTS payments"))
            connection.execute(text("DROP SEQUENCE IF EXISTS ticket_numbers"))

    def order_5_price(self) -> float:
        """Order 5's price as committed."""
        with self.engine.connect() as connection:
            return connection.execute(select(Order.price).where(Order.oid == 5)).scalar_one()

    def raced(self, code: Callable[[Engine], Any]) -> float:
        """Run `code(optimistic engine)` while another session sets order 5 to 100 once, right
        after `code`'s first statement on `orders`; order 5's price afterwards."""
        self.reset()
        rival = {"committed": False}

        def rival_commits(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "orders" in statement and not rival["committed"]:
                rival["committed"] = True
                with self.engine.begin() as other:
                    other.execute(update(Order).where(Order.oid == 5).values(price=100))

        event.listen(self.optimistic, "after_cursor_execute", rival_commits)
        try:
            code(self.optimistic)
        finally:
            event.remove(self.optimistic, "after_cursor_execute", rival_commits)
        return self.order_5_price()

    def definition(self, kind: str, name: str) -> list[str] | None:
        """The column lines of `SHOW CREATE TABLE|SEQUENCE name`, or None if it is missing."""
        with self.engine.connect() as connection:
            exists = connection.execute(text(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = :name"), {"name": name}
            ).scalar_one()
            if not exists:
                return None
            created = connection.execute(text(f"SHOW CREATE {kind} {name}")).one()[1]
        return [line.strip().rstrip(",") for line in created.splitlines()
                if line.strip().startswith("`") or kind == "SEQUENCE"]

"""The tutorial's CRM program as one plain script, the way the tutorial writes it (no crm_helpers).

Run it with `make tutorial`, or `.venv/bin/python examples/tutorial_main.py` once TiDB runs and
the database exists (notebook 02 or `make tutorial` creates it). It prints the orders of user 3:
[('Ben', 212.5), ('Ben', 8.5)]

The connection string has the tutorial's shape,
tidb://{username}:{password}@{hostname}:{port}/test_sqlalchemy?charset=utf8mb4, filled in from
the project's settings: TIDB_URL if set, otherwise TIDB_HOST, TIDB_PORT, TIDB_USER,
TIDB_PASSWORD and TIDB_DB_NAME (from the environment or .env; defaults: root with no password
on 127.0.0.1:4000, database test_sqlalchemy).

Unlike the tutorial, which runs once on an empty database, it drops and re-creates the tables
`users` and `orders` first, so every run starts from the same state and prints the same result.
"""

import enum
import os
from urllib.parse import quote_plus

from dotenv import load_dotenv
from sqlalchemy import Column, Enum, Float, Integer, String, create_engine
from sqlalchemy.orm import declarative_base, sessionmaker


def tutorial_url() -> str:
    """The tutorial's URL for the TiDB the project's settings point at."""
    load_dotenv()  # .env values, without overriding the environment
    if os.environ.get("TIDB_URL"):
        return os.environ["TIDB_URL"]
    url = "tidb://{username}:{password}@{hostname}:{port}/{database}?charset=utf8mb4".format(
        username=quote_plus(os.environ.get("TIDB_USER") or "root"),
        password=quote_plus(os.environ.get("TIDB_PASSWORD") or ""),
        hostname=os.environ.get("TIDB_HOST") or "127.0.0.1",
        port=os.environ.get("TIDB_PORT") or "4000",
        database=os.environ.get("TIDB_DB_NAME") or "test_sqlalchemy",
    )
    if os.environ.get("CA_PATH"):
        url += f"&ssl_ca={quote_plus(os.environ['CA_PATH'])}"
    return url


engine = create_engine(tutorial_url(), echo=False)

# The base class on which the objects will be defined.
Base = declarative_base()


class Gender(enum.Enum):
    Female = 1
    Male = 2


class User(Base):
    __tablename__ = "users"
    uid = Column(Integer, primary_key=True)
    name = Column(String(50))
    gender = Column(Enum(Gender))


class Order(Base):
    __tablename__ = "orders"
    oid = Column(Integer, primary_key=True, autoincrement=True)
    uid = Column(Integer)
    price = Column(Float)


# Start from empty tables (the tutorial assumes a fresh database), then create them.
Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)

Session = sessionmaker(bind=engine)
session = Session()

session.add_all([
    User(name="Alice", gender=Gender.Female),
    User(name="Peter", gender=Gender.Male),
    User(name="Ben", gender=Gender.Male),
])
session.commit()

session.add(Order(uid=1, price=2.5))
session.commit()

session.add_all([
    Order(uid=1, price=0.5),
    Order(uid=2, price=4.5),
    Order(uid=2, price=2123.87),
    Order(uid=3, price=212.5),
    Order(uid=3, price=8.5),
])
session.commit()

session.query(Order).filter(Order.oid == 4).delete()
session.commit()

session.query(Order).filter(Order.oid == 1).update({"price": 3.5})
session.commit()

# SQL promises no row order without ORDER BY, so ask for the order of insertion.
print(
    session.query(User.name, Order.price)
    .select_from(User)
    .filter(User.uid == Order.uid)
    .filter(Order.uid == 3)
    .order_by(Order.oid)
    .all()
)

"""The tutorial's CRM as one plain program, the way the tutorial writes it (no crm_helpers).

Run it against a fresh database: python examples/tutorial_main.py
It prints the orders of user 3: [('Ben', 212.5), ('Ben', 8.5)]
TUTORIAL_URL overrides the tutorial's own URL (the tests point it at a throwaway database).
"""

import enum
import os

from sqlalchemy import Column, Enum, Float, Integer, String, create_engine
from sqlalchemy.orm import declarative_base, sessionmaker

engine = create_engine(
    os.environ.get("TUTORIAL_URL", "tidb://root:@127.0.0.1:4000/test_sqlalchemy?charset=utf8mb4"),
    echo=False,
)
Base = declarative_base()


class Gender(enum.Enum):
    Female = 1
    Male = 2


class Customer(Base):
    __tablename__ = "users"
    uid = Column(Integer, primary_key=True)
    name = Column(String(50))
    gender = Column(Enum(Gender))


class Purchase(Base):
    __tablename__ = "orders"
    oid = Column(Integer, primary_key=True, autoincrement=True)
    uid = Column(Integer)
    price = Column(Float)


Base.metadata.create_all(engine)
session = sessionmaker(bind=engine)()

session.add_all([Customer(name="Alice", gender=Gender.Female),
                 Customer(name="Peter", gender=Gender.Male),
                 Customer(name="Ben", gender=Gender.Male)])
session.commit()

session.add(Purchase(uid=1, price=2.5))
session.commit()
session.add_all([Purchase(uid=1, price=0.5), Purchase(uid=2, price=4.5),
                 Purchase(uid=2, price=2123.87), Purchase(uid=3, price=212.5),
                 Purchase(uid=3, price=8.5)])
session.commit()

session.query(Purchase).filter(Purchase.oid == 4).delete()
session.commit()
session.query(Purchase).filter(Purchase.oid == 1).update({"price": 3.5})
session.commit()

# SQL promises no row order without ORDER BY, so ask for the order of insertion.
print(
    session.query(Customer.name, Purchase.price)
    .select_from(Customer)
    .filter(Customer.uid == Purchase.uid)
    .filter(Purchase.uid == 3)
    .order_by(Purchase.oid)
    .all()
)

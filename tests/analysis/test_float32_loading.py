"""float32 columns load as the decimals they print as, into DOUBLE and FLOAT columns alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import BigInteger, Column, Double, Float, MetaData, Table, select

from crm_helpers.analysis.loader import load_frame
from crm_helpers.analysis.schema import analysis_engine
from tests.conftest import throwaway_database

measures = Table("measures", MetaData(), Column("id", BigInteger, primary_key=True),
                 Column("wide", Double), Column("single", Float))

# Values whose float32 binary value is not the decimal one typed: 0.1f is 0.10000000149...
TYPED = [0.1, 3.3, 1e-7, 123.456, -2.675, 16777216.0, 3.4e38]


@pytest.fixture(scope="module")
def measures_engine(tidb_settings):
    """An analysis engine on a database of its own (each test makes the measures table)."""
    with throwaway_database(tidb_settings, "crm_pytest_float32") as name:
        engine = analysis_engine(tidb_settings, database=name)
        yield engine
        engine.dispose()


def stored(engine) -> dict[str, list]:
    """Each column's values as the driver gives them (NULL as None), in id order."""
    with engine.connect() as connection:
        rows = connection.execute(select(measures).order_by(measures.c.id)).all()
    return {name: [row._mapping[name] for row in rows] for name in ("wide", "single")}


@pytest.mark.parametrize("dtype", ["float32", "Float32", "float16"])
def test_float32_values_arrive_as_the_decimals_they_print_as(measures_engine, dtype):
    measures.drop(measures_engine, checkfirst=True)
    measures.create(measures_engine)
    typed = TYPED if dtype != "float16" else [0.1, 3.3, 1e-3, 123.4, -2.675, 2048.0, 65504.0]
    values = pd.Series([*typed, None], dtype=dtype)
    frame = pd.DataFrame({"id": range(1, len(values) + 1), "wide": values, "single": values})
    load_frame(measures_engine, measures, frame, progress=False)
    back = stored(measures_engine)
    narrow = np.float16 if dtype == "float16" else np.float32
    printed = [float(str(narrow(value))) for value in typed]
    # DOUBLE: the shortest decimal of each float32 (0.1, not 0.10000000149011612).
    assert back["wide"][:-1] == printed
    assert back["wide"][-1] is None
    # FLOAT: the float32 of that decimal (for float32s, the very same float32 as given).
    assert np.array_equal(np.array(back["single"][:-1], dtype=np.float32),
                          np.array(printed, dtype=np.float32))
    assert back["single"][-1] is None


def test_float64_values_keep_every_digit_in_a_double(measures_engine):
    measures.drop(measures_engine, checkfirst=True)
    measures.create(measures_engine)
    exact = [float(np.float32(0.1)), 0.1, 2.0 ** -30]
    frame = pd.DataFrame({"id": [1, 2, 3], "wide": exact, "single": [None] * 3})
    load_frame(measures_engine, measures, frame, progress=False)
    assert stored(measures_engine)["wide"] == exact

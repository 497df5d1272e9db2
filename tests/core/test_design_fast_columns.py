"""The design's direct column conversions (numpy numbers, short string columns) give the
same values, levels and codes as pandas' general path, and a parsed formula is reused."""

import numpy as np
import pandas as pd
import pytest

import lmm_core.design.model_matrix as mm
from lmm_core.design.build import build_design

WORDS = ["b", "a", "Zoe", "émile", "", "a", "10", "9", "😀", "b", "Émile", "z"]


@pytest.mark.parametrize(
    "dtype", ["str", pd.StringDtype("python"), pd.StringDtype("pyarrow"), "string"]
)
def test_short_string_columns_code_as_factorize(dtype, monkeypatch):
    s = pd.Series(WORDS + [None, "a"], dtype=dtype)
    fast = mm.series_value(s)
    monkeypatch.setattr(mm, "SMALL_STRING_COLUMN", -1)  # pandas' factorize path
    slow = mm.series_value(s)
    assert fast.labels == slow.labels
    assert list(fast.labels) == sorted(set(WORDS))  # code-point order
    assert np.array_equal(fast.codes, slow.codes) and fast.codes.dtype == np.int64
    assert fast.codes[len(WORDS)] == -1


@pytest.mark.parametrize("values", [[1.5, np.nan, -2.0], [3, 1, 2], [40000, 0, 7]])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32", "uint16"])
def test_numpy_number_columns(values, dtype):
    if "int" in dtype and (np.isnan(values).any() or min(values) < 0):
        pytest.skip("not representable")
    s = pd.Series(values, dtype=dtype)
    num = mm.series_value(s)
    expected = s.to_numpy(dtype=np.float64, na_value=np.nan)
    assert np.array_equal(num.values, expected, equal_nan=True)
    assert not np.shares_memory(num.values, s.to_numpy())
    fac = mm.series_value(s, as_factor=True)
    ref = mm.numeric_factor(expected, integer="int" in dtype)
    assert fac.labels == ref.labels and np.array_equal(fac.codes, ref.codes)


def test_same_formula_text_parsed_once_same_design():
    rng = np.random.default_rng(2)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=60),
            "t": np.tile(np.arange(6.0), 10),
            "g": np.repeat([f"s{i}" for i in range(10)], 6),
        }
    )
    a = build_design("y ~ t + (t | g)", data)
    b = build_design("y ~ t + (t | g)", data)
    assert a.spec is b.spec
    assert np.array_equal(a.X, b.X) and a.reterms[0].levels == b.reterms[0].levels
    assert np.array_equal(a.reterms[0].codes, b.reterms[0].codes)

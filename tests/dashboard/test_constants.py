"""The shared constants: the normal quantile follows the chosen confidence level."""

from __future__ import annotations

import pytest

from dashboard.base.constants import CONFIDENCE_LEVEL, NONE_CHOICE, z_value


def test_z_value_follows_the_level():
    assert CONFIDENCE_LEVEL == 0.95 and NONE_CHOICE == "(none)"
    assert z_value() == pytest.approx(1.959964, abs=1e-6)
    assert z_value(0.90) == pytest.approx(1.644854, abs=1e-6)
    assert z_value(0.99) == pytest.approx(2.575829, abs=1e-6)


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_z_value_rejects_levels_outside_0_1(level):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        z_value(level)

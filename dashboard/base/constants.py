"""Constants shared by pages, views and figures: the "no column" choice and the confidence level.

:func:`z_value` turns a two-sided confidence level into the normal quantile of its interval
(1.96 for 95%), so that a band or an error bar follows the level it is drawn for.
"""

from __future__ import annotations

from scipy.stats import norm

__all__ = ["CONFIDENCE_LEVEL", "NONE_CHOICE", "z_value"]

#: The choice "no column" in select boxes (colour by, cluster, covariates...).
NONE_CHOICE = "(none)"

#: Default level of confidence intervals, bands and error bars.
CONFIDENCE_LEVEL = 0.95


def z_value(level: float = CONFIDENCE_LEVEL) -> float:
    """Normal quantile of a two-sided interval at ``level``: 1.959964 for 0.95."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie strictly between 0 and 1, not {level!r}")
    return float(norm.ppf(0.5 + level / 2.0))

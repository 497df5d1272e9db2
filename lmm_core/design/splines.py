"""Spline and polynomial bases as R computes them: ``splines::ns``/``bs``, ``stats::poly``.

A basis is *stateful*: what it learns from the fitting data (interior knots at quantiles,
boundary knots at the range, orthogonal-polynomial coefficients) is kept in a
:class:`BasisState` and reused for every new value (R's "safe prediction",
``makepredictcall``), so a prediction, a forecast or a simulated data set use exactly the
basis of the fit.

The math (de Boor's B-splines; ``splineDesign`` is scipy's ``BSpline``):

- ``bs`` of degree ``d`` (order ``m = d + 1``): the B-splines of order ``m`` on the knots
  ``a^m, k_1..k_K, b^m`` (boundary knots repeated ``m`` times), the first dropped unless
  ``intercept``. With ``df``, ``K = df - m + 1 - intercept`` knots at the quantiles
  ``j / (K + 1)`` of the data inside the boundary knots (R's ``quantile`` type 7). Beyond a
  boundary knot the basis is the Taylor polynomial of degree ``d`` around the pivot
  ``0.75 a + 0.25 t_{m+1}`` (R's ``predict.bs`` since R 3.3).
- ``ns``: the cubic B-splines (order 4) on ``a^4, k, b^4`` with the first dropped unless
  ``intercept``, projected on the null space of their second derivatives at both boundary
  knots: ``N = B Q_{[,3:]}`` with ``C^T = Q R`` the Householder QR of the constraint matrix
  ``C`` (2 x columns), as R's ``qr.qty``. Beyond a boundary knot the basis continues linearly
  (value and first derivative at the knot). ``df`` gives ``K = df - 1 - intercept`` knots.
- ``poly(x, d)``: the orthogonal polynomials of the fitting values, by the three-term
  recurrence ``P_{j+1}(x) = (x - alpha_j) P_j(x) - (n_{j+1} / n_j) P_{j-1}(x)``, each divided by
  ``sqrt(n_{j+1})`` (``n`` = R's ``norm2``); the fitting values use the QR of the centred
  Vandermonde matrix as R does. ``raw = TRUE`` gives ``x, x^2, ..., x^d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline
from scipy.linalg import qr

from lmm_core.errors import DataError
from lmm_core.formula.basis_args import BasisCall
from lmm_core.formula.quoting import r_number

_BS_PIVOT = 0.25  # R's `e` in predict.bs


@dataclass(frozen=True)
class BasisState:
    """A basis as learned from the fitting data; :meth:`evaluate` applies it to any values.

    Attributes
    ----------
    func
        ``"ns"``, ``"bs"`` or ``"poly"``.
    degree
        Degree of the pieces (ns: 3) or of the polynomial.
    knots
        Interior knots (ns, bs).
    boundary
        Boundary knots (ns, bs).
    intercept
        Whether the constant is part of the basis (ns, bs).
    raw
        Plain powers (poly).
    alpha, norm2
        Orthogonal-polynomial coefficients (R's ``coefs``).
    """

    func: str
    degree: int
    knots: tuple[float, ...] = ()
    boundary: tuple[float, float] = (0.0, 1.0)
    intercept: bool = False
    raw: bool = False
    alpha: tuple[float, ...] = ()
    norm2: tuple[float, ...] = ()

    @property
    def n_columns(self) -> int:
        """Number of basis columns."""
        if self.func == "poly":
            return self.degree
        if self.func == "ns":
            return len(self.knots) + 1 + int(self.intercept)
        return len(self.knots) + self.degree + int(self.intercept)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The basis at ``x``: an ``(len(x), n_columns)`` array, NaN rows where ``x`` is NaN."""
        x = np.asarray(x, dtype=float)
        out = np.full((x.size, self.n_columns), np.nan)
        ok = np.isfinite(x)
        if ok.any():
            out[ok] = self._evaluate(x[ok])
        return out

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        if self.func == "poly":
            if self.raw:
                return x[:, None] ** np.arange(1, self.degree + 1)
            return _poly_recurrence(x, self.alpha, self.norm2)
        if self.func == "ns":
            return _ns(x, self.knots, self.boundary, self.intercept)
        return _bs(x, self.knots, self.boundary, self.degree, self.intercept)

    def r_call(self, x: str) -> str:
        """The R call that rebuilds this exact basis on new data (knots written out).

        >>> BasisState("ns", 3, (3.0, 6.0), (0.0, 9.0)).r_call("Days")
        'ns(Days, knots = c(3, 6), Boundary.knots = c(0, 9))'
        """
        if self.func == "poly":
            if self.raw:
                return f"poly({x}, {self.degree}, raw = TRUE)"
            return (
                f"poly({x}, {self.degree}, coefs = list(alpha = {_r_vector(self.alpha)}, "
                f"norm2 = {_r_vector(self.norm2)}))"
            )
        parts = [x, f"knots = {_r_vector(self.knots)}"]
        if self.func == "bs":
            parts.append(f"degree = {self.degree}")
        parts.append(f"Boundary.knots = {_r_vector(self.boundary)}")
        if self.intercept:
            parts.append("intercept = TRUE")
        return f"{self.func}({', '.join(parts)})"


def _r_vector(values: tuple[float, ...]) -> str:
    if not values:
        return "numeric(0)"
    return f"c({', '.join(r_number(float(v)) for v in values)})"


# --------------------------------------------------------------------------- learning
def learn_basis(call: BasisCall, x: np.ndarray, label: str) -> BasisState:
    """Learn a basis from the fitting values ``x`` (NaN ignored), as R's first call does.

    Raises
    ------
    DataError
        When the values cannot support the basis: constant values, fewer distinct values
        than the basis has columns, quantile knots that coincide, knots outside the range.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    distinct = np.unique(x)
    if distinct.size < 2:
        raise DataError(f"`{label}`: the values are all the same, so they have no shape to fit.")
    if call.func == "poly":
        return _learn_poly(call, x, distinct.size, label)
    boundary = call.boundary or (float(distinct[0]), float(distinct[-1]))
    if call.knots is not None:
        _check_given_knots(call.knots, boundary, label)
    knots = call.knots if call.knots is not None else _quantile_knots(call, x, boundary)
    state = BasisState(
        call.func, call.degree, tuple(float(k) for k in knots), boundary, call.intercept
    )
    _check_spline(state, distinct, label)
    return state


def _check_given_knots(knots: tuple, boundary: tuple[float, float], label: str) -> None:
    low, high = boundary
    outside = [k for k in knots if not low < k < high]
    if outside:
        raise DataError(
            f"`{label}`: the knot{'s' * (len(outside) > 1)} "
            f"{', '.join(f'{k:g}' for k in outside)} lie{'s' * (len(outside) == 1)} outside "
            f"the range of the data ({low:g} to {high:g}); put knots between the first and the "
            "last time, or give `Boundary.knots = c(low, high)` around them."
        )


def _quantile_knots(call: BasisCall, x: np.ndarray, boundary: tuple[float, float]) -> tuple:
    if call.df is None:
        return ()
    order = 4 if call.func == "ns" else call.degree + 1
    extra = 1 + int(call.intercept) if call.func == "ns" else order - 1 + int(call.intercept)
    n_knots = max(call.df - extra, 0)
    if n_knots == 0:
        return ()
    inside = x[(x >= boundary[0]) & (x <= boundary[1])]
    probs = np.linspace(0.0, 1.0, n_knots + 2)[1:-1]
    return tuple(np.quantile(inside, probs).tolist())  # linear = R's type 7


def _check_spline(state: BasisState, distinct: np.ndarray, label: str) -> None:
    n_cols = state.n_columns
    if n_cols > distinct.size - 1 + int(state.intercept):
        raise DataError(
            f"`{label}` has {n_cols} columns but the data have only {distinct.size} distinct "
            f"values of its variable; use fewer degrees of freedom (at most "
            f"{distinct.size - 1})."
        )
    low, high = state.boundary
    knots = np.asarray(state.knots)
    if knots.size and (np.any(np.diff(knots) <= 0) or knots[0] <= low or knots[-1] >= high):
        raise DataError(
            f"`{label}`: the knots ({', '.join(f'{k:g}' for k in knots)}) are not distinct and "
            f"strictly inside the boundary ({low:g}, {high:g}): many values are equal, so "
            "quantile knots coincide. Use fewer degrees of freedom or give the knots, e.g. "
            "`ns(time, knots = c(2, 5))`."
        )
    between = np.histogram(distinct, bins=np.concatenate([[low], knots, [high]]))[0]
    if (between == 0).any():
        raise DataError(
            f"`{label}`: no observed value lies between two of its knots, so a coefficient "
            "cannot be estimated; move the knots or use fewer degrees of freedom."
        )


def _learn_poly(call: BasisCall, x: np.ndarray, n_distinct: int, label: str) -> BasisState:
    if call.degree >= n_distinct:
        raise DataError(
            f"`{label}`: the degree ({call.degree}) must be less than the number of distinct "
            f"values ({n_distinct})."
        )
    if call.raw:
        return BasisState("poly", call.degree, raw=True)
    alpha, norm2 = _poly_coefficients(x, call.degree)
    return BasisState("poly", call.degree, alpha=alpha, norm2=norm2)


def _poly_coefficients(x: np.ndarray, degree: int) -> tuple[tuple, tuple]:
    """R's ``poly`` coefficients: QR of the centred Vandermonde matrix."""
    xbar = float(x.mean())
    xc = x - xbar
    vander = xc[:, None] ** np.arange(degree + 1)
    q, r = np.linalg.qr(vander)
    z = q * np.diag(r)  # sign-free: column j is the monic orthogonal polynomial j
    norm2 = (z**2).sum(axis=0)
    alpha = (xc @ z**2) / norm2 + xbar
    return tuple(alpha[:degree].tolist()), (1.0,) + tuple(norm2.tolist())


# --------------------------------------------------------------------------- evaluation
def spline_design(knots: np.ndarray, x: np.ndarray, order: int, deriv: int = 0) -> np.ndarray:
    """R's ``splineDesign(knots, x, ord, derivs)``: every B-spline (or its derivative) at x."""
    n_basis = len(knots) - order
    spline = BSpline(knots, np.eye(n_basis), order - 1, extrapolate=True)
    return spline(x, nu=deriv) if deriv else spline(x)


def _ns(x: np.ndarray, knots: tuple, boundary: tuple, intercept: bool) -> np.ndarray:
    all_knots = np.sort(np.concatenate([np.repeat(boundary, 4), knots]))
    basis = _linear_beyond(x, all_knots, boundary)
    const = spline_design(all_knots, np.asarray(boundary, dtype=float), 4, deriv=2)
    if not intercept:
        basis, const = basis[:, 1:], const[:, 1:]
    q, _ = qr(const.T)
    return basis @ q[:, 2:]


def _linear_beyond(x: np.ndarray, all_knots: np.ndarray, boundary: tuple) -> np.ndarray:
    """Cubic B-splines inside the boundary knots, continued linearly beyond them (R's ns)."""
    low, high = boundary
    out = np.empty((x.size, len(all_knots) - 4))
    inside = (x >= low) & (x <= high)
    out[inside] = spline_design(all_knots, x[inside], 4)
    for pivot, side in ((low, x < low), (high, x > high)):
        if side.any():
            at = np.array([pivot])
            value = spline_design(all_knots, at, 4)
            slope = spline_design(all_knots, at, 4, deriv=1)
            out[side] = value + (x[side] - pivot)[:, None] * slope
    return out


def _bs(x: np.ndarray, knots: tuple, boundary: tuple, degree: int, intercept: bool) -> np.ndarray:
    order = degree + 1
    all_knots = np.sort(np.concatenate([np.repeat(boundary, order), knots]))
    low, high = boundary
    out = np.empty((x.size, len(all_knots) - order))
    inside = (x >= low) & (x <= high)
    out[inside] = spline_design(all_knots, x[inside], order)
    pivots = (
        ((1 - _BS_PIVOT) * low + _BS_PIVOT * all_knots[order], x < low),
        ((1 - _BS_PIVOT) * high + _BS_PIVOT * all_knots[-order - 1], x > high),
    )
    for pivot, side in pivots:
        if side.any():  # Taylor polynomial of degree d around the pivot
            at = np.array([pivot])
            powers = (x[side] - pivot)[:, None] ** np.arange(order)
            factorial = np.cumprod(np.r_[1.0, np.arange(1, order)])
            derivs = np.vstack([spline_design(all_knots, at, order, deriv=d) for d in range(order)])
            out[side] = powers @ (derivs / factorial[:, None])
    return out if intercept else out[:, 1:]


def _poly_recurrence(x: np.ndarray, alpha: tuple, norm2: tuple) -> np.ndarray:
    degree = len(alpha)
    z = np.ones((x.size, degree + 1))
    z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        z[:, i + 1] = (x - alpha[i]) * z[:, i] - (norm2[i + 1] / norm2[i]) * z[:, i - 1]
    return z[:, 1:] / np.sqrt(np.asarray(norm2[2:]))


def fitting_poly(x: np.ndarray, state: BasisState) -> np.ndarray:
    """``poly`` on the fitting values exactly as R computes it there (through the QR)."""
    ok = np.isfinite(x)
    out = np.full((x.size, state.degree), np.nan)
    xc = x[ok] - x[ok].mean()
    q, r = np.linalg.qr(xc[:, None] ** np.arange(state.degree + 1))
    z = q * np.diag(r)
    out[ok] = z[:, 1:] / np.sqrt(np.asarray(state.norm2[2:]))
    return out

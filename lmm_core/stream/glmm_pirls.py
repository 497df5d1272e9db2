"""Penalized IRLS of a GLMM with one streamed pass over the rows per iteration.

The in-memory criterion (:class:`lmm_core.glmm.pirls.GLMMCriterion`) keeps the rows. Here the
rows are streamed (:class:`~lmm_core.stream.sources.DuckDBEngine`) and a *pass* at a point
``(theta, beta, u)`` evaluates, batch by batch with the plan's recipes,
``eta = offset + X beta + Z Lambda u``, ``mu = g^-1(eta)``, the deviance residuals
``sum d_i(y_i, mu_i)``, the working weights ``W = w (dmu/deta)^2 / V(mu)`` and the working
residual ``(y - mu) / (dmu/deta)``, and sums the *weighted* cross-products of ``[Z X z]``
(rows times ``sqrt(W)``; :func:`~lmm_core.model.cross_products.local_cross_products`) with the
working response ``z = eta - offset + resid`` (``beta`` free, lme4's first stage) or, with
``beta`` held fixed, of ``[Z z - X beta]`` alone. From those blocks
:meth:`ProfiledDeviance.from_cross_products` solves the penalized weighted least-squares step
``min ||W^1/2 (z - X beta - Z Lambda u)||^2 + ||u||^2`` exactly as the in-memory factor
(``L_Z L_Z' = Lambda' Z' W Z Lambda + I``; ``log |L_Z|^2`` is its ``ldl2``).

The iteration is the in-memory one (:meth:`GLMMCriterion.pirls`): step-halving until the
penalized deviance ``sum d_i + ||u||^2`` does not increase, stopping when a full step lowers it
by less than ``1e-11`` (relative) and moves no ``u`` by more than ``1e-6``. The pass that
evaluates a candidate point also sums the blocks there, so an accepted step costs one pass and
the last pass gives the factor at the mode. A non-canonical link (probit, cloglog) takes
Fisher-scoring steps (the in-memory fit takes Newton's): the same mode, more passes
(``1e-9`` on the step). Each PIRLS starts from the previous one's ``u`` (and, in the first
stage, ``beta``): the warm start that keeps the passes few.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import _check_finite
from lmm_core.design.model_matrix import Evaluator
from lmm_core.design.reterms import amalgamate, split_theta
from lmm_core.errors import DataError, ModelError
from lmm_core.formula.grammar import Name
from lmm_core.formula.quoting import deparse
from lmm_core.glmm.family import DevianceSum, Family
from lmm_core.glmm.pirls import CANONICAL_STEP_TOL, MAX_HALVINGS, MAX_ITER, STEP_TOL, PIRLSFailure
from lmm_core.model.cross_products import BlockTotal, CrossProducts, local_cross_products
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.stream.batches import BatchBlocks, _qr_r, batch_design, finish


@dataclass(frozen=True)
class GLMMBatch:
    """One batch evaluated: ``X`` (every column), response, prior weights, offset, terms."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    offset: np.ndarray
    terms: list


def glmm_batch(plan, family: Family, frame: pd.DataFrame) -> GLMMBatch:
    """Evaluate a batch with the plan's recipes and check the response as in memory.

    Raises
    ------
    DataError
        Non-finite values, a binomial outcome outside 0/1, counts that are not whole
        numbers >= 0.
    """
    design, spec = plan.design, plan.spec
    if spec.cbind is not None:
        ev = Evaluator(frame, design.stats, new_data=True)
        s, f = (np.asarray(ev.variable(nd).values, float) for nd in spec.cbind)
        for v, nd, what in ((s, spec.cbind[0], "successes"), (f, spec.cbind[1], "failures")):
            _check_finite(deparse(nd), isinstance(nd, Name), v)
            _check_counts(v, deparse(nd), what)
        w = s + f
        y = np.divide(s, w, out=np.zeros_like(s), where=w > 0)
    else:
        y = np.asarray(design.response_values(frame), float)
        _check_finite(design.response, isinstance(spec.response, Name), y)
        w = np.ones(y.size)
        label = spec.response_label
        if family.name == "poisson":
            _check_counts(y, label, "counts")
        elif not np.all((y == 0) | (y == 1)):
            shown = ", ".join(f"{v:g}" for v in np.unique(y[(y != 0) & (y != 1)])[:4])
            raise DataError(
                f"The outcome `{label}` has values other than 0 and 1 ({shown}): a binomial "
                "model needs a 0/1 outcome or `cbind(successes, failures)`. For counts choose "
                "family='poisson'."
            )
    offset = np.zeros(y.size)
    if design.has_offset:
        offset = np.asarray(design.offset_values(frame), float)
        _check_finite("offset", False, offset)
    X, terms = batch_design(plan, frame)
    return GLMMBatch(X, y, w, offset, terms)


def _check_counts(values: np.ndarray, label: str, what: str) -> None:
    if (values < 0).any() or not np.allclose(values, np.round(values), rtol=0, atol=1e-8):
        raise DataError(
            f"`{label}` has values that are not whole numbers >= 0: {what} must be whole "
            "numbers >= 0 (for a continuous outcome use a linear mixed model)."
        )


@dataclass(frozen=True)
class PassResult:
    """What one pass returns: ``sum d_i`` at the point and the weighted blocks there."""

    drsum: float
    cp: CrossProducts


@dataclass(frozen=True)
class FirstPass:
    """The first pass (R's ``mustart``): the weighted blocks of the first step, with the
    unweighted ``R`` of ``X`` and column ranges (aliasing, constant random slopes), the root
    mean squares of the terms' columns (units of ``theta``) and the response totals."""

    blocks: BatchBlocks
    rms: list[np.ndarray]
    llsat: float
    n: int
    y_sum: float
    w_sum: float


class _FirstTotals:
    """The first pass's sums besides the blocks (:class:`FirstPass`)."""

    def __init__(self, reterms, family: Family) -> None:
        self.family = family
        self.r = None
        self.lo: list = []
        self.hi: list = []
        self.zsq = [np.zeros(t.n_columns) for t in reterms]
        self.llsat = self.y_sum = self.w_sum = 0.0
        self.n = 0

    def add(self, bt: GLMMBatch) -> None:
        rb = _qr_r(bt.X)
        self.r = rb if self.r is None else _qr_r(np.vstack([self.r, rb]))
        lo = [t.z.min(axis=0) for t in bt.terms]
        hi = [t.z.max(axis=0) for t in bt.terms]
        self.lo = (
            lo if not self.lo else [np.minimum(a, b) for a, b in zip(self.lo, lo, strict=True)]
        )
        self.hi = (
            hi if not self.hi else [np.maximum(a, b) for a, b in zip(self.hi, hi, strict=True)]
        )
        for k, t in enumerate(bt.terms):
            self.zsq[k] += np.sum(t.z * t.z, axis=0)
        self.llsat += self.family.saturated_loglik(bt.y, bt.w)
        self.y_sum += float(bt.w @ bt.y)
        self.w_sum += float(bt.w.sum())
        self.n += bt.y.size

    def result(self, cp: CrossProducts) -> FirstPass:
        rms = [np.sqrt(s / self.n) for s in self.zsq]
        rms = [np.where(np.isfinite(v) & (v > 0), v, 1.0) for v in rms]
        blocks = BatchBlocks(cp, self.r, tuple(self.lo), tuple(self.hi))
        return FirstPass(blocks, rms, self.llsat, self.n, self.y_sum, self.w_sum)


@dataclass(frozen=True)
class StreamState:
    """The conditional mode at one ``(theta, beta)`` (``u`` one ``(levels, S)`` per term)."""

    theta: np.ndarray
    beta: np.ndarray
    u: tuple[np.ndarray, ...]
    drsum: float
    ldl2: float
    iterations: int
    cp: CrossProducts
    l_x: np.ndarray | None = None

    @property
    def ussq(self) -> float:
        return _ussq(self.u)

    @property
    def lme4_deviance(self) -> float:
        """lme4's Laplace "deviance": ``sum d_i + ||u||^2 + log |L_Z|^2``."""
        return self.drsum + self.ussq + self.ldl2


def _ussq(u) -> float:
    return float(sum(np.sum(a * a) for a in u))


class StreamCriterion:
    """The Laplace criterion of a GLMM over a streamed table, with the attributes of
    :class:`~lmm_core.glmm.pirls.GLMMCriterion` that lme4's two-stage optimizer uses
    (``theta0``, ``lower``, ``theta_scale``, ``profiled``, ``pirls``, ``laplace_state``,
    ``minus2_loglik``).

    Parameters
    ----------
    plan
        Pass 1's :class:`~lmm_core.stream.plan.StreamPlan`.
    family
        Response distribution and link.
    batches
        ``() -> iterator of pandas batches`` of the rows used (one call per pass).
    on_pass
        ``on_pass(rows_done, pass_number, seconds_in_this_pass)`` after each batch
        (progress).
    """

    def __init__(
        self, plan, family: Family, batches: Callable, on_pass: Callable | None = None
    ) -> None:
        self.plan, self.family, self.batches = plan, family, batches
        self.on_pass = on_pass
        self.reterms = plan.reterms
        self.lower = np.concatenate([t.structure.lower for t in self.reterms])
        self.step_tol = CANONICAL_STEP_TOL if family.canonical else STEP_TOL
        self.n_passes = 0
        self.pass_seconds: list[float] = []
        self.n_pirls = 0
        self._warm_u = None
        self._warm_beta = None
        self.keep: np.ndarray | None = None

    # ------------------------------------------------------------------ passes
    def _lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        parts = split_theta(self.reterms, np.asarray(theta, float))
        return [t.structure.factor(th) for t, th in zip(self.reterms, parts, strict=True)]

    def _pass(self, theta, beta, u, free: bool, first: bool = False):
        """One pass over the rows at ``(theta, beta, u)`` (module docstring); ``first``:
        at R's ``mustart`` instead, with what :class:`FirstPass` holds."""
        t0 = time.perf_counter()
        fam, link = self.family, self.family.link
        if not first:
            bs = [ui @ lam.T for ui, lam in zip(u, self._lambdas(theta), strict=True)]
        total, drsum, done = BlockTotal(), 0.0, 0
        extra = _FirstTotals(self.reterms, fam) if first else None
        for frame in self.batches():
            bt = glmm_batch(self.plan, fam, frame)
            X = bt.X if first else bt.X[:, self.keep]
            if first:
                mu0 = (bt.w * bt.y + 0.5) / (bt.w + 1.0) if fam.name == "binomial" else bt.y + 0.1
                eta = link.link(mu0)
                extra.add(bt)
            else:
                lin = bt.offset + X @ beta
                eta = lin.copy()
                for t, b in zip(bt.terms, bs, strict=True):
                    eta += np.einsum("ij,ij->i", t.z, b[t.codes])
            mu = link.linkinv(eta)
            if not first:
                drsum += DevianceSum(fam, bt.y, bt.w)(mu)
            mu_eta = link.mu_eta(eta)
            wts = bt.w * mu_eta * mu_eta / fam.variance(mu)
            work = eta - bt.offset + (bt.y - mu) / mu_eta
            if not free:
                work, X = eta - lin + (bt.y - mu) / mu_eta, X[:, :0]
            sw = np.sqrt(wts)
            merged = amalgamate(tuple(replace(t, z=t.z * sw[:, None]) for t in bt.terms))[0]
            cp, seen = local_cross_products(X * sw[:, None], work * sw, merged)
            total.add(cp, seen, merged[0].n_levels)
            done += len(frame)
            if self.on_pass is not None:
                self.on_pass(done, self.n_passes + 1, time.perf_counter() - t0)
        self.n_passes += 1
        self.pass_seconds.append(time.perf_counter() - t0)
        if done != self.plan.n_used:
            raise ModelError("The table changed between two passes; fit again.")
        return extra.result(total.total()) if first else PassResult(drsum, total.total())

    def start(self) -> FirstPass:
        """The first pass; sets the kept columns of ``X``, the units and start of ``theta``
        and the first-stage starting point (one weighted least-squares step from
        ``mustart``, as the in-memory fit)."""
        first = self._pass(None, None, None, free=True, first=True)
        cp, keep, aliased, notes = finish(self.plan, first.blocks)
        self.keep, self.aliased, self.notes = keep, aliased, notes
        self.scale_units = first.rms
        self.theta_scale = np.concatenate(
            [t.structure.theta_units(r) for t, r in zip(self.reterms, first.rms, strict=True)]
        )
        start = np.concatenate([t.structure.start for t in self.reterms])
        safe = np.where(self.theta_scale > 0, self.theta_scale, 1.0)
        self.theta0 = start / safe
        self.llsat = first.llsat
        self._first_cp = cp
        return first

    def _solver(self, cp: CrossProducts) -> ProfiledDeviance:
        return ProfiledDeviance.from_cross_products(cp, self.reterms, False, self.theta_scale)

    # ------------------------------------------------------------------ PIRLS
    def pirls(self, theta: np.ndarray, beta: np.ndarray | None, u0=None) -> StreamState:
        """The conditional mode at ``theta`` and ``beta`` (``None``: ``beta`` free too),
        as :meth:`GLMMCriterion.pirls`, one pass per accepted step.

        Raises
        ------
        PIRLSFailure
            If no step lowers the penalized deviance (or a factorization fails).
        """
        theta = np.asarray(theta, float)
        free = beta is None
        if free and self._warm_beta is None:
            sol = self._solver(self._first_cp).solve(theta)
            u, b = tuple(sol.u), sol.beta
        elif free:
            u, b = self._warm_u, self._warm_beta.copy()
        else:
            b = np.asarray(beta, float)
            u = tuple(np.zeros((t.n_levels, t.n_columns)) for t in self.reterms)
            u = u if u0 is None else u0
        res = self._pass(theta, b, u, free)
        pdev = res.drsum + _ussq(u)
        tol = 1e-11 * max(pdev, 10.0)
        done = False
        for it in range(MAX_ITER):  # noqa: B007  (it: the iterations reported)
            if done:
                break
            sol = self._solver(res.cp).solve(theta)
            u_new, b_new = tuple(sol.u), (sol.beta if free else b)
            u_old = u
            u, b, res, new, step = self._halve(theta, u, b, u_new, b_new, pdev, res, free)
            moved = max(
                (float(np.max(np.abs(a - c))) for a, c in zip(u_new, u_old, strict=True)), default=0
            )
            done = step == 1.0 and pdev - new < tol and moved < self.step_tol
            pdev = new
        else:
            raise PIRLSFailure("penalized IRLS did not converge")
        fac = self._solver(res.cp).factor(theta)
        self.n_pirls += 1
        if free:
            self._warm_u, self._warm_beta = u, b.copy()
        l_x = fac.l33[:-1, :-1] if free else None
        return StreamState(theta, b, u, pdev - _ussq(u), fac.ldl2, it, res.cp, l_x)

    def _halve(self, theta, u, b, u_new, b_new, pdev, res, free):
        """Step-halving towards ``(u_new, b_new)`` (one pass per candidate)."""
        step = 1.0
        for _ in range(MAX_HALVINGS):
            uu = tuple(a + step * (c - a) for a, c in zip(u, u_new, strict=True))
            bb = b + step * (b_new - b)
            out = self._pass(theta, bb, uu, free)
            new = out.drsum + _ussq(uu)
            if np.isfinite(new) and new <= pdev + 1e-13 * abs(pdev):
                return uu, bb, out, new, step
            step *= 0.5
        moved = max(float(np.max(np.abs(a - c))) for a, c in zip(u_new, u, strict=True))
        if np.isfinite(pdev) and moved < 1e-6:
            return u, b, res, pdev, 1.0  # at the mode within rounding
        raise PIRLSFailure("PIRLS step-halvings failed to reduce the penalized deviance")

    # ------------------------------------------------------------------ criteria
    def profiled(self, theta: np.ndarray) -> float:
        """lme4's first-stage criterion at ``theta`` (``beta`` from PIRLS)."""
        return self.pirls(theta, None).lme4_deviance

    def laplace_state(self, theta: np.ndarray, beta: np.ndarray) -> StreamState:
        """The mode at ``(theta, beta)``, warm-started from the previous one."""
        try:
            state = self.pirls(theta, beta, self._warm_u)
        except PIRLSFailure:
            state = self.pirls(theta, beta, None)
        self._warm_u = state.u
        return state

    def minus2_loglik(self, state: StreamState) -> float:
        """``-2 log L`` (Laplace) with every constant."""
        return state.lme4_deviance - 2.0 * self.llsat

    def beta_factor(self, state: StreamState) -> np.ndarray:
        """``L_X`` at the state's working weights (one more pass, with ``X``)."""
        res = self._pass(state.theta, state.beta, state.u, free=True)
        return self._solver(res.cp).factor(state.theta).l33[:-1, :-1]

    def conditional(self, state: StreamState):
        """Conditional modes ``b = lambda u`` and covariances ``lambda A_ZZ^-1 lambda'`` per
        term (lme4's ``condVar``), from the blocks at the mode."""
        dev = self._solver(state.cp)
        covs = dev.conditional_covariances(dev.factor(state.theta), 1.0)
        lams = self._lambdas(state.theta)
        b = tuple(ui @ lam.T for ui, lam in zip(state.u, lams, strict=True))
        return b, tuple(covs)


__all__ = ["GLMMBatch", "StreamCriterion", "StreamState", "glmm_batch"]

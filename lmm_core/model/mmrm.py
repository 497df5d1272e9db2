"""Mixed models for repeated measures (MMRM): a structured covariance of each subject's
visits and no random effects, as R's ``mmrm`` and SAS ``PROC MIXED ... REPEATED``.

Model: ``y_i ~ N(X_i beta, Sigma_i)``, where ``Sigma_i`` is the rows and columns of the
visits subject ``i`` has in the covariance ``Sigma_g(theta)`` of its group
(:mod:`lmm_core.design.residual_structures`). With ``V = blockdiag(Sigma_i)``,

    beta(theta) = (X' V^-1 X)^-1 X' V^-1 y,    r = y - X beta,
    -2 l_ML   = sum_i log|Sigma_i| + r' V^-1 r + n log(2 pi),
    -2 l_REML = -2 l_ML + log|X' V^-1 X| - p log(2 pi).

Subjects with the same group and the same set of visits form a *pattern* sharing
``Sigma_p = L_p L_p'`` and ``W_p = Sigma_p^-1``. A pattern with many subjects (``n_p >= t p``)
is kept as its summed cross-products ``sum_i X_i (x) X_i``, ``sum_i X_i (x) y_i``,
``sum_i y_i y_i'`` (its cost no longer grows with its subjects); a smaller one keeps its
subjects' rows, whitened by ``L_p^-1`` at each evaluation (one ``X~' X~`` product).

Gradient. With ``S_p = sum_i r_i r_i'`` and, for REML, ``B_p = sum_i X_i (X'V^-1X)^-1 X_i'``
(both summed over the pattern's subjects), ``beta`` being profiled out,

    d(-2 l) / dSigma_p = n_p W_p - W_p (S_p + B_p) W_p        (ML: without ``B_p``),

added into the group's ``Sigma_g`` at the pattern's visits and carried to ``theta`` by the
analytic ``dSigma_g / dtheta`` of the structure. Fisher scoring uses the information
``I_lm = sum_p n_p tr(W_p dSigma_l W_p dSigma_m)`` (the expected Hessian of ``-2 l_ML``; an
approximation for REML, where the line search keeps every step downhill), from moment
estimates of ``Sigma`` (pairwise products of OLS residuals) projected on the structure; then
Newton steps on the exact Hessian (:mod:`lmm_core.model.mmrm_hessian`), which also gives the
covariance of ``theta`` for Satterthwaite's df (:mod:`lmm_core.model.mmrm_results`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize

from lmm_core.design.build import Design
from lmm_core.design.residual import ResidualTerm
from lmm_core.design.residual_structures import SPATIAL, VisitCovariance
from lmm_core.errors import ModelError
from lmm_core.model.mmrm_hessian import hessian_and_xtvx_jacobian

LOG_2PI = float(np.log(2.0 * np.pi))
_FAILURES = (linalg.LinAlgError, np.linalg.LinAlgError, ValueError, FloatingPointError)


@dataclass(frozen=True)
class Pattern:
    """Subjects of one group with the same visits: their rows (``X``: ``(n, t, p)``, ``y``:
    ``(n, t)``, in visit order)."""

    group: int
    visits: np.ndarray  # visit indices, in visit order
    X: np.ndarray
    y: np.ndarray

    @property
    def n(self) -> int:
        return len(self.y)


@dataclass
class PatternSums:
    """One pattern's subjects kept only as their summed products (what a streamed fit
    accumulates): ``n`` subjects, ``xx[j, k] = sum_i x_ij x_ik'`` ``(t, t, p, p)``,
    ``xy[j, k] = sum_i x_ij y_ik`` ``(t, t, p)`` and ``yy = sum_i y_i y_i'`` ``(t, t)``."""

    group: int
    visits: np.ndarray
    n: int
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray

    @classmethod
    def of(cls, pattern: Pattern) -> PatternSums:
        """The sums of a pattern's rows (two matrix products of the ``(n, t p)`` rows)."""
        n, t, p = pattern.X.shape
        flat = pattern.X.reshape(n, t * p)
        xx = (flat.T @ flat).reshape(t, p, t, p).transpose(0, 2, 1, 3)
        xy = (flat.T @ pattern.y).reshape(t, p, t).transpose(0, 2, 1)
        return cls(pattern.group, pattern.visits, n, np.ascontiguousarray(xx),
                   np.ascontiguousarray(xy), pattern.y.T @ pattern.y)  # fmt: skip

    def __iadd__(self, other: PatternSums) -> PatternSums:
        self.n += other.n
        self.xx += other.xx
        self.xy += other.xy
        self.yy += other.yy
        return self


def patterns(design: Design) -> list[Pattern]:
    """Group the subjects by (group, visits)."""
    res = design.residual
    assert res is not None
    order = np.lexsort((res.visit_codes, res.subject_codes))
    subj, vis = res.subject_codes[order], res.visit_codes[order]
    X, y, grp = design.X[order], design.y[order], res.group_codes[order]
    starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
    counts = np.diff(np.r_[starts, len(subj)])
    keys = _pattern_keys(vis, grp, starts, counts)
    by_key = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(keys[by_key]) != 0, True])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        members = by_key[a:b]
        first, t = starts[members[0]], int(counts[members[0]])
        idx = starts[members][:, None] + np.arange(t)
        out.append(Pattern(int(grp[first]), vis[first : first + t].copy(), X[idx], y[idx]))
    return out


def _pattern_keys(vis, grp, starts, counts) -> np.ndarray:
    """A code per subject, equal for subjects of the same group with the same visits (a
    bit mask of the visits when there are fewer than 63, else the visit tuples)."""
    if vis.size and int(vis.max()) < 63:
        mask = np.bitwise_or.reduceat(np.left_shift(1, vis.astype(np.int64)), starts)
        pairs = np.column_stack([grp[starts], mask])
        return np.unique(pairs, axis=0, return_inverse=True)[1].ravel()
    seen: dict[tuple, int] = {}
    ends = starts + counts
    return np.array(
        [
            seen.setdefault((int(grp[a]), tuple(vis[a:b].tolist())), len(seen))
            for a, b in zip(starts, ends, strict=True)
        ],
        dtype=np.int64,
    )


@dataclass
class Evaluation:
    """Everything the criterion computes at one ``theta``."""

    objective: float
    beta: np.ndarray
    xtvx: np.ndarray  # X' V^-1 X


class _Batch:
    """Patterns with ``t`` visits, stacked: one batched factorization per evaluation."""

    def __init__(self, pats: list[Pattern]):
        self.groups = np.array([q.group for q in pats])
        self.visits = np.array([q.visits for q in pats])
        self.counts = np.array([q.n for q in pats], dtype=float)

    def blocks(self, sigmas: np.ndarray) -> np.ndarray:
        """``Sigma_p`` of every pattern: ``(k, t, t)``."""
        return sigmas[self.groups[:, None, None], self.visits[:, :, None], self.visits[:, None, :]]


class _CrossBatch(_Batch):
    """Patterns kept as summed cross-products: ``X'V^-1X = sum_jk W_jk A[j, k]``."""

    def __init__(self, sums: list[PatternSums]):
        """The batch of patterns (all with ``t`` visits) given as their summed products."""
        self.groups = np.array([s.group for s in sums])
        self.visits = np.array([s.visits for s in sums])
        self.counts = np.array([s.n for s in sums], dtype=float)
        self.t, self.p = self.visits.shape[1], sums[0].xy.shape[-1]
        self.xx = np.concatenate([s.xx.reshape(-1, self.p * self.p) for s in sums])
        self.xy = np.concatenate([s.xy.reshape(-1, self.p) for s in sums])
        self.yy = np.concatenate([s.yy.reshape(-1) for s in sums])

    def forward(self, inv: np.ndarray, chol: np.ndarray) -> tuple:
        flat = inv.reshape(-1)
        return flat @ self.xx, flat @ self.xy, float(flat @ self.yy), None

    def sigma_gradient(self, inv, chol, cache, beta, minv) -> np.ndarray:
        """``sum_i (W - W (r_i r_i' + X_i M^-1 X_i') W)`` per pattern (``minv`` None: ML)."""
        k, t = len(self.counts), self.t
        fit_y = (self.xy @ beta).reshape(k, t, t)  # sum_i (X_i beta)_j y_ik
        quad = self.xx @ np.outer(beta, beta).reshape(-1)
        s = self.yy - fit_y.reshape(-1) - fit_y.transpose(0, 2, 1).reshape(-1) + quad
        if minv is not None:
            s = s + self.xx @ minv.reshape(-1)
        s = s.reshape(k, t, t)
        return self.counts[:, None, None] * inv - inv @ s @ inv


class _RowBatch(_Batch):
    """Patterns kept as their subjects' rows, whitened by ``L_p^-1`` at each evaluation."""

    def __init__(self, pats: list[Pattern], p: int):
        super().__init__(pats)
        self.member = np.repeat(np.arange(len(pats)), [q.n for q in pats])
        self.starts = np.r_[0, np.cumsum([q.n for q in pats])[:-1]]
        self.X = np.concatenate([q.X for q in pats])  # (N, t, p)
        self.y = np.concatenate([q.y for q in pats])[:, :, None]  # (N, t, 1)
        self.p = p

    def forward(self, inv: np.ndarray, chol: np.ndarray) -> tuple:
        linv = np.linalg.inv(chol)
        xw = (linv[self.member] @ self.X).reshape(-1, self.p)
        yw = (linv[self.member] @ self.y).reshape(-1)
        return (xw.T @ xw).reshape(-1), xw.T @ yw, float(yw @ yw), (xw, yw, linv)

    def sigma_gradient(self, inv, chol, cache, beta, minv) -> np.ndarray:
        """As :meth:`_CrossBatch.sigma_gradient`, through the whitened rows:
        ``W S W = L^-T (sum_i r~_i r~_i') L^-1`` with ``r~ = L^-1 r``."""
        xw, yw, linv = cache
        n, t = len(self.member), self.X.shape[1]
        rw = (yw - xw @ beta).reshape(n, t)
        s = rw[:, :, None] * rw[:, None, :]
        if minv is not None:
            zw = (xw @ minv).reshape(n, t, self.p)
            s = s + zw @ xw.reshape(n, t, self.p).transpose(0, 2, 1)
        s = np.add.reduceat(s, self.starts, axis=0)
        return self.counts[:, None, None] * inv - linv.transpose(0, 2, 1) @ s @ linv


def _batches(pats: list[Pattern], p: int, crossproducts: bool | None) -> list[_Batch]:
    out: list[_Batch] = []
    for t in sorted({len(q.visits) for q in pats}):
        same = [q for q in pats if len(q.visits) == t]
        big = [crossproducts if crossproducts is not None else q.n >= t * p for q in same]
        if any(big):
            out.append(
                _CrossBatch([PatternSums.of(q) for q, b in zip(same, big, strict=True) if b])
            )
        if not all(big):
            out.append(_RowBatch([q for q, b in zip(same, big, strict=True) if not b], p))
    return out


@dataclass
class _State:
    """One forward pass: the factorizations, kept for the gradient."""

    sigmas: np.ndarray
    parts: list[tuple]  # per batch: (inv, chol, cache)
    evaluation: Evaluation
    chol_x: tuple


class MMRMCriterion:
    """``-2`` times the (REML or ML) log-likelihood as a function of ``theta``.

    ``crossproducts``: keep every pattern as cross-products (True), as rows (False), or
    choose per pattern (None: cross-products when the pattern has ``n_p >= t p`` subjects).
    """

    def __init__(self, design: Design, reml: bool, crossproducts: bool | None = None):
        self.design = design
        self.reml = reml
        self.n, self.p = design.X.shape
        self.residual: ResidualTerm = design.residual  # type: ignore[assignment]
        self.batches = _batches(patterns(design), self.p, crossproducts)
        self._second_order: tuple[bytes, tuple[np.ndarray, np.ndarray]] | None = None

    @classmethod
    def from_sums(
        cls, residual: ResidualTerm, sums: list[PatternSums], n: int, reml: bool
    ) -> MMRMCriterion:
        """The criterion of ``n`` rows known only through their patterns' summed products
        (a streamed fit: :mod:`lmm_core.stream.mmrm`); every pattern is a cross-product
        batch, so an evaluation costs the same whatever the number of subjects."""
        self = cls.__new__(cls)
        self.design = None  # type: ignore[assignment]
        self.reml = reml
        self.n, self.p = int(n), int(sums[0].xy.shape[-1])
        self.residual = residual
        self.sums = sums
        lengths = sorted({len(q.visits) for q in sums})
        self.batches = [_CrossBatch([q for q in sums if len(q.visits) == t]) for t in lengths]
        self._second_order = None
        return self

    def start_covariances(self) -> list[np.ndarray]:
        """Each group's moment estimate of ``Sigma`` (:func:`moment_covariances`)."""
        if self.design is None:
            return summed_moment_covariances(self.residual, self.sums, self.n)
        return moment_covariances(self.design)

    def ols_sd(self) -> float:
        """Residual standard deviation of the least-squares fit (1 if it is zero)."""
        if self.design is None:
            beta, rss = _summed_ols(self.sums)
        else:
            X, y = self.design.X, self.design.y
            resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
            rss = float(resid @ resid)
        return float(np.sqrt(rss / max(self.n - self.p, 1))) or 1.0

    def within_subject_columns(self) -> np.ndarray:
        """Which columns of ``X`` take more than one value within some subject. From the
        sums: column ``a`` varies within the subjects of a pattern when
        ``sum_i (x_ija - x_ika)^2 = xx[j, j, a, a] + xx[k, k, a, a] - 2 xx[j, k, a, a] > 0``
        for two of its visits (exactly 0 for a constant column: the three sums add the same
        products in the same order)."""
        if self.design is not None:
            res = self.residual
            n = res.n_subjects
            X = self.design.X
            return np.array(
                [
                    len(np.unique(np.column_stack([X[:, a], res.subject_codes]), axis=0)) > n
                    for a in range(self.p)
                ]
            )
        within = np.zeros(self.p, dtype=bool)
        for q in self.sums:
            diag = np.einsum("jkaa->jka", q.xx)  # (t, t, p): sum_i x_ija x_ika
            d = np.einsum("jja->ja", diag)
            spread = d[:, None, :] + d[None, :, :] - 2.0 * diag
            within |= (spread > 1e-12 * (d[:, None, :] + d[None, :, :])).any(axis=(0, 1))
        return within

    def _forward(self, theta: np.ndarray) -> _State:
        sigmas = np.array(self.residual.matrices(theta))
        p = self.p
        xtvx, xtvy = np.zeros(p * p), np.zeros(p)
        ytvy = logdet = 0.0
        parts = []
        for b in self.batches:
            blocks = b.blocks(sigmas)
            chol = np.linalg.cholesky(blocks)
            inv = np.linalg.inv(blocks)
            logdet += 2.0 * float(b.counts @ np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1))
            a, c, d, cache = b.forward(inv, chol)
            xtvx, xtvy, ytvy = xtvx + a, xtvy + c, ytvy + d
            parts.append((inv, chol, cache))
        xtvx = xtvx.reshape(p, p)
        xtvx = (xtvx + xtvx.T) / 2.0
        chol_x = linalg.cho_factor(xtvx, lower=True)
        beta = linalg.cho_solve(chol_x, xtvy)
        objective = logdet + ytvy - float(beta @ xtvy) + self.n * LOG_2PI
        if self.reml:
            objective += 2.0 * np.sum(np.log(np.diag(chol_x[0]))) - p * LOG_2PI
        return _State(sigmas, parts, Evaluation(float(objective), beta, xtvx), chol_x)

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """The criterion, ``beta`` and ``X'V^-1X`` at ``theta``."""
        return self._forward(theta).evaluation

    def __call__(self, theta: np.ndarray) -> float:
        try:
            return self.evaluate(theta).objective
        except _FAILURES:
            return float("inf")

    def sigma_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The criterion and its derivative with respect to each group's ``Sigma_g``
        (``(groups, m, m)``, entries taken as free)."""
        state = self._forward(theta)
        beta = state.evaluation.beta
        minv = linalg.cho_solve(state.chol_x, np.eye(self.p)) if self.reml else None
        grad = np.zeros_like(state.sigmas)
        for b, (inv, chol, cache) in zip(self.batches, state.parts, strict=True):
            g = b.sigma_gradient(inv, chol, cache, beta, minv)
            np.add.at(
                grad, (b.groups[:, None, None], b.visits[:, :, None], b.visits[:, None, :]), g
            )
        return state.evaluation.objective, grad

    def _jacobians(self, theta: np.ndarray) -> list[np.ndarray]:
        k = self.residual.structure.n_theta
        st = self.residual.structure
        return [st.jacobian(theta[g * k : (g + 1) * k]) for g in range(len(self.residual.groups))]

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The criterion and its analytic gradient in ``theta``."""
        value, grad_sigma = self.sigma_gradient(theta)
        jac = self._jacobians(theta)
        return value, np.concatenate(
            [np.einsum("lij,ij->l", j, gs) for j, gs in zip(jac, grad_sigma, strict=True)]
        )

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """The analytic gradient of the criterion in ``theta``."""
        return self.value_and_gradient(theta)[1]

    def second_order(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exact Hessian of the criterion and ``P_k = -d(X'V^-1X)/dtheta_k`` at ``theta``
        (:mod:`lmm_core.model.mmrm_hessian`; the last one computed is kept)."""
        key = np.asarray(theta, dtype=float).tobytes()
        if self._second_order is None or self._second_order[0] != key:
            self._second_order = (key, hessian_and_xtvx_jacobian(self, theta))
        return self._second_order[1]

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """The exact Hessian of the criterion in ``theta``."""
        return self.second_order(theta)[0]

    def information(self, theta: np.ndarray) -> np.ndarray:
        """``I_lm = sum_p n_p tr(W_p dSigma_l W_p dSigma_m)``: the expected Hessian of
        ``-2 l_ML`` (block diagonal over the groups)."""
        jac = np.array(self._jacobians(theta))  # (groups, L, m, m)
        sigmas = np.array(self.residual.matrices(theta))
        n_g, n_l = jac.shape[:2]
        out = np.zeros((n_g, n_l, n_l))
        for b in self.batches:
            inv = np.linalg.inv(b.blocks(sigmas))
            rows = np.arange(len(b.counts))[:, None, None, None]
            dj = jac[b.groups][rows, np.arange(n_l)[None, :, None, None],
                               b.visits[:, None, :, None], b.visits[:, None, None, :]]  # fmt: skip
            a = inv[:, None] @ dj  # (k, L, t, t): W dSigma_l
            at = a.transpose(0, 1, 3, 2) * b.counts[:, None, None, None]
            for g in np.unique(b.groups):
                sel = b.groups == g
                x = a[sel].transpose(1, 0, 2, 3).reshape(n_l, -1)
                y = at[sel].transpose(1, 0, 2, 3).reshape(n_l, -1)
                out[g] += x @ y.T
        return linalg.block_diag(*out)


def moment_covariances(design: Design) -> list[np.ndarray]:
    """Each group's ``Sigma`` from OLS residuals: ``mean_i r_ij r_ik`` over the subjects
    having visits ``j`` and ``k`` (pairwise), made positive definite."""
    res = design.residual
    assert res is not None
    X, y = design.X, design.y
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    m = len(res.visits)
    wide = np.zeros((res.n_subjects, m))
    seen = np.zeros((res.n_subjects, m))
    wide[res.subject_codes, res.visit_codes] = resid
    seen[res.subject_codes, res.visit_codes] = 1.0
    group_of = np.zeros(res.n_subjects, dtype=int)
    group_of[res.subject_codes] = res.group_codes
    fallback = float(resid @ resid) / max(len(y) - X.shape[1], 1) or 1.0
    out = []
    for g in range(len(res.groups)):
        w, s = wide[group_of == g], seen[group_of == g]
        out.append(_positive_covariance(w.T @ w, s.T @ s, fallback))
    return out


def _summed_ols(sums: list[PatternSums]) -> tuple[np.ndarray, float]:
    """Least-squares ``beta`` and residual sum of squares from the patterns' sums
    (``X'X = sum_p sum_j xx_p[j, j]``, likewise ``X'y`` and ``y'y``)."""
    xtx = sum(np.einsum("jjab->ab", q.xx) for q in sums)
    xty = sum(np.einsum("jja->a", q.xy) for q in sums)
    yty = sum(float(np.trace(q.yy)) for q in sums)
    beta = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    return beta, max(yty - 2.0 * float(beta @ xty) + float(beta @ xtx @ beta), 0.0)


def summed_moment_covariances(
    residual: ResidualTerm, sums: list[PatternSums], n: int
) -> list[np.ndarray]:
    """:func:`moment_covariances` from the patterns' summed products: with the least-squares
    ``beta``, a pattern's ``sum_i r_i r_i' = yy - F - F' + sum_ab beta_a beta_b xx[., ., a, b]``
    (``F[j, k] = sum_i (x_ij' beta) y_ik``), added at its visits."""
    beta, rss = _summed_ols(sums)
    m = len(residual.visits)
    products = np.zeros((len(residual.groups), m, m))
    counts = np.zeros_like(products)
    for q in sums:
        fit_y = q.xy @ beta
        s = q.yy - fit_y - fit_y.T + np.einsum("jkab,a,b->jk", q.xx, beta, beta)
        idx = (q.group, q.visits[:, None], q.visits[None, :])
        products[idx] += s
        counts[idx] += q.n
    p = sums[0].xy.shape[-1]
    fallback = rss / max(n - p, 1) or 1.0
    return [_positive_covariance(a, c, fallback) for a, c in zip(products, counts, strict=True)]


def _positive_covariance(products: np.ndarray, counts: np.ndarray, fallback: float) -> np.ndarray:
    """``products / counts`` (pairwise means of residual products) made positive definite:
    variances ``<= 0`` or unseen set to ``fallback``, correlation eigenvalues floored at 0.05."""
    cov = np.where(counts > 0, products / np.maximum(counts, 1.0), 0.0)
    var = np.diag(cov).copy()
    var[~(var > 0)] = fallback
    sd = np.sqrt(var)
    corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    vals, vecs = np.linalg.eigh(np.clip(corr, -1.0, 1.0))
    corr = (vecs * np.maximum(vals, 0.05)) @ vecs.T
    corr = corr / np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    return corr * np.outer(sd, sd)


def structure_start(structure: VisitCovariance, sigma: np.ndarray) -> np.ndarray:
    """A ``theta`` whose ``Sigma(theta)`` is close to ``sigma``: ``us`` exactly (its Cholesky
    factor); otherwise the standard deviations (or their mean) and the mean correlation
    between neighbouring visits."""
    m = structure.m
    if structure.kind == "us":
        chol = np.linalg.cholesky(sigma)
        d = np.diag(chol)
        return np.concatenate([np.log(d), (chol / d[:, None])[np.tril_indices(m, -1)]])
    sd = np.sqrt(np.diag(sigma))
    theta = structure.start(1.0)
    theta[: structure.n_sd] = np.log(sd) if structure.n_sd == m else np.log(np.mean(sd))
    corr = sigma / np.outer(sd, sd)
    near = np.clip(np.diag(corr, 1), -0.95, 0.95)
    rest = theta[structure.n_sd :]
    if structure.kind in ("ar1", "ar1h"):
        rest[0] = np.arctanh(np.mean(near))
    elif structure.kind in ("cs", "csh"):
        a = 1.0 / (m - 1)
        rho = np.clip(np.mean(corr[np.triu_indices(m, 1)]), -a + 1e-3, 0.95)
        rest[0] = np.log((rho + a) / (1.0 - rho))  # the sigmoid's inverse
    elif structure.kind in ("ad", "adh"):
        rest[:] = np.arctanh(near)
    else:  # toep, toeph: the lag-1 partial autocorrelation
        rest[0] = np.arctanh(np.mean(near))
    return theta


def hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar ``f`` at ``x`` (``2 k^2`` evaluations)."""
    k = len(x)
    h = np.full(k, step)
    f0 = f(x)
    out = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        out[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            out[i, j] = out[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h[i] * h[j])
    return out


def gradient(f, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of a scalar ``f``."""
    out = np.empty(len(x))
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = step
        out[i] = (f(x + e) - f(x - e)) / (2 * step)
    return out


def gradient_hessian(grad, x: np.ndarray, g0: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian from forward differences of an analytic gradient ``grad`` (``k`` gradients;
    ``g0 = grad(x)``), symmetrized."""
    cols = []
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = step
        cols.append((grad(x + e) - g0) / step)
    out = np.array(cols)
    return (out + out.T) / 2.0


@dataclass
class MMRMOptimum:
    """Where the optimizer ended and how it got there."""

    theta: np.ndarray
    objective: float
    hessian: np.ndarray
    converged: bool
    n_evals: int
    messages: list[str] = field(default_factory=list)


class _Counted:
    """The criterion with its gradient, counting evaluations; ``inf`` where it fails."""

    def __init__(self, crit: MMRMCriterion):
        self.crit = crit
        self.count = 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.count += 1
        try:
            value, grad = self.crit.value_and_gradient(theta)
        except _FAILURES:
            return float("inf"), np.full(len(theta), np.nan)
        if not np.isfinite(value):
            return float("inf"), np.full(len(theta), np.nan)
        return value, grad

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self(theta)[1]

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """The exact Hessian, NaN where it cannot be evaluated."""
        try:
            return self.crit.hessian(theta)
        except _FAILURES:
            return np.full((len(theta), len(theta)), np.nan)


def _solve(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    try:
        return linalg.solve(matrix, vector, assume_a="sym")
    except (linalg.LinAlgError, ValueError):
        return np.linalg.lstsq(matrix, vector, rcond=None)[0]


def _scoring(fg: _Counted, theta: np.ndarray, tol: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Fisher scoring with backtracking until the decrement ``g' I^-1 g`` is below ``tol``."""
    fmin, grad = fg(theta)
    for _ in range(200):
        try:
            step = _solve(fg.crit.information(theta), grad)
        except _FAILURES:
            break
        decrement = float(grad @ step)
        if not decrement > tol:
            break
        for lam in 0.5 ** np.arange(20):
            f_new, g_new = fg(theta - lam * step)
            if f_new <= fmin - 1e-4 * lam * decrement:
                theta, fmin, grad = theta - lam * step, f_new, g_new
                break
        else:
            break
    return theta, fmin, grad


def _newton(fg: _Counted, theta, fmin, grad, hess) -> tuple[np.ndarray, float, np.ndarray]:
    """Newton steps on a fixed Hessian while they lower the criterion."""
    for _ in range(20):
        step = _solve(hess, grad)
        if not abs(float(grad @ step)) > 1e-12:
            break
        f_new, g_new = fg(theta - step)
        if not f_new <= fmin:
            break
        theta, fmin, grad = theta - step, f_new, g_new
    return theta, fmin, grad


def _start(crit: MMRMCriterion, fg: _Counted) -> np.ndarray:
    """Moment estimates projected on the structure; for ``sp_exp`` (and if they fail) the OLS
    residual standard deviation with the structure's own start."""
    res = crit.residual
    try:
        if res.structure.kind in SPATIAL:
            raise ValueError("sp_exp starts from its own start")
        sigmas = crit.start_covariances()
        theta = np.concatenate([structure_start(res.structure, s) for s in sigmas])
        if np.all(np.isfinite(theta)) and np.isfinite(fg(theta)[0]):
            return theta
    except _FAILURES:
        pass
    sd = crit.ols_sd()
    theta = np.concatenate([res.structure.start(sd) for _ in res.groups])
    if not np.isfinite(fg(theta)[0]):
        raise ModelError("The covariance of the visits cannot be evaluated at its start.")
    return theta


def optimize_mmrm(crit: MMRMCriterion) -> MMRMOptimum:
    """Fisher scoring from moment estimates, BFGS (analytic gradient) if scoring stalls, then
    Newton steps on the exact Hessian (:mod:`lmm_core.model.mmrm_hessian`)."""
    fg = _Counted(crit)
    # scoring converges linearly: it hands over to Newton's quadratic steps at a decrement of
    # 1e-6 (the -2 log-likelihood within about 5e-7 of its minimum)
    theta, fmin, grad = _scoring(fg, _start(crit, fg), tol=1e-6)
    hess = fg.hessian(theta)
    if not (np.all(np.isfinite(hess)) and abs(float(grad @ _solve(hess, grad))) < 1e-3):
        fit = optimize.minimize(fg, theta, jac=True, method="BFGS", options={"gtol": 1e-6})
        if fit.fun < fmin:
            theta, fmin, grad = fit.x, float(fit.fun), fit.jac
        hess = fg.hessian(theta)
    start = theta
    theta, fmin, grad = _newton(fg, theta, fmin, grad, hess)
    if np.max(np.abs(theta - start)) > 1e-3:
        hess = fg.hessian(theta)
    finite = bool(np.all(np.isfinite(hess)))
    converged = finite and bool(
        np.linalg.eigvalsh(hess).min() > 0 and abs(grad @ _solve(hess, grad)) < 1e-6
    )
    messages = (
        []
        if converged
        else [
            "The optimizer could not confirm the best covariance of the visits (the criterion is "
            "not flat, or not curved upward, at the end): try a simpler structure."
        ]
    )
    return MMRMOptimum(theta, fmin, hess, converged, fg.count, messages)

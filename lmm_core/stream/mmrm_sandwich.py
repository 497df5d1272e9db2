"""Empirical (sandwich) covariances of a streamed MMRM, by one more pass over the rows.

The sandwich of :mod:`lmm_core.inference.mmrm_sandwich` (mmrm's ``"Empirical"``,
``"Empirical-Bias-Reduced"``, ``"Empirical-Jackknife"``: ``CR0``, ``CR2``, ``CR3``) is a sum
over subjects, ``cov(beta) = Phi (sum_i z_i z_i') Phi`` with ``z_i = Xw_i' A_i rw_i``, and so
are the pieces of its Satterthwaite df for each coefficient ``l = e_k`` (Bell and McCaffrey,
as mmrm): with ``c = Phi l``, ``d_i = c' N_i c``, ``b_i = M_i c`` and ``K_ii = b_i' Phi b_i``,

    df = (sum_i d_i - sum_i K_ii)^2
         / (sum_i d_i^2 - 2 sum_i d_i K_ii + tr((Phi sum_i b_i b_i')^2)),

so the rows are streamed once more, sorted by subject (whole subjects per batch; on Spark
the partitions of whole subjects, each summing its own), at the estimates of the fit, and
only these sums are kept: ``p x p`` for the meat, ``p`` numbers for each of the four sums and
``p x p x p`` for ``sum_i b_i b_i'`` (one matrix per coefficient), whatever the number of
subjects. The per-subject ``M_i`` and ``N_i`` that the in-memory pieces keep are not: the df
is that of each coefficient.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from lmm_core.errors import LMMError, ModelError
from lmm_core.inference.mmrm_sandwich import SANDWICH_KINDS, _adjustment
from lmm_core.stream.mmrm_codes import row_codes, row_patterns, whole_subjects
from lmm_core.stream.mmrm_pass import SparkSubjects

_SUMS = ("meat", "d", "d2", "dk", "k", "bb", "n")


class SandwichSums:
    """The sums of one kind of sandwich over the subjects of the batches added."""

    def __init__(self, result, kind: str) -> None:
        self.kind = kind
        self.result = result
        self.phi = result.vcov_beta
        self.beta = result.beta
        p = len(self.beta)
        self.sigmas = result.design.residual.matrices(result.opt.theta)
        self.meat = np.zeros((p, p))
        self.d = np.zeros(p)
        self.d2 = np.zeros(p)
        self.dk = np.zeros(p)
        self.k = np.zeros(p)
        self.bb = np.zeros((p, p, p))
        self.n = 0

    def add(self, frame) -> None:
        """Add a batch of whole subjects (rows used only)."""
        design = self.result.design
        X = design.fixed_matrix(frame)
        y = design.response_values(frame)
        if design.has_offset:
            y = y - design.offset_values(frame)
        for pat in row_patterns(X, y, *row_codes(design.residual, frame)):
            self._add_pattern(pat)
        self.n += len(y)

    def _add_pattern(self, pat) -> None:
        """As :func:`lmm_core.inference.mmrm_sandwich.sandwich_pieces` on one pattern, then
        the df sums for every coefficient (module docstring)."""
        v, phi = pat.visits, self.phi
        chol = np.linalg.cholesky(self.sigmas[pat.group][v[:, None], v[None, :]])
        winv = np.linalg.inv(chol)
        xw = np.einsum("jk,nkb->njb", winv, pat.X)
        rw = (pat.y - pat.X @ self.beta) @ winv.T
        adj = _adjustment(np.einsum("nja,ab,nkb->njk", xw, phi, xw), self.kind)
        axw = adj @ xw
        z = np.einsum("nja,nj->na", axw, rw)
        self.meat += z.T @ z
        m = np.einsum("nja,njb->nab", xw, axw)
        nn = np.einsum("nja,njb->nab", axw, axw)
        d = np.einsum("ak,nab,bk->nk", phi, nn, phi)
        b = np.einsum("nab,bk->nak", m, phi)
        k = np.einsum("nak,ab,nbk->nk", b, phi, b)
        self.d += d.sum(axis=0)
        self.d2 += (d**2).sum(axis=0)
        self.dk += (d * k).sum(axis=0)
        self.k += k.sum(axis=0)
        self.bb += np.einsum("nak,nbk->kab", b, b)

    def state(self) -> dict[str, np.ndarray | int]:
        """The sums alone (what a Spark partition sends back)."""
        return {k: getattr(self, k) for k in _SUMS}

    def merge(self, state: dict) -> None:
        """Add another part's sums (a Spark partition's :meth:`state`)."""
        for k in _SUMS:
            setattr(self, k, getattr(self, k) + state[k])

    def vcov_and_df(self) -> tuple[np.ndarray, np.ndarray]:
        """The empirical covariance of ``beta`` and the df of each coefficient."""
        phi = self.phi
        vcov = phi @ self.meat @ phi
        pb = np.einsum("ab,kbc->kac", phi, self.bb)
        k_norm = np.einsum("kab,kba->k", pb, pb)
        trace = self.d - self.k
        squares = self.d2 - 2.0 * self.dk + k_norm
        return (vcov + vcov.T) / 2.0, trace**2 / squares


def streamed_sandwich(result, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(cov(beta), df per coefficient)`` of the ``kind`` sandwich of a streamed MMRM, from
    one more pass over its rows sorted by patient: DuckDB's sorted batches, or on Spark the
    partitions of whole patients (each sums its own, the driver adds them).

    Raises
    ------
    ModelError
        A fit without rows to stream again, or rows that changed since the fit.
    LMMError
        An unknown ``kind``; for CR2/CR3, a subject whose leverage is one.
    """
    if kind not in SANDWICH_KINDS:
        raise LMMError(f"Unknown sandwich {kind!r}; choose one of {', '.join(SANDWICH_KINDS)}.")
    rows = result.rows
    subject = result.design.residual.spec.subject.name
    sums = SandwichSums(result, kind)
    if isinstance(rows, SparkSubjects):
        light = replace(result, rows=None, derived={}, sample=None)
        for state in rows.run(partial(_partition_sums, light, kind, subject)):
            sums.merge(state)
    elif hasattr(rows, "order_by"):
        for frame in whole_subjects(replace(rows, order_by=(subject,))(), subject):
            sums.add(frame)
    else:
        raise ModelError(
            "An empirical covariance of a streamed MMRM streams the rows again, sorted by "
            "patient; this fit has no rows to stream (fit the files again), or use the "
            "model-based covariance."
        )
    if sums.n != result.nobs:
        raise ModelError("The table changed since the fit; fit again.")
    return sums.vcov_and_df()


def _partition_sums(result, kind: str, subject: str, frames) -> dict | None:
    """A Spark partition's sandwich sums (its patients are whole, in order)."""
    sums = SandwichSums(result, kind)
    for frame in whole_subjects(frames, subject):
        sums.add(frame)
    return sums.state() if sums.n else None


__all__ = ["SandwichSums", "streamed_sandwich"]

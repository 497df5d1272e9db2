"""The result of a streamed fit: :class:`LMMResult`'s names, from the blocks alone.

Everything that the blocks give is there under lme4's names, computed as for an in-memory
fit: ``fixef``, ``vcov``, ``std_errors``, ``theta``, ``sigma``, ``varcorr_table()``,
``ranef`` and ``ranef_sd`` (conditional modes and SDs from the blocked factor), ``objective``,
``loglik``, ``aic``, ``bic``, ``nobs``, ``ngroups``, ``predict(newdata)`` and
``fixef_table()`` with Satterthwaite's df (finite differences of the criterion, which
touches only the blocks; :mod:`lmm_core.inference.satterthwaite`). What needs the rows is
streamed again on demand: :meth:`StreamedLMMResult.iter_fitted` (fitted values and
residuals, batch by batch), for every row or for chosen groups (``group``/``levels``: the
patients shown in a chart). Kenward-Roger needs ``Z'V^{-1}Z`` from the rows and is refused.

The result pickles (a fit made in a child process travels back to the app): the rows it
streams again are a :class:`~lmm_core.stream.sources.RowStream` (the source and the SQL, a new
connection per pass), never an open connection.

:meth:`StreamedLMMResult.on_sample` gives the fit *seen on a sample of its groups* (the whole
trajectories of some patients, :func:`~lmm_core.stream.sources.sample_groups`): the same
estimates, with ``y``, ``fitted``, ``residuals`` and the random-effects terms of the sampled
rows only, so that code written for an in-memory fit (trajectories, shrinkage, residual plots)
works on the sample. :meth:`StreamedLMMResult.refit_ml` refits by maximum likelihood from the
blocks, with no pass over the rows (likelihood-ratio tests of REML fits).
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import term_matrix
from lmm_core.errors import DataError, ModelError
from lmm_core.inference.satterthwaite import varpar_derivatives
from lmm_core.model.fit import SINGULAR_MESSAGE, FitOptions, solution_fields
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.optimize import optimize_theta
from lmm_core.model.results import LMMResult
from lmm_core.model.summary import format_summary
from lmm_core.stream.sources import DuckDBEngine, RowStream

#: what ``rows`` may hold: a :class:`RowStream`, or any ``() -> iterator of batches``
Rows = Callable[..., Iterator[pd.DataFrame]]


def as_row_stream(rows: Rows | None) -> Rows | None:
    """``rows`` as a picklable :class:`RowStream` when it is the closure
    :func:`~lmm_core.stream.fit.fit_lmm_stream` writes (``lambda: engine.batches(plan.columns,
    plan.where, batch_size)``): its engine gives the source, its plan the columns and the
    condition. Anything else is returned as it is."""
    if rows is None or isinstance(rows, RowStream):
        return rows
    cells = [c.cell_contents for c in (getattr(rows, "__closure__", None) or ())]
    engines = [c for c in cells if isinstance(c, DuckDBEngine)]
    plans = [c for c in cells if hasattr(c, "columns") and hasattr(c, "where")]
    sizes = [c for c in cells if isinstance(c, int) and not isinstance(c, bool)]
    if len(engines) == 1 and len(plans) == 1 and len(sizes) == 1:
        return engines[0].row_stream(list(plans[0].columns), plans[0].where, sizes[0])
    return rows


def sample_rows(finite: np.ndarray, evaluated: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The rows of a sample that a streamed fit uses: ``finite`` (outcome, offset, ``X``) and
    every random-effects term's ``z`` finite, at levels the fit has seen (``evaluated``: each
    term's ``(codes, z)`` on the sample).

    Raises
    ------
    DataError
        No row used, or a used row at a level the fit has not seen (the table changed).
    """
    ok = finite.copy()
    for _, z in evaluated:
        ok &= np.isfinite(z).all(axis=1)
    complete = ok.copy()
    for codes, _ in evaluated:
        ok &= codes >= 0
    if not ok.any():
        raise DataError("No row of the sample is used by this model.")
    if (complete & ~ok).any():
        raise DataError(
            "The sample has groups the fit has not seen: the table changed since the fit; "
            "fit again."
        )
    return np.flatnonzero(ok)


def optimum(dev, start: np.ndarray | None, options: FitOptions) -> tuple:
    """Optimize ``theta`` of the profiled criterion ``dev`` from ``start`` and solve there:
    ``(opt, solution, conditional covariances, singular)``, where *singular* means some
    variance parameter, in the data's units (``dev.theta_scale``), is below
    ``options.singular_tol``."""
    with single_threaded_blas():
        opt = optimize_theta(dev, start, options.optimizer)
        sol = dev.solve(opt.final)
        cond_cov = dev.conditional_covariances(sol.factor, sol.sigma)
    diag = np.concatenate([t.structure.is_variance for t in dev.reterms])
    singular = bool(np.any(np.abs((sol.theta * dev.theta_scale)[diag]) < options.singular_tol))
    return opt, sol, cond_cov, singular


@dataclass(frozen=True)
class StreamedLMMResult(LMMResult):
    """A linear mixed model fitted by streaming (``fitted``/``residuals`` are empty).

    Attributes
    ----------
    n_obs
        Rows used.
    theta_units
        Units of ``theta`` read from the blocks (:func:`lmm_core.design.reterms.theta_scale`).
    timings
        Seconds of each stage (``pass1``, ``pass2``, ``optimize``, ``result``) and rows per
        second of pass 2 (``rows_per_second``).
    deviance
        The profiled criterion built from the blocks.
    rows
        The rows used, streamed again on demand (a :class:`RowStream`).
    whole
        For a view on a sample (:meth:`on_sample`): the fit of every row; else ``None``.
    sample
        For a view on a sample: the sampled rows (a table of whole groups).
    """

    n_obs: int = 0
    theta_units: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    timings: dict = field(default_factory=dict, compare=False)
    deviance: object = field(default=None, repr=False, compare=False)
    #: ``() -> iterator of pandas batches`` of the rows used, in the order of pass 2
    rows: Rows | None = field(default=None, repr=False, compare=False)
    whole: StreamedLMMResult | None = field(default=None, repr=False, compare=False)
    sample: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", as_row_stream(self.rows))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if isinstance(state.get("rows"), types.FunctionType):  # a closure does not pickle
            raise TypeError(
                "This streamed fit reads its rows through a function that cannot be pickled; "
                "give it a RowStream (DuckDBEngine.row_stream)."
            )
        return state

    @property
    def is_sample_view(self) -> bool:
        """Whether this is the fit seen on a sample of its groups (:meth:`on_sample`)."""
        return self.whole is not None

    @property
    def nobs(self) -> int:
        return int(self.n_obs)

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels of each grouping factor in the whole fit (also for a view on a sample)."""
        base = self.whole if self.whole is not None else self
        return {t.group: t.n_levels for t in base.reterms}

    @property
    def y(self) -> np.ndarray:
        if self.whole is not None:
            return self.design.y
        raise ModelError(
            "A streamed fit does not hold the rows: iter_fitted() streams the response, "
            "fitted values and residuals."
        )

    @property
    def is_singular(self) -> bool:
        diag = np.concatenate([t.structure.is_variance for t in self.design.reterms])
        phi = self.theta * self.theta_units
        return bool(np.any(np.abs(phi[diag]) < self.singular_tol))

    def fixef_table(
        self, df_method: str | None = "satterthwaite", level: float = 0.95
    ) -> pd.DataFrame:
        """As :meth:`LMMResult.fixef_table`; Satterthwaite's derivatives come from the blocks
        (the criterion is evaluated ``4 k^2 + 3`` times, ``k = len(theta)``)."""
        method = str(df_method).lower() if df_method is not None else None
        if method is not None and method.startswith("kenward"):
            raise ModelError(
                "Kenward-Roger needs the random-effects design row by row, which a streamed "
                "fit does not hold; use Satterthwaite (default) or Wald."
            )
        if method == "satterthwaite" and self.deviance is not None:
            self.derived.get(
                "satterthwaite", lambda: varpar_derivatives(self.deviance, self.theta, self.sigma)
            )
        return super().fixef_table(df_method, level)

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = True) -> np.ndarray:
        """Predictions on ``newdata`` (:meth:`LMMResult.predict`); for the rows of the fit,
        :meth:`iter_fitted` (a view on a sample: its rows without ``newdata``)."""
        if newdata is None and self.whole is None:
            raise ModelError(
                "A streamed fit does not hold its rows: give newdata, or stream the fitted "
                "values with iter_fitted()."
            )
        return super().predict(newdata, include_re)

    def iter_fitted(
        self,
        columns: tuple[str, ...] = (),
        *,
        group: str | None = None,
        levels: Sequence | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Stream the rows used again: per batch, ``columns`` of the table and ``response``,
        ``fitted`` (``X beta + Z b``) and ``residual`` (response minus offset minus fitted,
        as the in-memory ``residuals``).

        Parameters
        ----------
        columns
            Columns of the table to keep beside the three values.
        group, levels
            Only the rows whose column ``group`` is among ``levels`` (a few patients; the
            filter runs in SQL, so only their rows are read). Both or neither.
        """
        if self.whole is not None:
            yield from self.whole.iter_fitted(columns, group=group, levels=levels)
            return
        design = self.design
        for frame in self._batches(group, levels):
            if frame.empty:
                continue
            y = design.response_values(frame)
            if design.has_offset:
                y = y - design.offset_values(frame)
            fitted = design.fixed_matrix(frame) @ self.beta
            for t, b in zip(self.reterms, self.b, strict=True):
                codes, z = term_matrix(t, frame)
                fitted = fitted + np.einsum("ij,ij->i", z, b[codes])
            out = frame[list(columns)].copy() if columns else pd.DataFrame(index=frame.index)
            out["response"] = y
            out["fitted"] = fitted
            out["residual"] = y - fitted
            yield out

    def _batches(self, group: str | None, levels: Sequence | None) -> Iterator[pd.DataFrame]:
        """The rows used, all of them or those of some groups."""
        if self.rows is None:
            raise ModelError("This result has no source to stream its rows from.")
        if (group is None) != (levels is None):
            raise ModelError("Give both group and levels to stream some groups' rows.")
        if group is None:
            return self.rows()
        if not isinstance(self.rows, RowStream):
            wanted = set(levels)
            return (f[f[group].isin(wanted)] for f in self.rows())
        if group not in self.rows.columns:
            raise ModelError(
                f"`{group}` is not a column the model uses ({', '.join(self.rows.columns)}): "
                "choose the rows by one of them."
            )
        return self.rows((group, list(levels)))

    def fitted_of(
        self, group: str, levels: Sequence, columns: tuple[str, ...] = ()
    ) -> pd.DataFrame:
        """:meth:`iter_fitted` of the rows of some groups, as one table (index ``0..k-1``)."""
        parts = list(self.iter_fitted(columns, group=group, levels=levels))
        if not parts:
            return pd.DataFrame(columns=[*columns, "response", "fitted", "residual"])
        return pd.concat(parts, ignore_index=True)

    def fitted_values(self) -> np.ndarray:
        """Fitted values of every row used (one more pass; ``n`` floats in memory)."""
        return np.concatenate([f["fitted"].to_numpy() for f in self.iter_fitted()])

    def residual_values(self) -> np.ndarray:
        """Residuals of every row used (one more pass; ``n`` floats in memory)."""
        return np.concatenate([f["residual"].to_numpy() for f in self.iter_fitted()])

    # ---------------------------------------------------------------- a sample's view
    def on_sample(self, sample: pd.DataFrame) -> StreamedLMMResult:
        """This fit seen on ``sample``: some groups' rows of the fitted table.

        The estimates (``theta``, ``beta``, ``vcov``, ``sigma``, criteria, ``nobs``,
        ``ngroups``) stay those of the whole fit. The design holds the sample's rows that the
        fit uses (no missing value; ``design.rows`` their positions in ``sample``), and each
        random-effects term only the levels present in them, with their conditional modes and
        covariances; so ``fitted = X beta + Z b`` and ``residuals = y - fitted`` on the sample
        are the whole fit's values for those rows, and ``predict`` gives a level outside the
        sample the population prediction.

        Raises
        ------
        DataError
            When no row of ``sample`` is used by the model (or a row has a level the fit has
            not seen: the table changed since the fit).
        """
        base = self.whole if self.whole is not None else self
        design = base.design
        frame = sample.reset_index(drop=True)
        y = design.response_values(frame)
        offset = design.offset_values(frame) if design.has_offset else np.zeros(len(frame))
        X = design.fixed_matrix(frame)
        evaluated = [term_matrix(t, frame) for t in base.reterms]
        ok = np.isfinite(y) & np.isfinite(offset) & np.isfinite(X).all(axis=1)
        rows = sample_rows(ok, evaluated)
        terms, modes, covs = [], [], []
        parts = zip(base.reterms, evaluated, base.b, base.cond_cov, strict=True)
        for t, (codes, z), b, cov in parts:
            present = np.unique(codes[rows])
            new_codes = np.searchsorted(present, codes[rows])
            kept = tuple(t.levels[i] for i in present.tolist())
            recipe = replace(t.rebuild, levels=kept) if t.rebuild is not None else None
            terms.append(replace(t, levels=kept, codes=new_codes, z=z[rows], rebuild=recipe))
            modes.append(b[present])
            covs.append(cov[present])
        y_used = y[rows] - offset[rows]
        view_design = replace(
            design,
            y=y_used,
            X=X[rows],
            reterms=tuple(terms),
            rows=rows,
            n_dropped=len(frame) - rows.size,
            offset=np.zeros(rows.size),
            folded_offset=offset[rows] if design.has_offset else None,
        )
        fitted = X[rows] @ base.beta
        for t, b in zip(terms, modes, strict=True):
            fitted = fitted + np.einsum("ij,ij->i", t.z, b[t.codes])
        return replace(
            base,
            b=tuple(modes),
            cond_cov=tuple(covs),
            fitted=fitted,
            residuals=y_used - fitted,
            design=view_design,
            whole=base,
            sample=frame,
        )

    # ---------------------------------------------------------------- ML from the blocks
    def refit_ml(self, options: FitOptions | None = None) -> StreamedLMMResult:
        """The same model fitted by maximum likelihood from the blocks (no pass over the
        rows), started at this fit's ``theta``; a view on a sample stays one. An ML fit is
        returned as it is.

        The ML deviance ``log|L_Z|^2 + n (1 + log(2 pi r^2 / n))`` needs the same blocks as
        the REML criterion; only the criterion and ``sigma^2 = r^2 / n`` change.
        """
        if not self.reml:
            return self
        base = self.whole if self.whole is not None else self
        if base.deviance is None:
            raise ModelError("This streamed fit holds no blocks to refit from; fit it by ML.")
        options = options or FitOptions(singular_tol=base.singular_tol)
        dev = copy.copy(base.deviance)
        dev.reml = False
        opt, sol, cond_cov, singular = optimum(dev, base.theta, options)
        messages = [m for m in base.messages if m != SINGULAR_MESSAGE] + list(opt.messages)
        if singular:
            messages.append(SINGULAR_MESSAGE)
        refit = replace(
            base,
            reml=False,
            **solution_fields(sol, cond_cov),
            opt=opt,
            messages=tuple(dict.fromkeys(messages)),
            deviance=dev,
            timings={},
        )
        return refit.on_sample(self.sample) if self.sample is not None else refit

    def summary_text(self) -> str:
        """lme4's summary layout, without the residual quantiles (not held)."""
        text = format_summary(replace(self, residuals=np.array([np.nan])))
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Scaled residuals:"):
                lines[i : i + 3] = ["Scaled residuals: not held by a streamed fit"]
                break
        return "\n".join(lines)


__all__ = ["StreamedLMMResult"]

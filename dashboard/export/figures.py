"""Static images of plotly figures (kaleido + Debian's chromium), and the figures to export.

:func:`render_image` turns a figure into PNG or SVG bytes through one kaleido sync server,
started on first use with ``mathjax=False`` (otherwise kaleido loads MathJax from outside)
and shared by every session behind a lock (the server has one task queue). When kaleido or
a browser is missing, or the first image does not come back in time, it raises
:class:`ImageExportUnavailable` with a message for the user, and the app stops trying.

:func:`model_figures` rebuilds the main figures of a fit with the same builders the result
pages use (trajectories, caterpillar plot, residual diagnostics). No Streamlit here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import diagnostics as fd
from dashboard.figures import shrinkage as fs
from dashboard.figures import trajectories as ft
from dashboard.io.roles import Roles
from lmm_core import LMMResult

__all__ = [
    "FIGURE_KEYS",
    "FORMATS",
    "ImageExportUnavailable",
    "model_figures",
    "render_image",
    "unavailable_reason",
]

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
WIDTH, HEIGHT = 1000, 600
FIRST_TIMEOUT = 60.0  # seconds: browser start plus the first image
TIMEOUT = 30.0
N_SUBJECTS = 12
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FIGURE_KEYS = ("trajectories", "caterpillar", "residuals", "qq", "ranef_qq")
UNAVAILABLE_HINT = (
    "Every chart in the app has a camera button in its toolbar (top right, on hover) that "
    "downloads it as a PNG."
)

_lock = threading.Lock()
_state: dict[str, object] = {"started": False, "error": None}
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaleido-call")


class ImageExportUnavailable(RuntimeError):
    """Static images cannot be made on this server (no kaleido, no browser, or it hangs)."""


def unavailable_reason() -> str | None:
    """Why static images cannot be made here (checked without starting a browser), or None."""
    if _state["error"] is not None:
        return str(_state["error"])
    if importlib.util.find_spec("kaleido") is None:
        return f"Static images need the kaleido package, which is not installed. {UNAVAILABLE_HINT}"
    if not (os.environ.get("BROWSER_PATH") or any(shutil.which(b) for b in BROWSERS)):
        return (
            "Static images need a Chromium or Chrome browser on the server, and none was "
            f"found. {UNAVAILABLE_HINT}"
        )
    return None


def _start() -> None:
    try:
        import kaleido
    except ImportError as exc:
        raise ImageExportUnavailable(
            f"Static images need the kaleido package, which is not installed. {UNAVAILABLE_HINT}"
        ) from exc
    kaleido.start_sync_server(mathjax=False, silence_warnings=True)
    _state["started"] = True


def render_image(
    fig: go.Figure, fmt: str = "png", *, width: int = WIDTH, height: int = HEIGHT, scale=2
) -> bytes:
    """PNG or SVG bytes of ``fig``.

    Parameters
    ----------
    fig
        The figure.
    fmt
        ``"png"`` or ``"svg"``.
    width, height, scale
        Size in CSS pixels; ``scale`` multiplies the PNG's pixel size (2 = sharp on print).

    Raises
    ------
    ImageExportUnavailable
        When kaleido or a chromium browser is missing, or rendering does not finish in time.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, not {fmt!r}")
    with _lock:
        if _state["error"] is not None:
            raise ImageExportUnavailable(str(_state["error"]))
        first = not _state["started"]
        opts = {"format": fmt, "width": width, "height": height, "scale": scale}
        try:
            if first:
                _start()
            import kaleido

            future = _pool.submit(kaleido.calc_fig_sync, fig, opts)
            return future.result(timeout=FIRST_TIMEOUT if first else TIMEOUT)
        except ImageExportUnavailable as exc:
            _state["error"] = str(exc)
            raise
        except FutureTimeout:
            _state["error"] = (
                "Static images are not available: the image renderer (kaleido with chromium) "
                f"did not answer. {UNAVAILABLE_HINT}"
            )
            raise ImageExportUnavailable(str(_state["error"])) from None
        except Exception as exc:  # kaleido raises its own types, e.g. no browser found
            _state["error"] = (
                f"Static images are not available on this server ({type(exc).__name__}: "
                f"{str(exc)[:200]}). {UNAVAILABLE_HINT}"
            )
            raise ImageExportUnavailable(str(_state["error"])) from exc


def model_figures(
    result: LMMResult,
    data: pd.DataFrame,
    roles: Roles,
    *,
    units: dict[str, str] | None = None,
    keys: tuple[str, ...] = FIGURE_KEYS,
) -> dict[str, tuple[str, go.Figure]]:
    """The main figures of a fit, built as the result pages build them.

    Returns
    -------
    dict
        ``key -> (title, figure)`` for ``trajectories`` (the subjects with most visits; only
        when the subject and time roles are set and numeric time exists), ``caterpillar``
        (BLUPs of the subject or first grouping factor with 95% intervals), ``residuals``
        (residuals vs fitted), ``qq`` (normal QQ plot of residuals) and ``ranef_qq``;
        only those named in ``keys``.
    """
    from lmm_core.predict.per_group import shrinkage_estimates

    units = units or {}
    out: dict[str, tuple[str, go.Figure]] = {}
    subject, time = roles.subject, roles.time
    groups = list(result.ngroups)
    if (
        "trajectories" in keys
        and subject in data.columns
        and time in data.columns
        and pd.api.types.is_numeric_dtype(data[time])
    ):
        used = data.iloc[result.design.rows]
        visits = used.groupby(subject, sort=True, observed=True).size()
        chosen = ft.choose_subjects(visits, "most", N_SUBJECTS)
        cluster = roles.cluster if roles.cluster in result.ngroups else None
        prep = ft.prepare_trajectories(
            result, data, subject, time, chosen, cluster=cluster, cluster_group=cluster
        )
        fig = ft.trajectories_figure(
            prep,
            subject_label=subject,
            x_label=time + (f" ({units[time]})" if time in units else ""),
            y_label=result.response,
            cluster_label=roles.cluster or "cluster",
            show_clusters=cluster is not None,
        )
        title = f"Trajectories of the {len(chosen)} {subject}s with most visits"
        out["trajectories"] = (title, fig)
    group = subject if subject in groups else groups[0]
    if "caterpillar" in keys:
        est = shrinkage_estimates(result, group)
        out["caterpillar"] = (
            f"Random effects of {group} with 95% intervals (caterpillar plot)",
            fs.caterpillar_figure(est, subject_label=group),
        )
    if "residuals" in keys or "qq" in keys:
        prep_r = fd.prepare_residuals(result, group)
        points, _ = fd.sample_points(prep_r.frame)
        fig = fd.residuals_fitted_figure(prep_r, points)
        out["residuals"] = ("Residuals vs fitted values", fig)
        qq = fd.qq_points(prep_r.frame["std_resid"].to_numpy())
        fig = fd.qq_figure(qq, title="Normal QQ plot of residuals", y_label="standardized residual")
        out["qq"] = ("Normal QQ plot of the residuals", fig)
    if "ranef_qq" in keys:
        fig = fd.ranef_qq_figure(fd.ranef_qq_panels(result))
        out["ranef_qq"] = ("Normal QQ plots of the random effects", fig)
    return {k: out[k] for k in keys if k in out}

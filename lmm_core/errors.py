"""Typed exceptions of ``lmm_core``.

Every error a user can cause (a formula typo, an unknown column, a model the data cannot
support) is raised as a subclass of :class:`LMMError` whose message says what is wrong and
what to do. The app shows ``str(error)`` as it is, so messages are written for a clinician,
not for a programmer.
"""

from __future__ import annotations


class LMMError(ValueError):
    """Base class of every error that bad input can cause."""


class FormulaError(LMMError):
    """The formula text cannot be parsed or refers to something that does not exist.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    position
        0-based character offset of the offending token in the formula, if known.
    token
        The offending token text, if known.
    """

    def __init__(self, message: str, position: int | None = None, token: str | None = None):
        super().__init__(message)
        self.position = position
        self.token = token


class DataError(LMMError):
    """The data cannot support the requested model (no rows left, non-finite values...)."""


class ModelError(LMMError):
    """The model is not estimable as specified (one-level grouping factor, ...)."""


class ComparisonError(LMMError):
    """Models cannot be compared (different rows, different responses...)."""

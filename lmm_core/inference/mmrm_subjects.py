"""The subjects of an MMRM design grouped by pattern (group and set of visits).

Subjects of one pattern share ``Sigma_i`` (the rows and columns of their visits in their
group's covariance), so per-subject computations (sandwich pieces, Kenward-Roger sums) are
vectorised over the subjects of a pattern: ``rows`` is ``(subjects, visits)``, each subject's
row indices into the design in visit order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_core.design.build import Design


@dataclass(frozen=True)
class SubjectPattern:
    """Subjects of one group with the same visits: their rows, ``(n_subjects, t)``."""

    group: int
    visits: np.ndarray
    rows: np.ndarray


def subject_patterns(design: Design) -> list[SubjectPattern]:
    """Group the subjects by (group, visit set); each subject's rows in visit order."""
    res = design.residual
    assert res is not None
    order = np.lexsort((res.visit_codes, res.subject_codes))
    subj, vis, grp = res.subject_codes[order], res.visit_codes[order], res.group_codes[order]
    starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
    ends = np.r_[starts[1:], len(subj)]
    keys: dict[tuple, list[np.ndarray]] = {}
    for a, b in zip(starts, ends, strict=True):
        keys.setdefault((int(grp[a]), tuple(vis[a:b].tolist())), []).append(order[a:b])
    return [SubjectPattern(g, np.array(v), np.array(rows)) for (g, v), rows in keys.items()]

"""What every solver returns, and the checks every solver makes first."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SolverResult:
    """Solution in scaled coordinates plus the certificate of its quality.

    ``u`` and ``intercept`` are the scaled coefficients and intercept b';
    ``gap`` is the duality gap (problem.py), ``tol_abs`` the absolute
    tolerance it was compared with, ``n_passes`` the data passes this solve made.
    """

    u: np.ndarray
    intercept: float
    objective: float
    gap: float
    tol_abs: float
    converged: bool
    n_iter: int
    n_passes: int
    history: list = field(default_factory=list)


def initial_point(problem, u0, b0):
    """(u, b') to start from: a warm start or the null model.

    For the squared loss the scaled intercept is exact whatever ``u`` is
    (the columns are centred), so a warm-start intercept is ignored.
    """
    u_null, b_null = problem.null_point()
    u = u_null if u0 is None else np.array(u0, dtype=np.float64)
    u[problem.penalty.fixed] = 0.0
    exact = problem.loss.quadratic or not problem.fit_intercept
    b = b_null if b0 is None or exact else float(b0)
    return u, b


def at_null(problem, u, b):
    u_null, b_null = problem.null_point()
    return b == b_null and np.array_equal(u, u_null)

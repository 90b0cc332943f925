"""Solvers behind one interface, and the fit driver that runs them on any engine.

Every solver has the signature ``solve(problem, source, u0=None, b0=None,
max_iter=..., verbose=False) -> SolverResult`` and reads rows only through
``source.run_pass``:

- ``"newton"``: working-set proximal Newton (squared and logistic), a handful of passes;
- ``"gram"``: squared loss on sufficient statistics: one pass for the moments and
  the full Gram matrix, then the working-set solver on the driver at no pass;
- ``"fista"``: accelerated proximal gradient, one pass per iteration, no Hessian.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import NonFiniteDataError
from ..penalty import peer_to_native
from ..problem import Moments, make_problem, moments_request
from ..sufficient import SufficientStatistics
from ..losses import check_solver_supports, get_loss
from ..params import choices
from .base import SolverResult
from .fista import solve_fista
from .multinomial import multinomial_problem
from .newton import solve_newton
from .options import SolverOptions
from .path import alpha_max_of
from .routes import choose_solver

log = logging.getLogger("elasticnet_dist")

SOLVERS = choices("solver")



@dataclass
class FitResult:
    """A fitted elastic net on the original scale, with its diagnostics."""

    coef: np.ndarray                  # (p,), or (C, p) for the multinomial loss
    intercept: float                  # or (C,) for the multinomial loss
    coef_standardized: np.ndarray
    constant: np.ndarray
    solver: str
    alpha: float
    l1_ratio: float
    result: SolverResult
    n_passes: int
    timings: dict = field(default_factory=dict)


def fit_elastic_net(source, *, loss="squared", alpha=1.0, l1_ratio=0.5, penalty_factor=None,
                    fit_intercept=True, standardize=True, tol=1e-6, max_iter=1000,
                    solver="auto", glmnet_compat=False, coef_init=None, intercept_init=None,
                    verbose=False, classes=None):
    """Fit one elastic net on the rows behind ``source`` (any engine).

    Parameters are those of :class:`elasticnet_dist.ElasticNet`; they are
    assumed validated (``classes``: the multinomial loss's, the labels their
    indices). Returns a :class:`FitResult`.
    """
    if solver not in SOLVERS:
        raise ValueError("solver=%r is not supported; choose one of %s" % (solver, SOLVERS))
    timings = {}
    passes0 = source.n_passes
    multiclass = get_loss(loss).multiclass
    if multiclass and solver in ("gram", "fista"):
        raise ValueError("solver=%r does not fit loss=%r; use 'newton' or 'auto'"
                         % (solver, loss))
    if solver == "auto":
        solver = "newton" if multiclass else choose_solver(loss, source)
    if solver == "gram":
        check_solver_supports("gram", loss, needs_quadratic=True)

    t0 = time.perf_counter()
    moments = read_moments(source, full_gram=solver == "gram")
    timings["statistics"] = time.perf_counter() - t0

    if glmnet_compat:
        c = moments.sample_variance_correction() if glmnet_compat == "spark" else 1.0
        alpha, l1_ratio = peer_to_native(alpha, l1_ratio, loss=loss, sd_y=np.sqrt(moments.var_y),
                                         variance_correction=c)
    p = source.n_features
    factors = np.ones(p) if penalty_factor is None else np.asarray(penalty_factor, float)
    options = SolverOptions(tol=tol, max_iter=max_iter)
    u0 = b0 = None
    if multiclass:
        problem = multinomial_problem(source, moments, classes, alpha=alpha,
                                      l1_ratio=l1_ratio, penalty_factor=factors,
                                      fit_intercept=fit_intercept, standardize=standardize,
                                      groups=source.groups)
    else:
        problem = make_problem(moments, loss, alpha, l1_ratio, factors, fit_intercept,
                               standardize, source.groups)
        if coef_init is not None:
            u0, b0 = problem.std.to_scaled(np.asarray(coef_init, float),
                                           float(intercept_init or 0.0))

    t0 = time.perf_counter()
    if solver == "fista":
        res = solve_fista(problem, source, u0, b0, options=options, verbose=verbose)
    else:
        inner = SufficientStatistics(moments) if solver == "gram" else source
        res = solve_newton(problem, inner, u0, b0, options=options, verbose=verbose)
    timings["solve"] = time.perf_counter() - t0

    log.info("fit %s loss, alpha=%.6g, l1_ratio=%g: solver %s, %d data passes, %d iterations, "
             "duality gap %.3e (tolerance %.3e), %s, %d features selected", loss, alpha, l1_ratio,
             solver, source.n_passes - passes0, res.n_iter, res.gap, res.tol_abs,
             "converged" if res.converged else "NOT converged", problem.n_selected(res.u))
    coef, intercept, std_coef = problem.original_fit(res.u, res.intercept)
    return FitResult(coef=coef, intercept=intercept, coef_standardized=std_coef,
                     constant=problem.std.constant.copy(), solver=solver, alpha=alpha,
                     l1_ratio=l1_ratio, result=res, n_passes=source.n_passes - passes0,
                     timings=timings)


def read_moments(source, full_gram=False):
    """The first pass of every fit: the moments (and the full Gram on request).

    Raises NonFiniteDataError naming the columns whose sums are not finite:
    this pass sees every value, so it doubles as the NaN/inf check.
    """
    request, shift_x, shift_y = moments_request(source, full_gram=full_gram)
    return check_finite_moments(Moments.from_stats(source.run_pass(request), shift_x, shift_y))


def check_finite_moments(moments):
    """``moments``, or NonFiniteDataError naming the columns whose sums are not finite."""
    bad = ~np.isfinite(moments.mean_x) | ~np.isfinite(moments.var_x)
    if moments.gram is not None:
        bad |= ~np.all(np.isfinite(moments.gram), axis=0)
    if np.any(bad):
        raise NonFiniteDataError(np.flatnonzero(bad))
    return moments


def compute_alpha_max(source, *, loss="squared", l1_ratio=1.0, penalty_factor=None,
                      fit_intercept=True, standardize=True):
    """Smallest alpha at which every penalised coefficient is zero (see
    :func:`~.path.alpha_max_of`); one pass, plus a short solve when some
    features are unpenalised."""
    p = source.n_features
    factors = np.ones(p) if penalty_factor is None else np.asarray(penalty_factor, float)
    problem = make_problem(read_moments(source), loss, 1.0, l1_ratio, factors, fit_intercept,
                           standardize, source.groups)
    return alpha_max_of(problem, source, tol=1e-12)


__all__ = ["compute_alpha_max", "SOLVERS", "choose_solver", "fit_elastic_net", "FitResult",
           "SolverResult", "solve_newton", "solve_fista"]

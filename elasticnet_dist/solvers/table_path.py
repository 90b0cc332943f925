"""One regularization path of a table, from any source: the route, the grid, the
walk and the back-transform, each written once (cross-validation's full-data
paths take the same grid, route and back-transform; see :mod:`.cv`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sufficient import SufficientStatistics
from . import read_moments
from .routes import GRAM_MAX_FEATURES, route_for, source_workload
from .options import DEFAULT_OPTIONS, NO_STOPS
from .path import path_grid, solve_path


@dataclass
class TablePath:
    """A path on the original scale: ``coefs`` is (n_alphas, n_features)."""

    route: str
    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    coefs_standardized: np.ndarray
    gaps: np.ndarray
    n_features: np.ndarray
    converged: np.ndarray
    n_passes: int


def table_path(source, spec, l1_ratio, *, alphas=None, n_alphas=100, eps=None,
               options=DEFAULT_OPTIONS, stops=NO_STOPS, gram_max_features=GRAM_MAX_FEATURES):
    """The path of ``spec``'s problem at ``l1_ratio`` over the rows of ``source``.

    The route (:func:`~.routes.route_for` without folds): where the cost model
    prefers it, a quadratic loss with at most ``gram_max_features`` features reads
    the moments and the Gram matrix in one pass and walks the path from them (no
    further pass); otherwise every point costs passes. The grid:
    :func:`~.path.path_grid`. Stops: ``stops`` (:class:`~.options.PathStops`), so the
    path may be shorter than the grid."""
    passes0 = source.n_passes
    n_points = n_alphas if alphas is None else len(np.atleast_1d(alphas))
    work = source_workload(source, spec.loss, n_alphas=n_points)
    route, source, ahead = route_for(source, spec.loss, work, gram_max_features)
    moments = read_moments(source, full_gram=route == "gram")
    inner = SufficientStatistics(moments) if route == "gram" else source
    grid = path_grid(spec, moments, l1_ratio, inner, alphas=alphas, n_alphas=n_alphas,
                     eps=eps, tol=options.tol)
    problem = spec.unit(moments, l1_ratio)
    points = solve_path(problem, grid, inner, options=options, stops=stops, ahead=ahead)
    p = source.n_features
    fits = [problem.original_fit(pt.u, pt.intercept) for pt in points]
    return TablePath(
        route=route, alphas=grid[:len(points)],
        coefs=np.array([w for w, _, _ in fits]).reshape(len(points), p),
        intercepts=np.array([b for _, b, _ in fits]),
        coefs_standardized=np.array([ws for _, _, ws in fits]).reshape(len(points), p),
        gaps=np.array([pt.gap for pt in points]),
        n_features=np.array([pt.n_selected for pt in points]),
        converged=np.array([pt.converged for pt in points]),
        n_passes=source.n_passes - passes0)

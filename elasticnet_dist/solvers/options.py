"""What a solver is told besides the problem: how hard to work, and where a path ends.

The problem (:class:`~elasticnet_dist.problem.Problem`) is the mathematics: the
data's moments, the loss, the penalty. These are the solver's settings, kept
apart so that the same problem can be solved to another tolerance and so that
a task shipped to a worker carries named fields, not a positional tuple.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..params import PARAMS, PATH_MAX_ITER
from ..problem import make_problem


@dataclass(frozen=True)
class SolverOptions:
    """``tol``: duality-gap tolerance relative to the null deviance (see
    :meth:`~elasticnet_dist.problem.Problem.gap_tolerance`); ``max_iter``: Newton
    (or FISTA) iterations, one data pass each, per fit or per path point;
    ``screening``: sequential strong rules along a path."""

    tol: float = PARAMS["tol"].default
    max_iter: int = PATH_MAX_ITER
    screening: bool = PARAMS["screening"].default


DEFAULT_OPTIONS = SolverOptions()


@dataclass(frozen=True)
class PathStops:
    """Where a path ends before its last alpha: more than ``max_features`` selected
    (glmnet's dfmax), or glmnet's saturation rules ``devmax`` and ``fdev`` (see
    :func:`~.path.path_steps`). None: not used."""

    max_features: Optional[int] = None
    devmax: Optional[float] = None
    fdev: Optional[float] = None

    @property
    def any(self):
        return any(v is not None for v in (self.max_features, self.devmax, self.fdev))


NO_STOPS = PathStops()


class PathLimit:
    """The last point index a group of paths may reach, lowered when one of them
    stops early: cross-validation's fold paths end where their full-data path
    ended (glmnet's rule), even when they run on other threads."""

    def __init__(self, last):
        self.last = int(last)

    def lower(self, index):
        self.last = min(self.last, int(index))


@dataclass(frozen=True)
class ProblemSpec:
    """Everything that makes the problem of a table but its rows and its penalty
    constant: the loss, the penalty factors and the scaling rules. ``unit(moments,
    l1_ratio)`` is the problem at ``alpha = 1`` whose paths are walked."""

    loss: str
    penalty_factor: np.ndarray
    fit_intercept: bool = True
    standardize: bool = True
    #: A group number per feature (-1: none): categorical columns' one-hot blocks.
    groups: Optional[np.ndarray] = None

    def at(self, moments, alpha, l1_ratio):
        return make_problem(moments, self.loss, alpha, l1_ratio, self.penalty_factor,
                            self.fit_intercept, self.standardize, self.groups)

    def unit(self, moments, l1_ratio):
        return self.at(moments, 1.0, l1_ratio)

"""Stability of a selection: how often each feature is chosen on half-samples.

Complementary pairs stability selection (Shah and Samworth, 2013): ``N / 2``
random splits of the rows into two halves give ``N`` half-samples; the lasso
(or elastic net) at the chosen penalty ``(alpha, l1_ratio)`` is fitted on each,
and feature j's **selection frequency** is the share of them that select it::

    pi_j = (1/N) sum_i [w_j(A_i) != 0]

(for the lasso, Shah and Samworth bound the expected number of features with
``pi_j >= t`` among those rarely selected by chance).

Half-samples from groups. Every row gets one of ``G`` groups (even) from a
64-bit hash of its keys or of its file and position, as the folds do
(:mod:`elasticnet_dist.folds`) but with another seed, so groups and folds are
independent and the same on every engine and partitioning. Each split draws a
random half of the groups (a seeded permutation): a half-sample is a union of
``G / 2`` groups and its complement the other half. Its statistics are then
sums of group statistics:

- one-pass route (squared loss, moderate p): **one** pass yields the moments
  and Gram matrix of every group (``by_fold``, as cross-validation's folds); each
  half-sample's path then runs on the driver from the sum of its groups' (driver
  memory about ``(G + 4) p^2`` float64: 16 groups at p = 2,000 take 640 MB, the
  half-samples' Grams made one per driver thread and dropped);
- pass route (logistic and Poisson losses, or p too large): a moments pass per
  group, then every pass serves all ``N`` half-samples at once, each point's sums
  running over the rows of its groups (``PassRequest.train_groups``), as the
  folds of cross-validation share passes.

Each half-sample walks the full data's alpha grid down to the chosen alpha with
warm starts (its own standardization and null model, as a fresh fit of that half
would), so its passes are those of a path. The groups make half-samples of about
``n / 2`` rows (exactly when the groups are equal); with ``G`` groups two
half-samples share on average a quarter of the rows, as random halves do, but
with a larger spread (``G = 16``: 12,870 distinct halves).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from .._text import count
from ..errors import BadValuesError
from ..losses import get_loss
from ..passes import symmetric_grams
from ..problem import Moments, moments_request
from .cv import DRIVER_THREADS, run_batched, solve_gram_path
from .multinomial import multinomial_halves
from .options import ProblemSpec, SolverOptions
from .path import path_steps
from .routes import GRAM_MAX_FEATURES, route_for, source_workload

log = logging.getLogger("elasticnet_dist")

#: Added to the fold seed for the groups' hash: groups independent of the folds.
GROUP_SEED_OFFSET = 0x5EED_0F_57AB1E


@dataclass
class Stability:
    """Selection frequencies over half-samples at one penalty.

    ``frequencies`` (p,): the share of the ``n_subsamples`` half-samples whose fit
    selects each feature; ``group_rows`` (G,): rows per group; ``converged``:
    half-samples whose last point met the gap tolerance.
    """

    frequencies: np.ndarray
    n_subsamples: int
    n_groups: int
    alpha: float
    l1_ratio: float
    route: str
    n_passes: int
    seconds: float
    converged: int
    group_rows: np.ndarray


def group_seed(fold_seed):
    """The hash seed of the stability groups for a fit with ``fold_seed``."""
    return int(fold_seed) + GROUP_SEED_OFFSET


def complementary_halves(n_subsamples, n_groups, seed=0):
    """(N, G) booleans: row ``2i`` a random half of the groups, row ``2i + 1`` its
    complement, for ``N / 2`` seeded splits."""
    if n_subsamples % 2 or n_groups % 2:
        raise ValueError("complementary pairs need even counts of half-samples and groups, "
                         "got %d and %d" % (n_subsamples, n_groups))
    rng = np.random.default_rng([int(seed), n_groups, n_subsamples])
    halves = np.zeros((n_subsamples, n_groups), dtype=bool)
    for i in range(0, n_subsamples, 2):
        first = rng.permutation(n_groups)[:n_groups // 2]
        halves[i, first] = True
        halves[i + 1] = ~halves[i]
    return halves


def selection_frequencies(source, *, n_groups, n_subsamples, alphas, l1_ratio,
                          loss="squared", penalty_factor=None, fit_intercept=True,
                          standardize=True, tol=1e-6, max_iter=100, screening=True,
                          gram_max_features=GRAM_MAX_FEATURES, seed=0, classes=None):
    """:class:`Stability` of the fit at ``alphas[-1]`` (the path to it: ``alphas``,
    decreasing) over ``source`` loaded with ``n_groups`` groups as its folds
    (``classes``: the multinomial loss's, the labels their indices)."""
    t0 = time.perf_counter()
    passes0 = source.n_passes
    p = source.n_features
    factors = np.ones(p) if penalty_factor is None else np.asarray(penalty_factor, float)
    groups = source.groups
    alphas = np.asarray(alphas, dtype=np.float64)
    halves = complementary_halves(n_subsamples, n_groups, seed)
    work = source_workload(source, loss, n_groups, n_subsamples, alphas.size)
    route, source, ahead = route_for(source, loss, work, gram_max_features)

    request, shift_x, shift_y = moments_request(source, full_gram=route == "gram")
    by_group = symmetric_grams(source.run_pass(replace(request, n_folds=n_groups,
                                                       by_fold=True)))
    group_rows = np.asarray(by_group["n_rows"], dtype=np.int64)

    def moments(i):
        stats = {key: np.tensordot(halves[i].astype(np.float64), value, axes=1)
                 for key, value in by_group.items()}
        return Moments.from_stats(stats, shift_x, shift_y)

    spec = ProblemSpec(loss, factors, fit_intercept, standardize, groups)
    options = SolverOptions(tol=tol, max_iter=max_iter, screening=screening)
    if route == "gram":
        def solve(i):
            return solve_gram_path(moments(i), spec, l1_ratio, alphas, options)[-1]

        with threadpool_limits(1), ThreadPoolExecutor(DRIVER_THREADS) as pool:
            last = list(pool.map(solve, range(n_subsamples)))
        support = [pt.u != 0 for pt in last]
    else:
        halves_moments = [moments(i) for i in range(n_subsamples)]
        for i, m in enumerate(halves_moments):
            _check_half(loss, m, i, halves[i])
        if get_loss(loss).multiclass:
            units = multinomial_halves(source, halves_moments, classes, spec, l1_ratio, halves)
        else:
            units = [spec.unit(m, l1_ratio) for m in halves_moments]
        steps = [path_steps(unit, alphas, options=options, ahead=ahead) for unit in units]
        paths = run_batched(steps, None, source, loss=loss, n_folds=n_groups,
                            train_groups=halves)
        last = [path[-1] for path in paths]
        support = [unit.support(pt.u) for unit, pt in zip(units, last, strict=True)]
    selected = np.array(support)
    out = Stability(frequencies=selected.mean(axis=0), n_subsamples=n_subsamples,
                    n_groups=n_groups, alpha=float(alphas[-1]), l1_ratio=float(l1_ratio),
                    route=route, n_passes=source.n_passes - passes0,
                    seconds=time.perf_counter() - t0,
                    converged=int(sum(bool(pt.converged) for pt in last)),
                    group_rows=group_rows)
    log.info("stability: %s of %d groups (%s route) at alpha=%.6g, l1_ratio=%g: %d features "
             "selected in at least half of them, in %s, %.2f s", count(n_subsamples,
                                                                      "half-sample"),
             n_groups, route, out.alpha, out.l1_ratio, int(np.sum(out.frequencies >= 0.5)),
             count(out.n_passes, "data pass"), out.seconds)
    return out


def _check_half(loss, moments, i, groups):
    problem = get_loss(loss).training_label_problem(moments)
    if problem is not None:
        raise BadValuesError(
            "the labels of half-sample %d (groups %s, %d rows) %s; stability selection "
            "needs every half of the rows to allow the fit: use fewer groups "
            "(stability_groups) or more rows" % (i, np.flatnonzero(groups).tolist(),
                                                moments.n_rows, problem))

"""Cross-validated grid search over (l1_ratio, alpha) in a handful of data passes.

The grid is ``l1_ratios x alphas`` (the alphas from the full data, as glmnet
and scikit-learn do) and the problems are the full table and its K training
sets (all rows but one fold). Two routes, by the size of a p x p matrix:

- ``"gram"`` (squared loss, p <= ``gram_max_features``, where the cost model of
  :mod:`.routes` prefers it: rows well beyond columns): **one** pass computes
  the moments and the Gram matrix of every fold at once (``by_fold``). The
  training set of fold k is the total minus fold k; every path of every fold
  and every l1_ratio, the full-data paths, and every held-out error then run
  on the driver from those sums, with no further pass;
- ``"passes"`` (logistic loss, p too large for K + 1 Gram matrices, or too few
  rows for them to pay): one
  moments pass, then every pass serves every problem at once: each problem
  contributes its current point, with the fold it holds out, and gets back
  the loss, gradient and Hessian block over its training rows and the loss
  (and AUC histogram) over its held-out rows (``holdout``). With the paths'
  pass reuse and strong rules a point typically costs one pass, shared by all.

Scores: mean squared error (squared loss), mean binomial deviance ``2 x log-loss``
and the area under the ROC curve (logistic loss), per l1_ratio, alpha and fold.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Optional

import numpy as np
from threadpoolctl import threadpool_limits

from .. import progress
from .._text import count
from ..errors import BadValuesError
from ..losses import GREATER_IS_BETTER, get_loss
from ..params import choices
from ..passes import PassRequest, fold_slice, fold_total, points_of, symmetric_grams
from ..problem import Moments, moments_request
from ..sufficient import SufficientStatistics
from . import check_finite_moments
from .early_stop import EarlyStop, point_scores
from .gram_segments import early_stopped_gram_paths, held_out_mse
from .options import NO_STOPS, PathLimit, PathStops, ProblemSpec, SolverOptions
from .multinomial import multinomial_problems
from .path import path_grid, path_steps
from .routes import GRAM_MAX_FEATURES, route_for, source_workload
from .newton import drive

log = logging.getLogger("elasticnet_dist")

#: Bins of the held-out histograms of the linear predictor (for the AUC; see
#: passes.auc_bin): pairs of rows in one bin count as ties.
AUC_BINS = 2048
#: Threads that solve the paths of the one-pass route on the driver.
DRIVER_THREADS = max(1, min(8, os.cpu_count() or 1))
RULES = choices("selection")


#: Grid points each side of the previous penalty in a warm-started search.
WARM_HALF_WIDTH = 15


@dataclass(frozen=True)
class WarmStart:
    """A previous run's solution to start a search from (``select --warm-start``).

    ``coef`` (p,) and ``intercept`` on the original scale (C x p and C for the
    multinomial loss), for this table's features (0 where the previous run had no
    such feature), chosen there at
    ``alpha`` and ``l1_ratio``; ``best`` the ``(alpha, l1_ratio)`` of that run's
    best mean score (below the chosen alpha under the 1se rule), if known. The
    search then solves, per l1_ratio, only the points of the usual grid from
    ``half_width`` above the alpha whose l1 strength ``alpha * l1_ratio`` is the
    chosen one's to ``half_width`` below the best one's (31 points when they
    coincide), every path starting at the window's first alpha from the previous
    coefficients instead of walking down from ``alpha_max``
    (:func:`~.path.path_steps`' ``start``). The grid points are the full
    search's own; a choice at the window's edge is not trusted
    (:func:`window_edge`)."""

    coef: np.ndarray
    intercept: float
    alpha: float
    l1_ratio: float
    best: Optional[tuple] = None
    half_width: int = WARM_HALF_WIDTH

    def start_for(self, unit):
        """The previous coefficients in ``unit``'s scaled coordinates: ``(u, b)``."""
        return unit.scaled_point(self.coef, self.intercept)

    def windows(self, grid, l1_ratios):
        """The first grid index of each l1_ratio's window, and their common width."""
        L, A = grid.shape

        def index(li, alpha, l1_ratio):  # the grid point of the same l1 strength
            target = alpha * l1_ratio / max(float(l1_ratios[li]), 1e-3)
            return int(np.argmin(np.abs(np.log(grid[li]) - np.log(target))))

        best = self.best or (self.alpha, self.l1_ratio)
        spans = [(index(li, self.alpha, self.l1_ratio) - self.half_width,
                  index(li, *best) + self.half_width) for li in range(L)]
        width = min(A, max(max(hi - lo + 1 for lo, hi in spans), 2 * self.half_width + 1))
        return np.array([min(max(0, lo), A - width) for lo, _ in spans]), width


def window_edge(path, choice):
    """Whether a warm-started search's best or chosen point is at an edge of its
    window that is not an edge of the full grid (a better point may lie beyond)."""
    if path.window is None:
        return False
    firsts, n_alphas = path.window
    width = path.alphas.shape[1]
    for li, ai in (choice.best, (choice.l1_index, choice.alpha_index)):
        if (ai == 0 and firsts[li] > 0) or (ai == width - 1 and firsts[li] + width < n_alphas):
            return True
    return False


@dataclass
class CVPath:
    """Every path of a cross-validated grid search (l1_ratio index l, alpha index a).

    ``scores[metric]`` is (L, A, K) (NaN where a path stopped early);
    ``coefs`` (L, A, p), ``intercepts`` (L, A), ``n_features`` (L, A), ``gaps``,
    ``converged`` and ``n_iter`` (L, A) belong to the full-data paths, on the
    original scale.
    """

    l1_ratios: np.ndarray
    alphas: np.ndarray
    scores: dict
    coefs: np.ndarray
    coefs_standardized: np.ndarray
    intercepts: np.ndarray
    n_features: np.ndarray
    gaps: np.ndarray
    converged: np.ndarray
    constant: np.ndarray
    fold_rows: np.ndarray
    route: str
    n_passes: int = 0
    timings: dict = field(default_factory=dict)
    tol_abs: float = float("nan")  # the duality-gap tolerance of the full-data fits
    n_iter: Optional[np.ndarray] = None  # Newton iterations of each full-data point
    window: Optional[tuple] = None  # warm start: (first index per l1_ratio, full grid size)
    #: per l1_ratio, the last alpha index of paths ended by early stopping (else None)
    stopped_early: Optional[list] = None


def cross_validate(source, *, n_folds, loss="squared", l1_ratios=(0.5,), alphas=None,
                   n_alphas=100, eps=None, penalty_factor=None, fit_intercept=True,
                   standardize=True, tol=1e-6, max_iter=100, screening=True, max_features=None,
                   gram_max_features=GRAM_MAX_FEATURES, auc_bins=AUC_BINS, devmax=None,
                   fdev=None, warm: Optional[WarmStart] = None, early_stop=None, scoring=None,
                   classes=None):
    """Paths of the full data and of the K training sets for every l1_ratio.

    ``source`` is an engine loaded with ``n_folds`` folds. ``max_features``
    stops each l1_ratio's paths after the first alpha where the full-data fit
    selects more features (glmnet's ``dfmax``); ``devmax`` and ``fdev`` after
    the full-data fit's deviance ratio saturates (see
    :func:`~.path.path_steps`). ``warm``: search only a window of the grid
    around a previous run's penalty, from its coefficients (:class:`WarmStart`:
    fewer passes on the pass route, less of the driver's work on the one-pass
    route). ``early_stop`` (a number of alphas, the patience) ends an l1_ratio's
    paths once the mean CV ``scoring`` metric (default: the loss's first) has been
    worse than its best by more than a standard error for that many alphas in a
    row (:mod:`.early_stop`; the one-pass route advances its paths by segments for
    it on the driver, :mod:`.gram_segments`). ``classes``: the multinomial loss's C
    classes (the labels their indices, :mod:`.multinomial`): its coefficients are then
    (L, A, C, p) and its intercepts (L, A, C). Returns a :class:`CVPath`.
    """
    passes0 = source.n_passes
    p = source.n_features
    factors = np.ones(p) if penalty_factor is None else np.asarray(penalty_factor, float)
    groups = source.groups
    l1_ratios = np.atleast_1d(np.asarray(l1_ratios, dtype=np.float64))
    n_points = n_alphas if alphas is None else len(np.atleast_1d(alphas))
    work = source_workload(source, loss, n_folds, l1_ratios.size * (n_folds + 1), n_points)
    route, source, ahead = route_for(source, loss, work, gram_max_features)
    timings = {}

    t0 = time.perf_counter()
    request, shift_x, shift_y = moments_request(source, full_gram=route == "gram")
    by_fold = symmetric_grams(source.run_pass(replace(request, n_folds=n_folds, by_fold=True)))
    total = fold_total(by_fold)
    full = check_finite_moments(Moments.from_stats(total, shift_x, shift_y))
    train = [Moments.from_stats(_minus(total, fold_slice(by_fold, k)), shift_x, shift_y)
             for k in range(n_folds)]
    check_training_labels(loss, train)
    timings["statistics"] = time.perf_counter() - t0

    spec = ProblemSpec(loss, factors, fit_intercept, standardize, groups)
    options = SolverOptions(tol=tol, max_iter=max_iter, screening=screening)
    stops = PathStops(max_features, devmax, fdev)

    t0 = time.perf_counter()
    if get_loss(loss).multiclass:
        grid, problems = multinomial_problems(source, [full] + train, classes, spec,
                                              l1_ratios, alphas=alphas, n_alphas=n_alphas,
                                              eps=eps)
    else:
        full_source = SufficientStatistics(full) if route == "gram" else source
        grid = np.array([path_grid(spec, full, l1, full_source, alphas=alphas,
                                   n_alphas=n_alphas, eps=eps, tol=tol) for l1 in l1_ratios])
        problems = [[spec.unit(m, l1) for m in [full] + train] for l1 in l1_ratios]
    window = None
    if warm is not None:
        firsts, width = warm.windows(grid, l1_ratios)
        window = (firsts, grid.shape[1])
        grid = np.array([row[first:first + width] for row, first in zip(grid, firsts,
                                                                        strict=True)])
        log.info("warm start: %d of %d alphas per l1_ratio around alpha %.6g (l1_ratio %g), "
                 "every path from the previous coefficients", width, window[1], warm.alpha,
                 warm.l1_ratio)
    progress.expect_points(grid.size * (n_folds + 1))
    stopped_early = [None] * len(l1_ratios)
    watch = None if early_stop is None else (scoring or get_loss(loss).metrics[0],
                                             int(early_stop))
    if route == "gram":
        held_out = _held_out(by_fold, shift_x, shift_y)
        if watch is None:
            paths = _gram_paths(grid, [full] + train, options, stops, source, spec, l1_ratios,
                                warm)
            scores = {"mse": _gram_scores(problems, paths, held_out, grid.shape)}
        else:  # the watches scored every point
            paths, watches = early_stopped_gram_paths(
                grid, [full] + train, held_out, problems, options, stops, spec, warm, watch,
                DRIVER_THREADS, source.checkpoint, source.host_objects)
            stopped_early = [w.stopped_after for w in watches]
            scores = {"mse": np.stack([w.fold_scores() for w in watches])}
    else:
        paths, watches = _batched_paths(problems, grid, source, n_folds, loss, options, stops,
                                        auc_bins if get_loss(loss).histogram_metrics else 0,
                                        ahead, warm, watch)
        stopped_early = [None if w is None else w.stopped_after for w in watches]
        scores = _pass_scores(loss, paths, grid.shape)
    timings["paths"] = time.perf_counter() - t0

    L, A = grid.shape
    per = (len(classes),) if get_loss(loss).multiclass else ()  # one row per class
    coefs, coefs_std = np.zeros((L, A, *per, p)), np.zeros((L, A, *per, p))
    intercepts, gaps = np.full((L, A, *per), np.nan), np.full((L, A), np.nan)
    n_features = np.full((L, A), -1, dtype=np.int64)
    converged = np.zeros((L, A), dtype=bool)
    n_iter = np.zeros((L, A), dtype=np.int64)
    for li in range(L):
        full_problem = problems[li][0]
        for ai, point in enumerate(paths[li][0]):
            coefs[li, ai], intercepts[li, ai], coefs_std[li, ai] = full_problem.original_fit(
                point.u, point.intercept)
            n_features[li, ai] = full_problem.n_selected(point.u)
            gaps[li, ai], converged[li, ai] = point.gap, point.converged
            n_iter[li, ai] = point.n_iter
    fold_rows = np.asarray(by_fold["n_rows"], dtype=np.int64)
    n_passes = source.n_passes - passes0
    log.info("cross-validation (%s route): %d folds x %s x %d alphas in %s, %.2f s on the "
             "driver", route, n_folds, count(L, "l1_ratio"), A, count(n_passes, "data pass"),
             timings["paths"])
    return CVPath(l1_ratios, grid, scores, coefs, coefs_std, intercepts, n_features, gaps,
                  converged, problems[0][0].std.constant.copy(), fold_rows, route, n_passes,
                  timings, problems[0][0].gap_tolerance(tol), n_iter, window, stopped_early)


def check_training_labels(loss, train):
    """A :class:`~elasticnet_dist.errors.BadValuesError` naming the first fold whose
    training rows (every row outside it) the loss cannot fit, e.g. one class only
    (:meth:`~elasticnet_dist.losses.Loss.training_label_problem`): with folds of a
    fold column, or too few rows of a class for the folds."""
    for k, moments in enumerate(train):
        problem = get_loss(loss).training_label_problem(moments)
        if problem is not None:
            raise BadValuesError(
                "the label's training rows of fold %d (the %d rows outside it) %s; every "
                "fold's training rows must allow the fit: check the fold column, or let the "
                "folds be assigned (stratified by class for a classifier)"
                % (k, moments.n_rows, problem))


def _minus(total, part):
    return {key: total[key] - part[key] for key in total}


# ---- the one-pass route ----------------------------------------------------------------

def solve_gram_path(moments, spec, l1_ratio, alphas, options, limit=None, stops=NO_STOPS,
                    warm=None, **resume):
    """One path of the one-pass route, from its problem's moments alone: its points
    (without their pass statistics, which this route does not need); ``warm``: a
    :class:`WarmStart` to start from."""
    problem = spec.unit(moments, l1_ratio)
    start = None if warm is None else warm.start_for(problem)
    points = drive(path_steps(problem, alphas, options=options, stops=stops, limit=limit,
                              start=start, **resume), SufficientStatistics(moments).run_pass)
    return [replace(point, evaluation=None) for point in points]


def _solve_gram_path_task(*args):
    """:func:`solve_gram_path` as a task on a worker: one BLAS thread, as on the driver,
    so that the bits are the same wherever the path is solved."""
    with threadpool_limits(1):
        return solve_gram_path(*args)


def _gram_paths(grid, moments, options, stops, source, spec, l1_ratios, warm=None):
    """paths[l][0] the full data, paths[l][k + 1] fold k's training set (``moments``:
    the full data's, then each training set's; ``warm``: where every path starts).

    The paths are independent. An engine that can run tasks on its workers
    (``solve_tasks``: Dask) solves them there, spread over the cluster's cores;
    otherwise, with a checkpoint, or if that fails, they run here on
    DRIVER_THREADS threads (NumPy's linear algebra releases the GIL), each with
    one BLAS thread. Every path's arithmetic is the same wherever it runs, so
    the results are too. With a ``checkpoint`` every solved point is saved, and
    a path saved before resumes after its last point."""
    checkpoint, solve_tasks = source.checkpoint, source.solve_tasks
    if checkpoint is None and solve_tasks is not None:
        try:
            paths = _gram_paths_on_workers(solve_tasks, grid, moments, options, stops,
                                           spec, l1_ratios, warm)
        except Exception as exc:  # noqa: BLE001 - the driver can always do it
            log.warning("solving the paths on the workers failed (%s: %s); solving them on "
                        "the driver", type(exc).__name__, (str(exc).splitlines() or [""])[0])
        else:
            for _ in range(sum(len(path) for row in paths for path in row)):
                progress.path_point()
            return paths

    def solve(li, k, limit=None, full_stops=NO_STOPS):
        resume = {} if checkpoint is None else {"saved": checkpoint.saved_path(li, k),
                                                "on_point": checkpoint.point_saver(li, k)}
        return solve_gram_path(moments[k + 1], spec, l1_ratios[li], grid[li], options,
                               limit, full_stops, warm, **resume)

    def full_then_folds(li):
        # a fold path ends where its full-data path stopped (max_features, devmax,
        # fdev): its jobs are queued as soon as that is known, behind the full paths
        path = solve(li, -1, full_stops=stops)
        limit = PathLimit(len(path) - 1)
        return path, [pool.submit(solve, li, k, limit) for k in range(K)]

    L, K = len(l1_ratios), len(moments) - 1
    with threadpool_limits(1), ThreadPoolExecutor(DRIVER_THREADS) as pool:
        fulls = [pool.submit(full_then_folds, li) for li in range(L)]
        paths = []
        for job in fulls:
            path, folds = job.result()
            paths.append([path] + [fold.result() for fold in folds])
        return paths


def _gram_paths_on_workers(solve_tasks, grid, moments, options, stops, spec, l1_ratios,
                           warm=None):
    """:func:`_gram_paths` as one task per path (the moments shipped once); when a
    stop is set (the fold paths end where their full-data path stopped) the
    full-data paths first."""
    L, K = len(l1_ratios), len(moments) - 1
    calls = [(li, k) for li in range(L) for k in range(-1, K)]
    staged = stops.any

    def stages():
        done = {}
        for stage in ([c for c in calls if c[1] < 0], [c for c in calls if c[1] >= 0]) \
                if staged else (calls,):
            limits = {li: PathLimit(len(done[li, -1]) - 1) for li, _ in stage
                      if (li, -1) in done}
            results = yield [(k + 1, (spec, l1_ratios[li], grid[li], options,
                                      limits.get(li), stops if k < 0 else NO_STOPS, warm))
                             for li, k in stage]
            done.update(zip(stage, results, strict=True))
        return done

    done = solve_tasks(_solve_gram_path_task, moments, stages())
    log.info("solved the %d paths on the workers", len(calls))
    return [[done[li, k] for k in range(-1, K)] for li in range(L)]


def _held_out(by_fold, shift_x, shift_y):
    """Each fold's :class:`SufficientStatistics`: its own moments and Gram matrix."""
    return [SufficientStatistics(Moments.from_stats(fold_slice(by_fold, k), shift_x, shift_y))
            for k in range(len(by_fold["n_rows"]))]


def _gram_scores(problems, paths, held_out, shape):
    """Held-out mean squared errors from each fold's own moments and Gram matrix."""
    L, A = shape
    mse = np.full((L, A, len(held_out)), np.nan)
    for k, fold in enumerate(held_out):
        for li in range(L):
            points = paths[li][k + 1]
            mse[li, :len(points), k] = held_out_mse(fold, problems[li][k + 1], points)
    return mse


# ---- the pass-per-step route ---------------------------------------------------------------

def _batched_paths(problems, grid, source, n_folds, loss, options, stops, auc_bins, ahead,
                   warm=None, early_stop=None):
    """Every path as a generator; each pass serves the pending step of every one
    (``ahead``: the paths solve their next points ahead, see :func:`~.path.path_steps`;
    ``warm``: a :class:`WarmStart` every path starts from; ``early_stop``: ``(metric,
    patience)``, the paths of an l1_ratio end where its folds' scores say so,
    :mod:`.early_stop`). Returns the paths and each l1_ratio's :class:`EarlyStop`
    (None without early stopping)."""
    steps, holdout, watches, limits = [], [], [], []
    for li, row in enumerate(problems):
        limit = PathLimit(grid.shape[1] - 1)
        limits.append(limit)
        watch = None
        if early_stop is not None:
            watch = EarlyStop(loss, *early_stop, n_folds=n_folds, limit=limit,
                              n_alphas=grid.shape[1],
                              label="l1_ratio %g: " % row[0].l1_ratio)
        watches.append(watch)
        for k, problem in enumerate(row):
            steps.append(path_steps(problem, grid[li], options=options,
                                    stops=stops if k == 0 else NO_STOPS, limit=limit,
                                    ahead=ahead,
                                    start=None if warm is None else warm.start_for(problem),
                                    watch=None if watch is None or k == 0 else
                                    partial(watch.record, k - 1)))
            holdout.append(k - 1)
    results = run_batched(steps, np.array(holdout), source, loss=loss, n_folds=n_folds,
                          auc_bins=auc_bins)
    K1 = n_folds + 1
    # a path that ran ahead of the point where its l1_ratio's paths ended keeps no
    # points beyond it: every path of an l1_ratio ends at the same alpha
    return [[points[:limit.last + 1] for points in results[li * K1:(li + 1) * K1]]
            for li, limit in enumerate(limits)], watches


def run_batched(steps, holdout, source, *, loss, n_folds, auc_bins=0, train_groups=None):
    """Drive solver generators together: one pass per round answers the pending
    request of every generator (its points, over its training rows); their results.
    A generator's training rows are those outside the fold it holds out
    (``holdout[i]``, -1: every row), or, with ``train_groups`` (one row of K
    booleans per generator), those of the folds it marks."""
    results = [None] * len(steps)
    pending = {}
    for i, gen in enumerate(steps):
        try:
            pending[i] = next(gen)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        order = sorted(pending)
        request, shares = _combine([pending[i] for i in order],
                                   None if holdout is None else holdout[order], loss,
                                   n_folds, auc_bins,
                                   None if train_groups is None else train_groups[order])
        stats = source.run_pass(request)
        for i, (points, hessians) in zip(order, shares, strict=True):
            try:
                pending[i] = steps[i].send(points_of(stats, points, hessians))
            except StopIteration as stop:
                results[i] = stop.value
                del pending[i]
    return results


def _combine(requests, holdout, loss, n_folds, auc_bins, train_groups=None):
    """One request for the requests of several problems (each holding out its fold,
    or training on its groups): the request and, for each problem, the positions of
    its points (a slice) and the indices of its Hessian blocks in the combined pass."""
    hessians, shares, first = [], [], 0
    for req in requests:
        k = req.coefs.shape[0] // max(1, req.n_classes)  # a point's rows: its classes'
        index = list(range(len(hessians), len(hessians) + len(req.hessians)))
        hessians.extend(replace(h, point=first + h.point) for h in req.hessians)
        shares.append((slice(first, first + k), index))
        first += k
    sizes = [points.stop - points.start for points, _ in shares]
    combined = PassRequest(loss=loss, coefs=np.vstack([r.coefs for r in requests]),
                           intercepts=np.concatenate([r.intercepts for r in requests]),
                           hessians=tuple(hessians), n_folds=n_folds,
                           holdout=None if holdout is None else np.repeat(np.asarray(holdout),
                                                                          sizes),
                           train_groups=None if train_groups is None else np.repeat(
                               np.asarray(train_groups), sizes, axis=0),
                           auc_bins=auc_bins, n_classes=requests[0].n_classes)
    return combined, shares


def _pass_scores(loss, paths, shape):
    L, A = shape
    K = len(paths[0]) - 1
    loss = get_loss(loss)
    scores = {m: np.full((L, A, K), np.nan) for m in loss.metrics}
    for li in range(L):
        for k in range(K):
            for ai, point in enumerate(paths[li][k + 1]):
                # a one-point pass's record: arrays of length 1
                for metric, value in (point_scores(loss, point.evaluation) or {}).items():
                    scores[metric][li, ai, k] = value
    return scores


# ---- choosing a point ------------------------------------------------------------------

@dataclass
class Choice:
    """The chosen grid point and why: indices, the score and the threshold met."""

    l1_index: int
    alpha_index: int
    metric: str
    rule: str
    mean: np.ndarray   # (L, A) mean score over folds
    se: np.ndarray     # (L, A) standard error of the mean
    threshold: float
    best: tuple = (0, 0)   # (l1 index, alpha index) of the best mean score
    at_grid_edge: Optional[str] = None  # "smallest_alpha" / "largest_alpha": the best is there


def choose(path: CVPath, metric, rule="min", max_features=None):
    """Pick (l1_ratio, alpha) from the cross-validated scores.

    ``min``: the best mean score (first l1_ratio, then largest alpha on ties, as
    scikit-learn); ``1se``: the sparsest full-data fit whose mean score is within
    one standard error of the best (ties: largest alpha); ``max_features=k``
    restricts both to fits with at most k features. The standard error is the
    fold scores' standard deviation (n - 1) over sqrt(K), as glmnet's ``cvsd``.
    """
    if rule not in RULES:
        raise ValueError("selection=%r is not supported; choose one of %s" % (rule, list(RULES)))
    scores = path.scores[metric]
    sign = -1.0 if GREATER_IS_BETTER[metric] else 1.0
    K = scores.shape[2]
    with np.errstate(invalid="ignore"):
        mean = scores.mean(axis=2)
        se = scores.std(axis=2, ddof=1) / np.sqrt(K) if K > 1 else np.zeros_like(mean)
    ok = np.isfinite(mean) & (path.n_features >= 0)
    if max_features is not None:
        ok &= path.n_features <= max_features
    if not np.any(ok):
        if max_features is not None:
            raise ValueError("no grid point has at most %d features; raise max_features or "
                             "extend the alphas" % max_features)
        raise ValueError("no grid point has a finite CV score in every fold: a fold is scored "
                         "at its certified points only, and %d of the %d full-data points "
                         "missed the gap tolerance too; raise max_iter or tol"
                         % (int(np.sum(~path.converged & (path.n_features >= 0))),
                            int(np.sum(path.n_features >= 0))))
    signed = np.where(ok, sign * mean, np.inf)
    best = np.unravel_index(int(np.argmin(signed)), signed.shape)  # row-major: sklearn's order
    threshold = float(signed[best])
    if rule == "1se":
        threshold += float(se[best]) if np.isfinite(se[best]) else 0.0
        within = ok & (signed <= threshold)
        # fewest features, then the largest alpha, then the first l1_ratio
        cands = [(path.n_features[li, ai], -path.alphas[li, ai], li, ai)
                 for li, ai in zip(*np.nonzero(within), strict=True)]
        _, _, li, ai = min(cands)
        chosen = (li, ai)
    else:
        chosen = best
    edge = ("largest_alpha" if best[1] == 0 else "smallest_alpha"
            if best[1] == path.alphas.shape[1] - 1 else None)
    return Choice(int(chosen[0]), int(chosen[1]), metric, rule, mean, se, sign * threshold,
                  best=(int(best[0]), int(best[1])), at_grid_edge=edge)


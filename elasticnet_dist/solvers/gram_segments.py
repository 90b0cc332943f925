"""Early stopping on the one-pass route: the paths solved in segments of alphas.

On the one-pass route every path is solved from its problem's moments and Gram
matrix, without data passes, and each fold's points are scored on its held-out
rows from that fold's own moments (the held-out mean squared error is a
quadratic form in them). The points cost driver (or worker) time only, but they
cost the most where the path heads for the smallest alphas: supports of hundreds
to thousands of features, where the curve has long turned. On 20,000 x 2,000
(40 informative features, 5 folds x 3 l1_ratios x 100 alphas) the paths took
8.1 s over the whole grid against 2.8 s for the grid's first two thirds, and the
curves' minima were at alphas 55-60.

So that the same :class:`~.early_stop.EarlyStop` watch can end them, the paths of
every l1_ratio still running advance together by :data:`SEGMENT` alphas at a time:
each segment's points are solved for the full data and every fold (as jobs on the
driver's threads or the engine's workers), the folds' new points are scored, and
the watch decides whether the l1_ratio goes on. A path resumes where its last
segment ended from the state a checkpoint keeps (:class:`~elasticnet_dist.
checkpoint.SavedPath`: the last two points, which predict the next one, the
cached Gram columns, the deviance ratio), so that **its points are the same to
the last bit as those of the path solved in one go**: an early-stopped search is
the whole grid's search cut at the stop. A segment ships that state and its new
points, never the paths before it.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from .. import progress
from ..checkpoint import SavedPath
from ..passes import PassRequest
from ..sufficient import SufficientStatistics
from .early_stop import EarlyStop
from .newton import drive
from .options import NO_STOPS, PathLimit
from .path import path_steps

log = logging.getLogger("elasticnet_dist")

#: Alphas a segment advances every running path by. The watch sees a stop at the
#: end of the segment it falls in, so up to SEGMENT - 1 points past it are solved
#: and dropped; each segment costs every path a resume (one product with the
#: Gram columns it had cached).
SEGMENT = 10


def held_out_mse(held_out, problem, points):
    """The mean squared error of each of a fold path's ``points`` on its held-out
    rows, from their :class:`SufficientStatistics` ``held_out``:
    ``2 * sum s l(y, eta) / sum s`` (``problem``: the fold's, whose scaling maps
    the points to the original coordinates)."""
    if not points:
        return np.zeros(0)
    wb = [problem.std.to_original(pt.u, pt.intercept) for pt in points]
    stats = held_out.run_pass(PassRequest(coefs=np.array([w for w, _ in wb]),
                                          intercepts=np.array([b for _, b in wb]),
                                          gradient=False))
    return 2.0 * stats["loss_sum"] / stats["weight_sum"]


def solve_segment(moments, spec, l1_ratio, alphas, options, first, last, stops=NO_STOPS,
                  warm=None, resume=None):
    """Points ``first`` .. ``last`` of one path of the one-pass route (``alphas``: the
    whole grid), after the points before ``first``, whose state ``resume`` keeps
    (None: ``first`` is 0). Returns the new points and the :class:`SavedPath` to
    resume from after them, None when the path ended (one of its ``stops``).

    The path is walked over ``alphas[first - t: last + 2]`` with the ``t`` <= 2 points
    of ``resume`` before it: the points predicting the next one are there, and
    the alpha after ``last`` is the one the uninterrupted path looks ahead to."""
    problem = spec.unit(moments, l1_ratio)
    kept = () if resume is None else resume.points
    offset = first - len(kept)
    state = {}

    def keep(_, __, point_state):
        state.update(point_state)

    walk = path_steps(problem, alphas[offset:last + 2], options=options, stops=stops,
                      limit=PathLimit(last - offset),
                      start=None if warm is None or resume is not None else
                      warm.start_for(problem),
                      saved=resume, on_point=keep, count_saved=False)
    points = drive(walk, SufficientStatistics(moments).run_pass)[len(kept):]
    points = [replace(point, evaluation=None) for point in points]
    if len(points) < last - first + 1 or state.get("stopped", False):
        return points, None
    return points, SavedPath([*kept, *points][-2:], state["has_final"], state["ratio_prev"],
                             False, np.array(state["cache_idx"], dtype=np.intp),
                             state["solved"])


def _solve_segment_task(*args):
    """:func:`solve_segment` with one BLAS thread, wherever it runs (the same bits)."""
    with threadpool_limits(1):
        return solve_segment(*args)


def segment_stages(grid, n_folds, spec, l1_ratios, options, stops, warm, watches, score):
    """The segments of an early-stopped search as a generator of job lists (the
    protocol of :meth:`~elasticnet_dist.engines.base.BlockEngine.solve_tasks`: a job
    ``(k + 1, args)`` runs ``_solve_segment_task(moments[k + 1], *args)``, path -1
    the full data's and k >= 0 fold k's). ``watches``: each l1_ratio's
    :class:`EarlyStop`, whose :class:`PathLimit` every path of the l1_ratio shares;
    ``score(li, k, points)``: fold k's held-out scores of those points. Returns
    ``paths[l][0]`` (the full data), ``paths[l][k + 1]`` (fold k), cut where their
    l1_ratio's paths ended."""
    L, A = grid.shape
    paths = [[[] for _ in range(n_folds + 1)] for _ in range(L)]
    resume = {}
    for first in range(0, A, SEGMENT):
        running = [li for li in range(L) if watches[li].limit.last >= first]
        if not running:
            break
        calls = [(li, k, min(first + SEGMENT - 1, watches[li].limit.last))
                 for li in running for k in range(-1, n_folds)]
        results = yield [(k + 1, (spec, l1_ratios[li], grid[li], options, first, last,
                                  stops if k < 0 else NO_STOPS, warm, resume.get((li, k))))
                         for li, k, last in calls]
        for (li, k, _), (points, saved) in zip(calls, results, strict=True):
            paths[li][k + 1].extend(points)
            resume[li, k] = saved
            if k < 0 and saved is None:  # the full data's path ended: so do the folds'
                watches[li].limit.lower(len(paths[li][0]) - 1)
        for li in running:
            watch, end = watches[li], watches[li].limit.last + 1
            for k in range(n_folds):
                new = paths[li][k + 1][first:end]
                for i, value in enumerate(score(li, k, new)):
                    watch.record_score(k, first + i, float(value))
    return [[points[:watch.limit.last + 1] for points in row]
            for row, watch in zip(paths, watches, strict=True)]


def run_stages_here(fn, shared, stages, threads):
    """:meth:`~elasticnet_dist.engines.base.BlockEngine.solve_tasks` on this process's
    ``threads`` (NumPy's linear algebra releases the GIL), each with one BLAS thread."""
    with threadpool_limits(1), ThreadPoolExecutor(threads) as pool:
        try:
            calls = next(stages)
            while True:
                calls = stages.send(list(pool.map(lambda call: fn(shared[call[0]], *call[1]),
                                                  calls)))
        except StopIteration as stop:
            return stop.value


def early_stopped_gram_paths(grid, moments, held_out, problems, options, stops, source, spec,
                             l1_ratios, warm, early_stop, threads):
    """The one-pass route's paths with early stopping (see the module doc): on the
    engine's workers when it runs tasks, else (or when that fails) on ``threads``
    of the driver. ``moments``: the full data's, then each training set's;
    ``held_out``: each fold's :class:`SufficientStatistics`; ``problems[l][k + 1]``:
    fold k's unit problem; ``early_stop``: ``(metric, patience)``. Returns the
    paths and each l1_ratio's :class:`EarlyStop`."""
    n_folds = len(moments) - 1

    def solve(run):
        watches = [EarlyStop(spec.loss, *early_stop, n_folds=n_folds,
                             limit=PathLimit(grid.shape[1] - 1), n_alphas=grid.shape[1],
                             label="l1_ratio %g: " % l1) for l1 in l1_ratios]

        def score(li, k, points):
            return held_out_mse(held_out[k], problems[li][k + 1], points)

        stages = segment_stages(grid, n_folds, spec, l1_ratios, options, stops, warm,
                                watches, score)
        return run(moments, stages), watches

    if source.solve_tasks is not None:
        try:
            paths, watches = solve(partial(source.solve_tasks, _solve_segment_task))
        except Exception as exc:  # noqa: BLE001 - the driver can always do it
            log.warning("solving the paths on the workers failed (%s: %s); solving them on "
                        "the driver", type(exc).__name__, (str(exc).splitlines() or [""])[0])
        else:
            log.info("solved the paths on the workers, %d alphas at a time", SEGMENT)
            for _ in range(sum(len(path) for row in paths for path in row)):
                progress.path_point()
            return paths, watches
    return solve(partial(run_stages_here, solve_segment, threads=threads))

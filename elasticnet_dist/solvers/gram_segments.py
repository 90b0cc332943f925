"""Early stopping on the one-pass route: the paths advance together, by segments.

On the one-pass route every path is solved from its problem's moments and Gram
matrix, without data passes, and each fold's points are scored on its held-out
rows from that fold's own moments (the held-out mean squared error is a
quadratic form in them). The points cost driver time only, but they cost the
most where the path heads for the smallest alphas: supports of hundreds to
thousands of features, where the curve has long turned. On 20,000 x 2,000 (40
informative features, 5 folds x 3 l1_ratios x 100 alphas) the paths took 6.9-7.7 s
over the whole grid against 4.4 s stopped after alphas 72-76, the same choice.

So that the same :class:`~.early_stop.EarlyStop` watch can end them, the paths of
an l1_ratio (the full data's and every fold's) advance :data:`SEGMENT` alphas at a
time; between two segments the folds' new points are scored and the watch
decides whether the l1_ratio goes on. The l1_ratios advance side by side, each
at its own pace. A path is one live generator
(:func:`~.path.path_steps`) paused at the end of each segment (its ``gate``), so
**its points are those of the path solved in one go, bit for bit**: an
early-stopped search is the whole grid's search cut at the stop.

Where they run. A task cannot keep a paused path, and resuming one from a
checkpoint's state rebuilds its cached Gram columns every segment (tried: on
20,000 x 2,000, 150 informative features, the resumed paths as tasks took
8.4-8.5 s against 6.3-7.3 s for the whole grid as tasks). So on an engine that
keeps objects on its workers (Dask's actors:
:meth:`~elasticnet_dist.engines.dask_engine.DaskEngine.host_objects`) every
path lives on a worker (:class:`HostedPath`, built there from its moments as a
whole path's task builds it) and the driver only scores and decides;
elsewhere, with a checkpoint, or when hosting fails, they run on the driver's
threads. The points are the same bits either way (one BLAS thread
each). Measured with 5 folds x 3 l1_ratios x 100 alphas on 2 workers (2 cores),
each way in the same run: on 20,000 x 2,000 (150 informative features; stops
after alphas 96 and 98, where the curves barely turn) hosted 6.3 s, on the
driver's two threads 7.3-7.6 s (the GIL), the whole grid as tasks 5.2-5.5 s; on
20,000 x 4,000 (20 informative; stops after 85-88) hosted 12.8-13.4 s, on the
driver 11.2-12.0 s: sending the six problems' statistics (768 MB) and building
the hosted paths took 3.5 s of it, each worker then computed 7.5-7.9 s. With
more workers than the driver has cores the hosted paths spread further; the
driver keeps none of their cached Gram columns. Keeping every worker a segment
ahead of the driver's decisions did not help (7.1-7.3 s against 6.4-7.1 s on
the first table), so it was dropped.
"""
from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from .. import progress
from ..passes import PassRequest
from ..sufficient import SufficientStatistics
from .early_stop import EarlyStop
from .options import NO_STOPS, PathLimit
from .path import path_steps

log = logging.getLogger("elasticnet_dist")

#: Alphas every running path of an l1_ratio advances by between two looks of its
#: watch. A stop falls inside a segment: up to SEGMENT - 1 points past it are solved
#: and dropped.
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


class PausedPath:
    """One path of the one-pass route as a live generator, advanced a segment at a
    time: :meth:`advance` solves its points up to index ``last`` and returns the
    points it had not returned. With a checkpoint, ``saved`` (a
    :class:`~elasticnet_dist.checkpoint.SavedPath`) is where it resumes and
    ``save(i, point, state)`` is told of every new point, as for a whole path."""

    def __init__(self, moments, problem, alphas, options, stops, limit, start=None,
                 saved=None, save=None):
        self.gate = PathLimit(-1)  # raised by advance(), never lowered
        self.points = [] if saved is None else list(saved.points)
        self.ended, self._returned, self._request, self._save = False, 0, None, save
        self._run_pass = SufficientStatistics(moments).run_pass
        self._steps = path_steps(problem, alphas, options=options, stops=stops, limit=limit,
                                 start=start, gate=self.gate, saved=saved,
                                 on_point=self._solved)

    def _solved(self, i, point, state):
        self.points.append(point)
        if self._save is not None:
            self._save(i, point, state)

    def advance(self, last):
        """Solve up to point ``last`` (fewer where the path ends); the points not
        returned before (a resumed path's saved ones may reach beyond ``last``)."""
        self.gate.last = last
        try:
            request = next(self._steps) if self._request is None else \
                self._steps.send(None)
            while request is not self.gate:
                request = self._steps.send(self._run_pass(request))
            self._request = request
        except StopIteration:
            self.ended = True
        new, self._returned = self.points[self._returned:], len(self.points)
        return [replace(point, evaluation=None) for point in new]


def _l1_ratio_segments(paths, watch, score, n_alphas):
    """One l1_ratio's segments as a generator: yields the paths to advance and the
    index to reach, receives their new points, records the folds' scores.
    ``paths[0]`` is the full data's (its end ends the folds' too)."""
    limit = watch.limit
    solved = [[] for _ in paths]
    scored = [0] * (len(paths) - 1)  # each fold's points scored so far
    for first in range(0, n_alphas, SEGMENT):
        if first > limit.last:
            break
        last = min(first + SEGMENT - 1, limit.last)
        results = yield [(path, last) for path in paths]
        for points, new in zip(solved, results, strict=True):
            points.extend(new)
        if paths[0].ended:
            limit.lower(len(solved[0]) - 1)
        for k, points in enumerate(solved[1:]):
            # whole segments' points at a time: a resumed path may be ahead of the
            # others, and its scores must not depend on how its points are batched
            while True:
                start = scored[k]
                end = min((start // SEGMENT + 1) * SEGMENT, limit.last + 1)
                if start >= end or len(points) < end:
                    break
                for i, value in enumerate(score(k, points[start:end])):
                    watch.record_score(k, start + i, float(value))
                scored[k] = end
    return [points[:limit.last + 1] for points in solved]


def _run_side_by_side(stages, pool):
    """Drive the l1_ratios' segment generators on ``pool``: each yields ``(path,
    last)`` calls and receives their new points once all its calls are done, while
    the other l1_ratios' calls still run; returns what each generator returns."""
    answers, pending = [None] * len(stages), {}

    def advance(g, values):
        try:
            calls = stages[g].send(values)
        except StopIteration as stop:
            answers[g] = stop.value
            pending.pop(g, None)
        else:
            pending[g] = [pool.submit(path.advance, last) for path, last in calls]

    for g in range(len(stages)):
        advance(g, None)
    while pending:
        ready = [g for g, futures in pending.items() if all(f.done() for f in futures)]
        if not ready:  # wait on the calls still running (done ones would not block)
            wait([f for futures in pending.values() for f in futures if not f.done()],
                 return_when=FIRST_COMPLETED)
        for g in ready:
            advance(g, [f.result() for f in pending[g]])
    return answers


class HostedPath:
    """A :class:`PausedPath` kept on a worker (``host_objects``): built there from its
    problem's moments, as a whole path's task builds it, advanced by the driver's
    calls. ``advance`` is told the l1_ratio's current limit (its copy here is not
    the driver's watch's) and returns the new points and whether the path ended."""

    def __init__(self, moments, spec, l1_ratio, alphas, options, stops, start):
        self._limit = PathLimit(len(alphas) - 1)
        with threadpool_limits(1):  # one BLAS thread, as on the driver: the same bits
            self._path = PausedPath(moments, spec.unit(moments, l1_ratio), alphas, options,
                                    stops, self._limit, start)

    def advance(self, last, limit):
        self._limit.lower(limit)
        with threadpool_limits(1):
            points = self._path.advance(last)
        return points, self._path.ended


class RemotePath:
    """The driver's handle of a :class:`HostedPath` (object ``index`` of ``hosted``):
    what the segments see of a path, as of a :class:`PausedPath` here."""

    def __init__(self, hosted, index, limit):
        self._hosted, self._index, self._limit = hosted, index, limit
        self.ended = False

    def advance(self, last):
        points, self.ended = self._hosted.call(self._index, "advance", last, self._limit.last)
        for _ in points:
            progress.path_point()
        return points


def _segmented_search(loss, grid, held_out, problems, early_stop, make_paths, threads):
    """Every l1_ratio's paths (``make_paths(li, watch)``: the full data's, then each
    fold's) advanced segment by segment on a pool of ``threads``, each l1_ratio
    watched by its own :class:`EarlyStop`; returns the points and the watches."""
    n_folds, n_alphas = len(problems[0]) - 1, grid.shape[1]
    watches, stages = [], []
    for li, row in enumerate(problems):
        watch = EarlyStop(loss, *early_stop, n_folds=n_folds,
                          limit=PathLimit(n_alphas - 1), n_alphas=n_alphas,
                          label="l1_ratio %g: " % row[0].l1_ratio)
        watches.append(watch)
        stages.append(_l1_ratio_segments(
            make_paths(li, watch), watch,
            lambda k, points, row=row: held_out_mse(held_out[k], row[k + 1], points), n_alphas))
    with threadpool_limits(1), ThreadPoolExecutor(threads) as pool:
        return _run_side_by_side(stages, pool), watches


def early_stopped_gram_paths(grid, moments, held_out, problems, options, stops, spec,
                             warm, early_stop, threads, checkpoint=None, host_objects=None):
    """The one-pass route's paths with early stopping (see the module doc).
    ``moments``: the full data's, then each training set's; ``held_out``: each
    fold's :class:`SufficientStatistics`; ``problems[l][k]``: the unit problems
    (the full data's first); ``early_stop``: ``(metric, patience)``.

    Where they run: with ``host_objects`` (an engine that keeps objects on its
    workers: Dask) every path lives on a worker (:class:`HostedPath`) and the
    driver only scores and decides; if that fails, and otherwise, on
    ``threads`` of the driver, each with one BLAS thread. With a ``checkpoint``
    (always on the driver) every path resumes from its saved points and saves
    its new ones (the points past the stop of a run that was cut short are read
    back and dropped). The points are the same wherever they are solved.
    Returns ``paths[l][0]`` (the full data), ``paths[l][k + 1]`` (fold k), and
    each l1_ratio's :class:`EarlyStop`."""
    starts = [[None if warm is None else warm.start_for(unit) for unit in row]
              for row in problems]
    if checkpoint is None and host_objects is not None:
        per_row = len(moments)
        jobs = [(k, (spec, row[0].l1_ratio, grid[li], options, stops if k == 0 else NO_STOPS,
                     starts[li][k]))
                for li, row in enumerate(problems) for k in range(per_row)]
        try:
            with host_objects(HostedPath, moments, jobs) as hosted:
                out = _segmented_search(
                    spec.loss, grid, held_out, problems, early_stop,
                    lambda li, watch: [RemotePath(hosted, li * per_row + k, watch.limit)
                                       for k in range(per_row)], len(jobs))
        except Exception as exc:  # noqa: BLE001 - the driver can always do it
            log.warning("solving the paths on the workers failed (%s: %s); solving them on "
                        "the driver", type(exc).__name__, (str(exc).splitlines() or [""])[0])
            progress.expect_points(grid.size * per_row)  # the points are counted again
        else:
            log.info("solved the %d paths on the workers, %d alphas at a time", len(jobs),
                     SEGMENT)
            return out

    def paths(li, watch):
        return [PausedPath(m, unit, grid[li], options, stops if k == 0 else NO_STOPS,
                           watch.limit, starts[li][k],
                           *(() if checkpoint is None else
                             (checkpoint.saved_path(li, k - 1), checkpoint.point_saver(li, k - 1))))
                for k, (m, unit) in enumerate(zip(moments, problems[li], strict=True))]

    return _segmented_search(spec.loss, grid, held_out, problems, early_stop, paths, threads)

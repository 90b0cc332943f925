"""Regularization paths: many alphas, warm starts, strong rules, shared passes.

A path solves the elastic net at ``alpha_1 > alpha_2 > ... > alpha_m`` (the
same rows, scaling and l1_ratio), each point warm-started at the previous
solution. Three things make it cheap:

- **pass reuse**: the pass that certifies point ``k`` (duality gap below the
  tolerance) is also the first evaluation of point ``k + 1``: the loss and the
  gradient do not depend on alpha, so a point that converges in one Newton
  step costs one pass;
- **sequential strong rules** (Tibshirani et al. 2012): the first working set
  of point ``k`` is the support of point ``k - 1`` plus the features with
  ``|g_j| >= a_j(alpha_k) - (a_j(alpha_{k-1}) - a_j(alpha_k))``, ``g`` the
  gradient at the previous solution and ``a_j(alpha)`` the L1 weight of
  feature j. Their Hessian columns are fetched in advance, in the pass that
  certifies point ``k - 1``. The rule can be wrong; it never changes the answer,
  because every point is certified by a duality gap over all features (the
  KKT conditions of every feature enter it), and violators join the working set;
- for the squared loss the Gram entries fetched for one point serve every later one;
- **points solved ahead** (on tables with many rows, :func:`~.routes.solves_ahead`):
  each step also minimises its quadratic model at the next alpha and the same
  pass evaluates that point, so that point ``k``'s certifying pass is point
  ``k + 1``'s first step as well (100,000 x 500, a 5-fold, 3-l1_ratio search:
  66 passes instead of 107).

The grid follows glmnet and scikit-learn: ``alpha_max`` (the smallest alpha
that selects nothing) down to ``eps * alpha_max``, geometrically.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import progress
from ..errors import BadValuesError
from ..params import PARAMS
from .newton import AlongPath, Evaluation, GramCache, drive, newton_steps, solve_newton, union
from .options import DEFAULT_OPTIONS, NO_STOPS, SolverOptions

#: glmnet's rule for a ridge path (l1_ratio = 0, where no finite alpha zeroes every
#: coefficient): its grid is computed as for l1_ratio = 0.001.
RIDGE_GRID_L1_RATIO = 1e-3


def default_eps(n_rows, n_features):
    """glmnet's ``lambda.min.ratio``: 1e-3 when n > p, else 1e-2."""
    return 1e-3 if n_rows > n_features else 1e-2


def alpha_grid(alpha_max, n_alphas=100, eps=1e-3):
    """``n_alphas`` values from ``alpha_max`` down to ``eps * alpha_max``, geometric."""
    if not np.isfinite(alpha_max):
        raise BadValuesError("no feature can enter the path: every feature column is constant "
                             "(or has penalty factor 0), so nothing can be selected and there "
                             "is no grid of alphas to search")
    resolution = np.finfo(np.float64).resolution
    if alpha_max <= resolution:  # a constant label: every alpha selects nothing
        return np.full(n_alphas, resolution)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


def alpha_max_of(problem, source=None, tol=PARAMS["tol"].default):
    """Smallest alpha at which every penalised coefficient of ``problem`` is zero.

    ``max_j |g_j| / a_j`` over penalised features, ``a_j`` the L1 weight at
    ``alpha = 1`` and ``g`` the gradient at the fit of the intercept and the
    unpenalised features (penalty factor 0) alone: the null model when there
    are none (no pass), else a short solve on ``source``. Infinite without an
    L1 part. ``tol``: the relative tolerance of that solve.
    """
    pen = problem.penalty
    unit = pen.l1 / problem.alpha if problem.alpha > 0 else pen.l1 * 0
    ok = unit > 0
    if not np.any(ok):
        return np.inf
    if not np.any(pen.unpenalised):
        return float(np.max(pen.magnitude(problem.null_gradient())[ok] / unit[ok]))
    restricted = dataclasses.replace(problem, penalty=pen.with_fixed(~pen.unpenalised))
    res = solve_newton(restricted, source, options=SolverOptions(tol=tol, max_iter=200))
    grad = problem.evaluate(source.run_pass(problem.request([(res.u, res.intercept)])))[0].grad
    return float(np.max(pen.magnitude(grad)[ok] / unit[ok]))


def path_grid(spec, moments, l1_ratio, source, *, alphas=None, n_alphas=100, eps=None,
              tol=PARAMS["tol"].default):
    """The alphas of one path, decreasing: the given ``alphas`` sorted, or glmnet's and
    scikit-learn's grid (:func:`alpha_grid`) from ``alpha_max`` of the table whose
    ``moments`` these are (a ridge path's as for l1_ratio = RIDGE_GRID_L1_RATIO)
    down to ``eps`` of it (:func:`default_eps` when None). ``source`` serves the
    short solve :func:`alpha_max_of` needs when some features are unpenalised."""
    if alphas is not None:
        return np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
    eps = default_eps(moments.n_rows, moments.mean_x.shape[0]) if eps is None else eps
    unit = spec.unit(moments, max(l1_ratio, RIDGE_GRID_L1_RATIO))
    return alpha_grid(alpha_max_of(unit, source, tol=tol), n_alphas, eps)


@dataclass
class PathPoint:
    """One solved point of a path, in the solver's (scaled) coordinates.

    ``evaluation`` holds the sums of the pass that certified it (with the held-out
    sums in cross-validation) but not its gradient or Hessian blocks, which every
    point of every path would keep (:func:`point_record`); None when that pass
    was not made at the final point (no convergence).
    """

    alpha: float
    u: np.ndarray
    intercept: float
    gap: float
    tol: float
    converged: bool
    n_iter: int
    n_passes: int
    evaluation: Optional[dict] = None

    @property
    def n_selected(self):
        return int(np.count_nonzero(self.u))


def point_record(stats):
    """The statistics of a pass worth keeping with its path point: the sums, without
    the gradient (p numbers) and the Hessian blocks (h^2 each), which would make a
    cross-validation's points hold (K + 1) L A (p + h^2) numbers (2,000 x 500,
    logistic: 2.2 GB)."""
    return {key: value for key, value in stats.items()
            if key != "grad" and not key.startswith("hess")}


def strong_set(unit, u, grad, alpha, prev_alpha):
    """Features the sequential strong rule keeps at ``alpha`` (plus the support and
    the unpenalised features), from the gradient at the solution for ``prev_alpha``."""
    pen = unit.penalty
    # |g_j| >= 2 a_j(alpha) - a_j(prev_alpha), the L1 weights linear in alpha
    keep = pen.magnitude(grad) >= pen.l1 * ((2.0 * alpha - prev_alpha) / unit.alpha)
    keep |= pen.unpenalised
    if u is not None:
        keep |= u != 0
    keep &= ~pen.fixed
    return np.flatnonzero(keep)


def predicted_point(points, alpha):
    """Where the solution at ``alpha`` should be, from the last two points of a path
    (None before there are two): the secant through them, in alpha.

    On a fixed support S with fixed signs s the unit problem's solution solves
    ``(Q_SS + alpha c_S) x_S = -(r_S + alpha a_S s)``: affine in alpha for the
    lasso (c = 0), smooth otherwise, so that the secant misses by O(step^2)
    where warm starting at the last point misses by O(step). Coordinates
    predicted to cross zero are predicted at zero; features about to join
    are not predicted at all. The solver only starts there (the answer is
    the same to its tolerance): on the CV benchmark's 18 paths (100,000 x
    2,000, 100 alphas each) the conjugate-gradient products fell from 16,681
    to 8,277 and the paths' time by 20%.
    """
    if len(points) < 2:
        return None
    before, last = points[-2], points[-1]
    t = (alpha - last.alpha) / (last.alpha - before.alpha)
    guess = last.u + t * (last.u - before.u)
    guess[np.sign(guess) != np.sign(last.u)] = 0.0
    return guess


#: glmnet's rule: no early stop before this many points (its ``mnlam``).
MIN_POINTS_BEFORE_STOP = 5
#: :func:`cut_step` never cuts a step below this ratio of alphas (glmnet's default
#: grid of 100 alphas over three decades steps by 1.072)...
MAX_STEP_RATIO = 1.08
#: ...and cuts a step when its strong rule would admit more than twice the support,
#: or the support and this many features, whichever is more.
STEP_FEATURES = 64


def path_steps(unit, alphas, *, options=DEFAULT_OPTIONS, stops=NO_STOPS, limit=None,
               saved=None, on_point=None, ahead=False, start=None, watch=None, gate=None):
    """Solve ``unit.at_alpha(a)`` for every ``a`` in ``alphas`` (decreasing), as a
    generator of passes (see :func:`~.newton.newton_steps`); returns the list of
    :class:`PathPoint`.

    ``stops`` (:class:`~.options.PathStops`): stop after the first point with more
    than ``max_features`` selected features (glmnet's ``dfmax``); glmnet's
    saturation rules (``glmnet.control``), from the fifth point on: stop once
    the deviance ratio ``1 - loss / null_loss`` exceeds ``devmax`` (0.999 in
    glmnet), or grew by less than ``fdev`` (1e-5) of itself since the
    previous point: the rest of the path then fits noise (or, p > n, heads
    for perfect separation) and costs the most passes. ``limit``
    (:class:`~.options.PathLimit`, shared with other paths): stop after point
    ``limit.last``; an early stop here lowers it for them.

    Checkpoints (squared loss, :mod:`elasticnet_dist.checkpoint`): ``on_point(i,
    point, state)`` is called after each point with what the next one needs;
    ``saved`` (a :class:`~elasticnet_dist.checkpoint.SavedPath`) resumes after its
    last point with that state rebuilt, so that the remaining points are the same
    to the last bit as those of an uninterrupted path.

    ``ahead``: each step of a point also solves the next point's model and has the
    pass evaluate it (:class:`~.newton.Ahead`), which is worth it where passes are
    data passes: point k's certifying pass is then point k + 1's first step too.
    Not with checkpoints (a resumed path would not have the point ahead).

    ``start``: ``(u, b)`` in the unit's scaled coordinates, a point near the first
    alpha's solution (a previous run's, :class:`~.cv.WarmStart`): the first point
    starts there instead of at the null model, without the strong rule (no
    gradient is known there yet; the working set is the start's support and the
    largest violators of its first pass).

    ``gate`` (a :class:`~.options.PathLimit`): before solving a point past
    ``gate.last`` the path yields ``gate`` itself instead of a pass request, and
    goes on when sent anything once the caller has raised it (a path advanced a
    segment at a time, :mod:`.gram_segments`).

    ``watch(i, point)`` is told of every solved grid point (a fold's path in a
    search with early stopping, :class:`~.early_stop.EarlyStop`: it may lower
    ``limit``).
    """
    if ahead and (saved is not None or on_point is not None):
        raise ValueError("a path solved ahead cannot be checkpointed")
    squared = unit.loss.quadratic
    cache = GramCache() if squared else None
    if start is not None:
        walk = _Walk(u=np.asarray(start[0], dtype=np.float64), b=float(start[1]))
    else:
        walk = _Walk(grad=unit.null_gradient(),
                     prev=alpha_max_of(unit) if not np.any(unit.penalty.unpenalised) else None)
    points = []
    if saved is not None:
        points = list(saved.points)
        for _ in points:
            progress.path_point()
        if saved.stopped or len(points) >= len(alphas):
            if limit is not None and saved.stopped:
                limit.lower(len(points) - 1)
            return points
        walk.u, walk.b, walk.grad, walk.start, walk.ratio_prev = yield from _resume(
            unit, saved, cache)
        # as many solved points as the uninterrupted path had there (its cut steps too)
        walk.solved = max(saved.solved, len(points))
        walk.prev = points[-1].alpha
    for i, alpha in enumerate(alphas):
        if i < len(points):
            continue
        while gate is not None and i > gate.last:
            yield gate  # paused until the caller raises the gate
        if limit is not None and i > limit.last:
            break
        nxt = alphas[i + 1] if i + 1 < len(alphas) else None
        ended = False
        # a coarse grid's long steps are cut where the strong rule would let many
        # features in at once; the cut steps' points predict the next ones (the trail
        # starts at the last reported point, so a resumed path takes the same steps)
        trail = points
        step = cut_step(unit, walk.u, walk.grad, walk.prev, alpha) if options.screening \
            else alpha
        while step > alpha:
            if trail is points:
                trail = points[-1:]
            _, res, final, ev = yield from _solve_point(unit, step, alpha, walk, cache, trail,
                                                        options, ahead)
            trail = [*trail[-1:], _Solved(float(step), res.u)]
            walk.advance(step, res, final, ev)
            walk.solved += 1
            ended = walk.ends(unit, ev, unit.n_selected(res.u), stops)
            if ended:  # as the fine grid would have ended: point i is not reached
                break
            step = cut_step(unit, walk.u, walk.grad, walk.prev, alpha)
        if ended:
            if limit is not None:
                limit.lower(i - 1)
            break
        _, res, final, ev = yield from _solve_point(unit, alpha, nxt, walk, cache, trail,
                                                    options, ahead)
        points.append(PathPoint(float(alpha), res.u, res.intercept, res.gap, res.tol_abs,
                                bool(res.converged), res.n_iter, res.n_passes,
                                None if final is None else point_record(final.stats)))
        walk.advance(alpha, res, final, ev)
        walk.solved = max(walk.solved + 1, i + 1)
        stop = walk.ends(unit, ev, unit.n_selected(points[-1].u), stops)
        if on_point is not None:
            on_point(i, points[-1], {"has_final": final is not None,
                                     "ratio_prev": walk.ratio_prev, "stopped": bool(stop),
                                     "solved": walk.solved,
                                     "cache_idx": cache.idx if squared else []})
        progress.path_point()
        if watch is not None:
            watch(i, points[-1])
        if stop:
            if limit is not None:
                limit.lower(i)
            break
    return points


@dataclass
class _Walk:
    """Where a path stands after its last solved point: the solution ``(u, b)``, the
    evaluation left by its last pass (``start``: the next point's first pass) and its
    gradient, the alpha it was solved at (``prev``), the deviance ratio seen last,
    and the points solved so far (a coarse grid's cut steps included)."""

    u: Optional[np.ndarray] = None
    b: Optional[float] = None
    start: Optional[Evaluation] = None
    grad: Optional[np.ndarray] = None
    prev: Optional[float] = None
    ratio_prev: Optional[float] = None
    solved: int = 0

    def advance(self, alpha, res, final, ev):
        """The point just solved at ``alpha``: its result, final evaluation and ``ev``."""
        self.u, self.b, self.start, self.prev = res.u, res.intercept, final, alpha
        self.grad = None if ev is None else ev.grad

    def ends(self, unit, ev, n_selected, stops):
        """Whether the path ends after the point just solved (:func:`_path_ends`);
        records its deviance ratio."""
        stop, self.ratio_prev = _path_ends(unit, ev, n_selected, self.ratio_prev,
                                           self.solved, stops)
        return stop


def _path_ends(unit, ev, n_selected, ratio_prev, solved, stops):
    """``(stop, deviance ratio)`` after a solved point: more than ``max_features``
    selected (glmnet's dfmax), or, from the MIN_POINTS_BEFORE_STOP-th point on, the
    deviance ratio ``1 - loss / null_loss`` above ``devmax`` or grown by less than
    ``fdev`` of itself since the previous point (glmnet's saturation rules)."""
    max_features, devmax, fdev = stops.max_features, stops.devmax, stops.fdev
    stop = max_features is not None and n_selected > max_features
    if ev is not None and (devmax is not None or fdev is not None) and unit.null_loss > 0:
        ratio = 1.0 - ev.loss / unit.null_loss
        if solved >= MIN_POINTS_BEFORE_STOP:
            stop |= devmax is not None and ratio > devmax
            stop |= (fdev is not None and ratio_prev is not None
                     and ratio - ratio_prev < fdev * ratio)
        ratio_prev = ratio
    return stop, ratio_prev


def cut_step(unit, u, grad, prev, alpha, support=None):
    """The next alpha to solve on the way from ``prev`` down to ``alpha``: ``alpha``
    itself, unless the sequential strong rule at ``alpha`` (from the gradient at
    ``prev``) would let many more features in than the support holds, in which case
    the step is halved (geometrically) until it would not, or until it is no longer
    than :data:`MAX_STEP_RATIO`.

    Warm starts and strong rules assume neighbouring alphas: across a long step the
    working set jumped from the support to thousands of features and the Newton
    steps from a far start took many passes (riboflavin, 5 alphas: more than 600 s
    where 100 alphas took 11.6 s; Prostate_GE, 10 alphas: 216 s and 21.9 GB). A
    grid whose steps let few features in at a time (glmnet's default of 100, or
    50 alphas on a table with many more rows than columns) is walked as given."""
    if grad is None or prev is None or not np.isfinite(prev) or alpha <= 0:
        return alpha
    if support is None:
        support = int(np.count_nonzero(u)) if u is not None else 0
    allowed = max(2 * support, support + STEP_FEATURES)
    step = alpha
    while prev > step * MAX_STEP_RATIO and strong_set(unit, u, grad, step, prev).size > allowed:
        step = float(np.sqrt(prev * step))
    return step


@dataclass
class _Solved:
    """A cut step's solution: what :func:`predicted_point` reads of a point."""

    alpha: float
    u: np.ndarray


def _solve_point(unit, alpha, nxt, walk, cache, points, options, ahead=False):
    """One point of a path, warm-started from where the ``walk`` stands (or from the
    point solved ahead for this alpha, when its objective is lower) and started from
    the prediction through the last two of ``points`` (a generator of passes):
    ``(problem, result, final evaluation, its Evaluation or None)``. ``ahead``: solve
    the next point ahead at every step (:class:`~.newton.Ahead`)."""
    problem = unit.at_alpha(alpha)
    u, b, grad, prev, start = walk.u, walk.b, walk.grad, walk.prev, walk.start
    ws_init = look = ahead_alpha = None
    if options.screening and grad is not None and prev is not None and np.isfinite(prev):
        ws_init = strong_set(unit, u, grad, alpha, max(prev, alpha))
    if start is not None and _better_ahead(problem, start, u):
        u, b, start = start.ahead.u, start.ahead.b, start.ahead.evaluation
        if ws_init is not None:
            ws_init = union(ws_init, np.flatnonzero(u), size=u.shape[0])
    if options.screening and nxt is not None:
        look = functools.partial(_strong_candidates, unit, alpha=nxt, prev_alpha=alpha)
    if ahead and nxt is not None:
        ahead_alpha = functools.partial(_next_alpha, unit, alpha, nxt, options.screening)
    along = AlongPath(start=start, cache=cache, ws_init=ws_init, lookahead=look,
                      guess=predicted_point(points, alpha), ahead_alpha=ahead_alpha)
    res, final = yield from newton_steps(problem, u, b, options=options, along=along)
    ev = None if final is None else final.point or problem.evaluate(final.stats)[0]
    return problem, res, final, ev


def _next_alpha(unit, alpha, nxt, screening, u, grad):
    """The alpha a path solves after ``alpha`` on its way to the grid's ``nxt``, as seen
    from the point ``u`` with gradient ``grad`` (:func:`cut_step`)."""
    return cut_step(unit, u, grad, alpha, nxt) if screening else nxt


def _better_ahead(problem, start, u):
    """Whether the evaluation ``start`` (at ``u``, the last point of the path) holds a
    point solved ahead for ``problem``'s alpha with a lower objective there."""
    ahead = start.ahead
    if ahead is None or ahead.evaluation is None or ahead.alpha != problem.alpha:
        return False
    return (problem.objective(_loss(ahead.evaluation.stats), ahead.u)
            <= problem.objective(_loss(start.stats), u))


def _loss(stats):
    """The mean loss of a one-point pass."""
    return float(stats["loss_sum"][0]) / float(stats["weight_sum"])


def _resume(unit, saved, cache):
    """The state after a saved path's last point, rebuilt with passes (on sufficient
    statistics: no data pass): the Gram columns cached then (every entry is the
    same whichever order they were fetched in) and the evaluation of that point."""
    last = saved.points[-1]
    problem = unit.at_alpha(last.alpha)
    u, b = last.u, last.intercept
    if saved.cache_idx.size:
        new = saved.cache_idx
        stats = yield problem.request([(u, b)], hessian_rows=new, hessian_cols=new)
        cache.extend(new, problem.scaled_hessian(stats, new, new)[0])
    grad = start = None
    if saved.has_final:
        stats = yield problem.request([(u, b)])
        start = Evaluation(stats, np.zeros(0, dtype=np.intp))
        grad = problem.evaluate(stats)[0].grad
    return u, b, grad, start, saved.ratio_prev


def solve_path(unit, alphas, source, **settings):
    """:func:`path_steps` with every pass run on ``source``."""
    return drive(path_steps(unit, alphas, **settings), source.run_pass)


def _strong_candidates(unit, grad, alpha, prev_alpha):
    """The strong set a point's lookahead fetches for the next alpha solved: the next
    grid point, or the first cut step towards it (:func:`cut_step`; the support is
    the features at the KKT boundary of the point just solved)."""
    boundary = unit.penalty.l1 * (prev_alpha / unit.alpha) * (1 - 1e-6)
    support = int(np.count_nonzero((unit.penalty.magnitude(grad) >= boundary) & (boundary > 0)))
    step = cut_step(unit, None, grad, prev_alpha, alpha, support=support)
    return strong_set(unit, None, grad, step, prev_alpha)

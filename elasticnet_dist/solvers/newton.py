"""Working-set proximal Newton: a handful of data passes per fit.

Each outer iteration is **one** pass at the current point ``(u, b')`` that
returns the loss, the full gradient (for the duality gap and the choice of
features) and the Hessian of the loss restricted to a working set ``H``:

- squared loss: the Hessian is the weighted Gram matrix ``Z'SZ/W``; it does not
  depend on the point, so only the entries for features new to ``H`` are
  computed (``n * |new| * |H|`` flops) and the rest is cached on the driver;
- logistic loss: ``Z_H' diag(s p (1 - p)) Z_H / W`` at the current point
  (glmnet's IRLS weights), together with the intercept couplings.

The driver then minimises the quadratic model of the objective over ``H``,

    g_H.d + 1/2 d'Q d + P(u_H + d),

exactly (quadratic.py), which for the squared loss is the exact minimiser
over ``H``. The logistic step is accepted when the objective decreases by a
fraction of the model's prediction (Armijo), and otherwise halved at the cost
of a pass. The next working set holds the support and the largest violators of
the optimality conditions (celer/skglm's doubling rule ``|H| = 2 |support|``),
chosen from the gradient of the pass just made. The fit stops when the duality
gap is below ``tol_abs``.

Along a path (``AlongPath.ahead_alpha``) each step can also minimise the same
model with the penalty at the path's next alpha; the pass then evaluates that
point too (:class:`Ahead`), and the next point of the path starts there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .base import SolverResult, at_null, initial_point
from .options import DEFAULT_OPTIONS
from .quadratic import solve_qp
from ..passes import points_of
from ..problem import PointEval

ARMIJO = 1e-4
MAX_HALVINGS = 30
ROUNDING = 1e-14


def choose_working_set(problem, u, grad, size, exclude_zero=None):
    """Support of ``u`` plus the ``size - |support|`` largest KKT violators."""
    pen = problem.penalty
    free = ~pen.fixed
    if not pen.has_l1:
        return np.flatnonzero(free)  # no L1 part: nothing is sparse
    at_zero = pen.magnitude(u) == 0
    keep = free & (~at_zero | pen.unpenalised)
    score = np.where(at_zero, np.maximum(pen.magnitude(grad) - pen.l1, 0.0), 0.0)
    score[~free | keep] = 0.0
    if exclude_zero is not None:
        score[exclude_zero] = 0.0
    slots = max(size - int(keep.sum()), 0)
    candidates = np.flatnonzero(score > 0)
    if candidates.size > slots:
        order = np.argsort(-score[candidates], kind="stable")
        candidates = candidates[order[:slots]]
    chosen = keep.copy()
    chosen[candidates] = True
    return pen.whole_groups(np.flatnonzero(chosen), within=np.flatnonzero(free))


class GramCache:
    """Scaled Gram entries Z_i'SZ_j/W of the features seen so far (squared loss).

    ``G`` (k x k, in the order of ``idx``) is the top-left corner of a buffer
    with room to grow, so that a feature joining copies its own row and column
    only, not the whole cache (along the CV benchmark's paths the cache reached
    1,500 features and a full copy per join cost 0.5 ms)."""

    def __init__(self):
        self.idx = np.zeros(0, dtype=np.intp)
        self._buffer = np.zeros((0, 0))
        self._where = np.zeros(0, dtype=np.intp)  # feature -> position in idx, -1: none

    @property
    def G(self):
        k = self.idx.size
        return self._buffer[:k, :k]

    def _positions(self, H):
        H = np.asarray(H, dtype=np.intp)
        if H.size and H.max() >= self._where.size:
            grown = np.full(int(H.max()) + 1, -1, dtype=np.intp)
            grown[:self._where.size] = self._where
            self._where = grown
        return self._where[H]

    def missing(self, H):
        """The features of ``H`` not in the cache, in the order of ``H``."""
        H = np.asarray(H, dtype=np.intp)
        return H[self._positions(H) < 0]

    def cached(self, H):
        """The features of ``H`` in the cache, in the order of ``H``."""
        H = np.asarray(H, dtype=np.intp)
        return H[self._positions(H) >= 0]

    def marks(self, H):
        """Booleans over the cache's features (the order of ``idx``): those in ``H``."""
        out = np.zeros(self.idx.size, dtype=bool)
        where = self._positions(H)
        out[where[where >= 0]] = True
        return out

    def extend(self, new, block):
        """``block`` is new x (old + new) in the order of ``concat(idx, new)``."""
        k = self.idx.size
        m = k + new.size
        if m > self._buffer.shape[0]:
            grown = np.empty((max(m, 3 * self._buffer.shape[0] // 2),) * 2)
            grown[:k, :k] = self.G
            self._buffer = grown
        G = self._buffer
        G[k:m, :k] = block[:, :k]
        G[:k, k:m] = block[:, :k].T
        G[k:m, k:m] = 0.5 * (block[:, k:] + block[:, k:].T)
        self._positions(new)  # grows the lookup table
        self._where[new] = np.arange(k, m)
        self.idx = np.concatenate([self.idx, new])

    def block(self, H):
        p = self._positions(H)
        return self.G[p][:, p]  # rows first: about 1.5x faster than np.ix_ here

    def model(self, H):
        """(coords, Q): the Gram block of the working set ``H`` (``coords = H``), or,
        when ``H`` fills at least WHOLE_CACHE_SHARE of the cache, the whole cache in
        its own order (``coords = idx``; the caller holds the coordinates outside
        ``H`` at zero), which spares copying a block nearly as large as the cache:
        along the CV benchmark's paths the working set is 95% of the cache on
        average, and the copy took 2 ms per path point."""
        if H.size and H.size >= WHOLE_CACHE_SHARE * self.idx.size:
            return self.idx, self.G
        return H, self.block(H)


#: See :meth:`GramCache.model`.
WHOLE_CACHE_SHARE = 0.75


def _qp_tolerance(problem, tol, tol_abs):
    """How exactly each quadratic model is solved (largest KKT violation on the
    working set).

    A violation ``r`` of the model's optimality conditions leaves about
    ``|r|^2 / (2 lambda)`` of objective on the table (``lambda`` the model's
    curvature, about 1 for standardized columns): a fraction of ``tol_abs``
    when ``|r| <= 0.1 sqrt(tol_abs / p)``. Below that the outer duality gap,
    which certifies every fit, cannot tell; large models (conjugate gradients)
    then stop early. Never below 1e-13 of the null gradient (rounding).

    The gap can be more sensitive through its dual point, though: a
    coordinate at zero whose gradient exceeds its L1 weight ``a_j`` by ``r``
    shrinks the dual point by ``a_j / (a_j + r)``, which costs about
    ``(r / a_j) 2 L`` of gap (``L <= D0 / 2W`` the loss). The second value
    returned, ``|r| <= 0.1 tol min_j a_j``, bounds that; the solver switches
    to it when an iteration fails to shrink the gap (see :data:`STALL`). A
    dense lasso (no ridge curvature to help) otherwise stalled a few times the
    tolerance above it (5,000 x 1,000: the last 31 of 100 path points), while
    asking it of every QP slowed the CV benchmark's paths by 15-30%.
    """
    floor = 1e-13 * max(1.0, problem.null_gradient_max())
    loose = max(floor, 0.1 * np.sqrt(tol_abs / max(1, problem.n_features)))
    l1 = problem.penalty.l1[problem.penalty.l1 > 0]
    tight = min(loose, max(floor, 0.1 * tol * float(l1.min()))) if l1.size else loose
    return loose, tight


#: An iteration whose duality gap is above this share of the previous one has
#: stalled: from then on the quadratic models are solved to the tight tolerance.
STALL = 0.5


def _qp_penalty(pen, H, with_intercept):
    sub = pen.subset(H)
    return sub.with_free_coordinate() if with_intercept else sub


@dataclass
class Evaluation:
    """A pass's statistics at a solver's final point, with the Hessian columns it
    holds: the first evaluation of the next problem on a path (same rows, same
    scaling, another alpha), which therefore costs no pass. ``ahead``: the point
    solved ahead for that next problem in the same pass (:class:`Ahead`), if any."""

    stats: dict
    cols: np.ndarray
    ahead: Optional["Ahead"] = None
    #: What the solver derived from ``stats`` (its scaled gradient, the scaled Hessian
    #: block over ``cols``), which depends on the problem's scaling, not its alpha:
    #: the next point of the path takes them as they are.
    point: Optional[PointEval] = None
    hessian: Optional[tuple] = None


@dataclass
class Ahead:
    """A point solved one alpha ahead: the minimiser at ``alpha`` (the next alpha of
    a path) of the quadratic model the solver stepped from, over its working set,
    and its evaluation in the pass that was to certify the current point.

    The pass that certifies point k of a path is then also the first pass of point
    k + 1 at a point one Newton step closer to its solution: a point whose first
    step suffices costs no pass of its own (squared loss: its model is exact on the
    working set, so this is the rule; logistic: IRLS from a nearby point). ``H``:
    the working set of the Hessian block its first step (and the Newton decrement of
    its unpenalised coordinates in the duality gap) uses: the current point's block,
    for a loss whose curvature moves a Hessian one step behind (:func:`_split_ahead`)."""

    alpha: float
    u: np.ndarray
    b: float
    H: np.ndarray
    evaluation: Optional[Evaluation] = None


def solve_newton(problem, source, u0=None, b0=None, options=DEFAULT_OPTIONS, ws_start=64,
                 verbose=False):
    """Minimise the elastic-net objective by working-set proximal Newton."""
    result, _ = drive(newton_steps(problem, u0, b0, options=options, ws_start=ws_start,
                                   verbose=verbose), source.run_pass)
    return result


def drive(steps, run_pass):
    """Run a solver generator to its end, answering each request with ``run_pass``."""
    try:
        request = next(steps)
        while True:
            request = steps.send(run_pass(request))
    except StopIteration as stop:
        return stop.value


@dataclass
class AlongPath:
    """What a path hands the solver of one of its points (every field optional).

    ``start``: the :class:`Evaluation` at the warm start left by the previous point
    (saves the first pass); ``cache``: the quadratic loss's Gram entries, shared by
    every point of the path; ``ws_init``: the first working set (the strong set);
    ``lookahead(grad)``: features whose Hessian columns to fetch in advance (the next
    point's strong set); ``guess``: where the first quadratic model's solution is
    expected (the path's prediction of this point): it is solved from there;
    ``ahead_alpha(u, grad)``: the alpha of the path's next point as seen from the
    current iterate (None: none), at which every step also solves a point ahead
    (:class:`Ahead`) to be evaluated in the same pass."""

    start: Optional[Evaluation] = None
    cache: Optional[GramCache] = None
    ws_init: Optional[np.ndarray] = None
    lookahead: Optional[Callable] = None
    guess: Optional[np.ndarray] = None
    ahead_alpha: Optional[Callable] = None


@dataclass
class _Iterate:
    """The proximal Newton iteration between two passes: the point ``(u, b)``, the
    working set ``H``, and the last step (from ``(u_prev, b_prev)`` with objective
    ``F_prev``, direction ``(d_u, d_b)`` scaled by ``step``, and the decrease the
    quadratic model predicted for the full step), for the line search."""

    u: np.ndarray
    b: float
    H: np.ndarray
    qp_tol: float
    guess: Optional[np.ndarray] = None
    step: float = 1.0
    d_u: Optional[np.ndarray] = None
    d_b: float = 0.0
    u_prev: Optional[np.ndarray] = None
    b_prev: Optional[float] = None
    F_prev: Optional[float] = None
    model_decrease: float = 0.0


_NOTHING = np.zeros(0, dtype=np.intp)


def union(*indices, size):
    """The sorted union of index arrays into ``range(size)`` (``np.union1d`` of them,
    by a mask instead of a sort: several times faster for a few thousand features)."""
    mask = np.zeros(size, dtype=bool)
    for index in indices:
        mask[index] = True
    return np.flatnonzero(mask)


def newton_steps(problem, u0=None, b0=None, *, options=DEFAULT_OPTIONS, ws_start=64,
                 verbose=False, along=None):
    """The working-set proximal Newton solver as a generator of passes.

    Yields one :class:`~elasticnet_dist.passes.PassRequest` per iteration and
    receives its statistics, so that a caller can serve several solvers with
    one pass (cross-validation) or answer from sufficient statistics. Returns
    ``(SolverResult, Evaluation or None)``. Each iteration: one pass at the
    current point (loss, gradient, the working set's Hessian block), a line
    search for losses that are not quadratic (:func:`_line_search`), the duality
    gap over every feature, and a step: the quadratic model on the working set
    solved on the driver (:func:`_model_step`). ``along``: see :class:`AlongPath`.
    """
    along = along or AlongPath()
    squared = problem.loss.quadratic
    tol_abs = problem.gap_tolerance(options.tol)
    u, b = initial_point(problem, u0, b0)
    qp_tol, qp_tight = _qp_tolerance(problem, options.tol, tol_abs)
    cache = (along.cache or GramCache()) if squared else None
    if along.ws_init is not None:
        H = np.asarray(along.ws_init, dtype=np.intp)
    else:  # the largest violators at the null model, or a warm start's support
        hint = problem.null_gradient() if at_null(problem, u, b) else np.zeros_like(u)
        H = choose_working_set(problem, u, hint, ws_start)
    state = _Iterate(u, b, H, qp_tol, guess=along.guess)
    start, grad = along.start, None
    ahead = None  # the point solved ahead at the last step, evaluated with its pass
    history = []
    converged, gap, F = False, np.inf, np.inf
    final = None  # the Evaluation at the returned point, when the last pass was made there
    n_passes = it = 0
    for it in range(1, options.max_iter + 1):
        # ---- one pass: loss, gradient, Hessian block -------------------------------
        known = None
        if start is not None:  # evaluated already, by the previous point of a path
            stats, cols, new, known = start.stats, start.cols, _NOTHING, start
            start = None
            state.H = cols if not squared else cache.cached(state.H)
        else:
            if along.lookahead is not None and grad is not None:
                look = along.lookahead(grad)
                if not squared:
                    look = _closest_to_entering(problem, look, grad,
                                                max(ws_start, 2 * np.count_nonzero(state.u)))
                state.H = union(state.H, look, size=grad.shape[0])
            req, cols, new = _request(problem, state, cache, ahead)
            stats = yield req
            n_passes += 1
            if ahead is not None:
                stats = _split_ahead(stats, ahead, squared)
        ev = known.point if known is not None and known.point is not None \
            else problem.evaluate(stats)[0]
        grad = ev.grad
        penalty_value = problem.penalty.value(state.u)
        F = ev.loss + penalty_value  # the objective; its penalty part serves the gap too
        if not squared:
            verdict = _line_search(state, F)
            if verdict != "accepted":
                ahead = None  # solved from the model of a step that was not taken
            if verdict == "halved":
                continue
            if verdict == "gave up":  # back at the last accepted point
                F, final = state.F_prev, None
                break
        final = Evaluation(stats, cols, ahead, point=ev)
        ahead = None

        # ---- the duality gap over every feature ---------------------------------------
        if squared and new.size:
            block, _, _ = problem.scaled_hessian(stats, new, cols)
            cache.extend(new, block)
        curv = hessian = None
        if not squared:
            hessian = final.hessian = known.hessian if known is not None and \
                known.hessian is not None else _model_hessian(problem, stats, state.H)
            if np.any(problem.penalty.unpenalised[state.H]):  # their Newton decrement
                curv = np.full(state.u.shape, problem.default_curvature)
                curv[state.H] = np.diag(hessian[0])
        gap = problem.duality_gap(state.u, ev.grad, ev.loss, ev.grad_b, curvature=curv,
                                  dual_curvature=ev.dual_curvature,
                                  intercept_curvature=None if hessian is None else hessian[2],
                                  penalty_value=penalty_value)
        history.append({"iter": it, "objective": F, "gap": gap, "ws": int(state.H.size),
                        "nnz": int(np.count_nonzero(state.u))})
        if verbose:
            print("newton it=%d F=%.12g gap=%.3e |H|=%d nnz=%d"
                  % (it, F, gap, state.H.size, np.count_nonzero(state.u)))
        if gap <= tol_abs:
            converged = True
            break
        if len(history) > 1 and gap > STALL * history[-2]["gap"]:
            state.qp_tol = qp_tight
        ahead = _solve_ahead(problem, state, ev, cache, hessian, along.ahead_alpha)
        still = _model_step(problem, state, ev, F, cache, hessian, ws_start)
        if still and state.qp_tol > qp_tight:
            # the point already met the loose model tolerance, though the gap halved
            # and so did not count as stalled: solve the same model tightly (a dense
            # lasso path's last point stopped here, gap 4x the tolerance, before)
            state.qp_tol = qp_tight
            still = _model_step(problem, state, ev, F, cache, hessian, ws_start)
        if still:
            ahead = None
            break  # stalled: the gap is at the rounding floor of this problem
        final = None
    result = SolverResult(u=state.u, intercept=state.b, objective=F, gap=gap, tol_abs=tol_abs,
                          converged=converged, n_iter=it, n_passes=n_passes, history=history)
    return result, final


def _request(problem, state, cache, ahead=None):
    """The pass at the current point: ``(request, Hessian columns, new cache columns)``.
    A quadratic loss fetches only the Gram columns its cache lacks (rows of the new
    features against every cached one), any other loss the working set's block.
    With a point ``ahead``, the pass evaluates it too (its point comes second); any
    other loss's working set then takes in the support of the point ahead, whose
    first step uses the same block (:func:`_split_ahead`)."""
    if ahead is not None and cache is None:
        state.H = ahead.H = union(state.H, np.flatnonzero(ahead.u), size=ahead.u.shape[0])
    u, b, H = state.u, state.b, state.H
    points = [(u, b)] if ahead is None else [(u, b), (ahead.u, ahead.b)]
    if cache is None:
        return problem.request(points, hessian_cols=H), H, _NOTHING
    new = cache.missing(H)
    cols = np.concatenate([cache.idx, new])
    req = problem.request(points, hessian_rows=new if new.size else None,
                          hessian_cols=cols if new.size else None)
    return req, cols, new


def _model_hessian(problem, stats, H):
    """The scaled Hessian block of the working set ``H`` from a pass (a loss that is
    not quadratic): ``(block, col_sums, h_sum, Q)``, with ``Q`` the quadratic
    model's matrix: with an intercept ``[[block, col_sums], [col_sums', h_sum]]``,
    the block a view of it (no copy of h^2 entries), else the block."""
    if not problem.fit_intercept:
        block, col_sums, h_sum = problem.scaled_hessian(stats, H, H)
        return block, col_sums, h_sum, block
    k = H.size
    Q = np.empty((k + 1, k + 1))
    block, col_sums, h_sum = problem.scaled_hessian(stats, H, H, out=Q[:k, :k])
    Q[:k, k] = Q[k, :k] = col_sums
    Q[k, k] = h_sum
    return block, col_sums, h_sum, Q


def _closest_to_entering(problem, candidates, grad, limit):
    """At most ``limit`` of ``candidates`` (features a lookahead would add to the
    working set), those whose gradient is nearest their L1 weight (``|g_j| / a_j``
    largest; unpenalised ones first).

    For a loss whose Hessian is recomputed at every pass, each feature in the
    working set costs ``n h`` more in every problem's Hessian block and ``h`` in
    every product with it; on a wide table the strong set of the next alpha holds
    hundreds of features where a few enter (arcene, 200 x 10,000: working sets of
    388 features on average for supports of 19-70)."""
    if candidates.size <= limit:
        return candidates
    pen = problem.penalty
    a = pen.l1[candidates]
    closeness = np.divide(pen.magnitude(grad)[candidates], a, out=np.full(a.shape, np.inf),
                          where=a > 0)
    keep = np.argpartition(-closeness, limit - 1)[:limit]
    return pen.whole_groups(np.sort(candidates[keep]), within=candidates)


def _split_ahead(stats, ahead, squared):
    """The current point's statistics of a pass that also evaluated ``ahead``, whose
    own go to its evaluation. The pass brings one Hessian block, the current
    point's, and the point ahead's first step uses it too: a loss whose curvature
    moves then takes that step with the Hessian of a point one step behind. (A
    block of its own doubled the Hessian work of every pass: 100,000 x 200 logistic
    on Dask, 55 -> 41 passes but 21.8 -> 32.7 s.)"""
    hessians = (0,) if "hess.0" in stats else ()
    ahead.evaluation = Evaluation(points_of(stats, slice(1, 2), () if squared else hessians),
                                  ahead.H)
    return points_of(stats, slice(0, 1), hessians)


def _line_search(state, F):
    """Accept the last step (``"accepted"``), or halve it (``"halved"``: the point
    moves back along the step), or give up after MAX_HALVINGS (``"gave up"``: the
    point is restored to where the step began). A predicted decrease below the
    rounding of F cannot be measured; near the optimum the full Newton step is then
    taken as it is (as glmnet's IRLS always does)."""
    s = state
    measurable = s.F_prev is not None and -s.model_decrease > ROUNDING * abs(s.F_prev)
    if not measurable or F <= s.F_prev + ARMIJO * s.step * s.model_decrease:
        return "accepted"
    if s.step < 0.5 ** MAX_HALVINGS:
        s.u, s.b = s.u_prev, s.b_prev
        return "gave up"
    s.step *= 0.5
    s.u = s.u_prev + s.step * s.d_u
    s.b = s.b_prev + s.step * s.d_b
    s.H = union(s.H, np.flatnonzero(s.u), size=s.u.shape[0])  # the full step had zeroed them
    return "halved"


def _model_step(problem, state, ev, F, cache, hessian, ws_start):
    """Solve the quadratic model of the objective on the working set (on the driver)
    and take its full step; choose the next working set. Returns True when nothing
    moved (the iteration stalled)."""
    s = state
    H = s.H
    model = _solve_model(problem, s, ev, cache, hessian, s.guess)
    s.guess = None
    s.u_prev, s.b_prev, s.F_prev = s.u.copy(), s.b, F
    s.d_u, s.d_b = model.step(s.u)
    model_pen = problem.penalty.subset(model.coords)
    n = model.coords.size
    s.model_decrease = (float(model.g @ (model.x - model.x0)) + model_pen.value(model.x[:n])
                        - model_pen.value(model.x0[:n]))
    s.step = 1.0
    s.u = s.u + s.d_u
    s.b = s.b + s.d_b
    size = max(ws_start, 2 * int(np.count_nonzero(s.u)))
    s.H = choose_working_set(problem, s.u, ev.grad, size, exclude_zero=H)
    return not np.any(s.d_u) and s.d_b == 0.0 and np.array_equal(s.H, H)


def _solve_ahead(problem, state, ev, cache, hessian, ahead_alpha):
    """The point ahead (:class:`Ahead`): the same quadratic model as this step's, with
    the penalty at the path's next alpha; None when there is no next alpha."""
    alpha = None if ahead_alpha is None else ahead_alpha(state.u, ev.grad)
    if alpha is None:
        return None
    model = _solve_model(problem.at_alpha(alpha), state, ev, cache, hessian)
    d_u, d_b = model.step(state.u)
    return Ahead(float(alpha), state.u + d_u, state.b + d_b, _NOTHING)


@dataclass
class _Model:
    """A solved quadratic model: its solution ``x`` from ``x0`` over the coordinates
    ``coords`` (those outside the working set, ``~in_H``, held at zero), then the
    intercept's step when ``newton_b``; ``g`` the gradient over the same."""

    coords: np.ndarray
    in_H: np.ndarray
    x: np.ndarray
    x0: np.ndarray
    g: np.ndarray
    newton_b: bool

    def step(self, u):
        """The full step ``(d_u, d_b)`` from the point ``u`` to the model's solution."""
        used = self.coords[self.in_H]
        d_u = np.zeros_like(u)
        d_u[used] = self.x[:self.coords.size][self.in_H] - u[used]
        return d_u, float(self.x[self.coords.size]) if self.newton_b else 0.0


def _solve_model(problem, s, ev, cache, hessian, guess=None):
    """The quadratic model of ``problem``'s objective at the iterate ``s``, over its
    working set, solved on the driver (from ``guess``, a prediction of the solution,
    when given).

    The model's coordinates are ``H`` (or, for a quadratic loss, the Gram cache's,
    a superset, with the coordinates outside ``H`` held at zero); a loss that is
    not quadratic also steps the intercept when there is one (a quadratic loss's
    scaled intercept is exact)."""
    pen = problem.penalty
    newton_b = problem.fit_intercept and hessian is not None
    H = s.H
    coords = H
    if hessian is None:
        coords, Q = cache.model(H)
    else:
        Q = hessian[3]
    qp_pen = _qp_penalty(pen, coords, newton_b)
    in_H = np.ones(coords.size, dtype=bool)
    if coords is not H:  # held at zero in the model: the coordinates outside H
        in_H = cache.marks(H)
        qp_pen = qp_pen.with_fixed(~in_H)
    g_H = ev.grad[coords]
    x0 = np.where(in_H, s.u[coords], 0.0)
    if newton_b:
        g_H = np.append(g_H, ev.grad_b)
        x0 = np.append(x0, 0.0)  # the intercept enters as a step from b
    Qx0 = Q @ x0
    r = g_H - Qx0
    x_start, Qx_start = x0, Qx0
    if guess is not None:  # the same model, solved from the predicted point
        x_start = x0.copy()
        x_start[:coords.size] = np.where(in_H, guess[coords], 0.0)
        Qx_start = Q @ x_start
    x = solve_qp(Q, r, qp_pen, x0=x_start, tol=s.qp_tol, Qx0=Qx_start).x
    return _Model(coords, in_H, x, x0, g_H, newton_b)

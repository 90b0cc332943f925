"""Several classes: the multinomial loss with glmnet's grouped penalty.

With ``C`` classes, a label ``y`` (the class's index) and one linear predictor per
class, ``eta_c = b_c + x.w_c``, the objective is

    (1 / W) sum_i s_i (log sum_c exp(eta_ic) - eta_{i y_i})
        + alpha sum_j v_j (l1_ratio ||k_j w_j||_2 + (1 - l1_ratio) / 2 ||k_j w_j||_2^2),

``w_j`` the C coefficients of feature j (``k_j = sd_j`` when ``standardize``):
glmnet's ``family = "multinomial", type.multinomial = "grouped"``, so that a
feature is selected for every class or for none. The loss does not change when
the same number is added to every class's coefficient of a feature; the penalty
is smallest when they sum to zero, so every solution's do, and the coefficients
are unique. The intercepts are not penalised: class ``C - 1``'s is held at 0 (the
solver's intercepts are the others' differences to it, unique) and the reported
ones are centred to sum to zero, as glmnet's.

Nothing here is new machinery. The solver's coordinates are one vector

    u = (u_{0,0}, ..., u_{0,C-1}, u_{1,0}, ..., u_{p-1,C-1}, b'_0, ..., b'_{C-2}),

feature after feature (``u_{j,c} = sd_j w_{j,c}``, scaled as every loss's),
then the free intercepts, which enter as unpenalised coordinates: each feature's
C coordinates form one group of :class:`~elasticnet_dist.penalty.ElasticNetPenalty`
(weight 1, glmnet's, not the categorical columns' ``sqrt(m)``). A
:class:`MultinomialProblem` turns those coordinates into pass requests (C rows of
coefficients per point, :func:`~elasticnet_dist.passes._multinomial_points`) and the
passes' sums into gradients and Hessian blocks over them, so that the working-set
proximal Newton solver, its duality gap, the strong rules and the path of
:mod:`.newton` and :mod:`.path` solve it as they are, on every engine.

The Hessian of the loss in ``(w_c, w_e)`` is ``X' diag(s p_c (1[c = e] - p_e)) X / W``:
a working set of ``h`` features asks each pass for ``C (C + 1) / 2`` weighted
``h x h`` blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import numpy as np

from ..errors import BadValuesError
from ..losses import Multinomial
from ..passes import HessianBlock, PassRequest, hessian_keys
from ..penalty import ElasticNetPenalty
from ..problem import PointEval, Problem, Standardization
from .newton import drive
from .options import DEFAULT_OPTIONS, NO_STOPS
from .path import RIDGE_GRID_L1_RATIO, alpha_grid, default_eps, path_steps


@dataclass(frozen=True)
class MultinomialProblem(Problem):
    """A :class:`~elasticnet_dist.problem.Problem` over the coordinates of the module
    docstring. The base class's ``fit_intercept`` is False (its scalar intercept is
    not used: the intercepts are coordinates); ``with_intercept`` says whether
    they are fitted. ``class_means``: each class's share of the weight;
    ``class_x_means`` (C x p): ``(1/W) sum s x`` over each class's rows."""

    n_classes: int = 2
    class_means: Optional[np.ndarray] = field(default=None, compare=False)
    class_x_means: Optional[np.ndarray] = field(default=None, compare=False)
    with_intercept: bool = True

    # ---- the coordinates --------------------------------------------------------------
    @property
    def n_columns(self):
        """The table's feature columns (p)."""
        return self.std.scale.shape[0]

    @property
    def n_features(self):
        """The solver's coordinates: C per column, then C - 1 intercepts."""
        C = self.n_classes
        return self.n_columns * C + (C - 1 if self.with_intercept else 0)

    def split(self, u):
        """``(U, b)``: the scaled coefficients (C x p) and intercepts (C; the last class's 0)."""
        p, C = self.n_columns, self.n_classes
        U = u[:p * C].reshape(p, C).T
        b = np.zeros(C)
        if self.with_intercept:
            b[:C - 1] = u[p * C:]
        return U, b

    def _coef_positions(self, H):
        """For coordinates ``H``: the columns their Hessian block needs (sorted), and
        each coordinate's class and position in that block (an intercept's position
        is one past the columns: the constant column)."""
        p, C = self.n_columns, self.n_classes
        H = np.asarray(H, dtype=np.intp)
        coef = H < p * C
        cols = np.unique(H[coef] // C)
        cls = np.where(coef, H % C, H - p * C)
        pos = np.where(coef, np.searchsorted(cols, H // C), cols.size)
        return cols, cls, pos

    # ---- the null model -----------------------------------------------------------------
    def null_point(self):
        """The intercepts alone: ``b'_c = log(pi_c / pi_{C-1})`` (every eta 0 without)."""
        u = np.zeros(self.n_features)
        if self.with_intercept:
            pi = self.class_means
            u[self.n_columns * self.n_classes:] = np.log(pi[:-1]) - np.log(pi[-1])
        return u, 0.0

    @property
    def null_intercept(self):
        return 0.0

    @property
    def null_loss(self):
        return Multinomial.null_loss_of(self.class_means, self.with_intercept)

    @property
    def default_curvature(self):
        return Multinomial.max_curvature

    def gap_tolerance(self, tol):
        return tol * max(2.0 * self.null_loss, 1e-15)

    def _null_gradient(self):
        """At the null model every row's class probabilities are ``pi`` (1/C without
        intercepts): ``(1/W) X' s (P - Y)`` is ``p_c mean_x - class_x_means[c]``."""
        C = self.n_classes
        probs = self.class_means if self.with_intercept else np.full(C, 1.0 / C)
        raw = probs[:, None] * self.moments.mean_x - self.class_x_means
        raw_sum = probs - self.class_means
        return self._flat_gradient(raw, raw_sum)

    def _flat_gradient(self, raw, raw_sum):
        """The solver's gradient from ``(1/W) X' s l'`` (C x p) and ``(1/W) sum s l'`` (C,)."""
        std = self.std
        G = (raw - std.center * raw_sum[:, None]) / std.scale
        G[:, std.constant] = 0.0
        g = G.T.ravel()
        if self.with_intercept:
            g = np.concatenate([g, raw_sum[:-1]])
        return g

    # ---- passes ---------------------------------------------------------------------------
    def original(self, u):
        """``(W, b)``: the coefficients (C x p) and intercepts (C,) on the original
        scale, the intercepts as the solver has them (the last class's 0)."""
        U, b = self.split(u)
        W = U / self.std.scale
        W[:, self.std.constant] = 0.0
        return W, b - W @ self.std.center

    def request(self, points, gradient=True, hessian_cols=None, hessian_rows=None):
        coefs, intercepts = [], []
        for u, _ in points:
            W, b = self.original(u)
            coefs.append(W)
            intercepts.append(b)
        hessians = ()
        if hessian_cols is not None:
            hessians = (self.hessian_block(hessian_cols),)
        return PassRequest(loss=Multinomial.name, n_classes=self.n_classes,
                           coefs=np.concatenate(coefs) if coefs else None,
                           intercepts=np.concatenate(intercepts) if coefs else None,
                           gradient=gradient, hessians=hessians)

    def hessian_block(self, cols, rows=None, point=0):
        """The block of the columns under the coordinates ``cols`` (every class pair)."""
        features = self._coef_positions(cols)[0]
        return HessianBlock(cols=features, point=point,
                            center=self.std.center if self.with_intercept else None)

    def evaluate(self, stats):
        W = float(stats["weight_sum"])
        out = []
        for k in range(stats["loss_sum"].shape[0]):
            loss = float(stats["loss_sum"][k]) / W
            if "grad" not in stats:
                out.append(PointEval(loss, None, None))
                continue
            g = self._flat_gradient(stats["grad"][k] / W, stats["grad_sum"][k] / W)
            out.append(PointEval(loss, g, 0.0))
        return out

    def scaled_hessian(self, stats, rows, cols, index=0, out=None):
        """(1/W) Hessian of L over the coordinates ``cols`` (``rows`` must be the
        same: the solver asks for square blocks), from the pass's class-pair blocks
        (:func:`~elasticnet_dist.passes._multinomial_points`). Returns ``(block,
        None, 0.0)``: the intercepts are coordinates of the block."""
        features, cls, pos = self._coef_positions(cols)
        f = features.size
        W = float(stats["weight_sum"])
        hess, col_sums, h_sum = (stats[key] for key in hessian_keys(index))
        sd = self.std.scale[features]
        C = self.n_classes
        full = np.empty((C, C, f + 1, f + 1))
        full[:, :, :f, :f] = hess / (W * np.outer(sd, sd))
        full[:, :, :f, f] = full[:, :, f, :f] = col_sums / (W * sd)
        full[:, :, f, f] = h_sum / W
        return full[cls[:, None], cls[None, :], pos[:, None], pos[None, :]], None, 0.0

    # ---- answers -------------------------------------------------------------------------
    def original_fit(self, u, b=0.0):
        """``(coef, intercept, coef_standardized)``: C x p, C (centred to sum 0, as
        glmnet's; 0 without intercepts) and ``sd * coef``."""
        W, intercept = self.original(u)
        intercept = (intercept - intercept.mean() if self.with_intercept
                     else np.zeros_like(intercept))
        sd = np.where(self.std.constant, 0.0, np.sqrt(self.moments.var_x))
        return W, intercept, W * sd

    def support(self, u):
        """The columns with non-zero coefficients (each for every class): a mask."""
        return np.any(self.split(u)[0] != 0, axis=0)

    def selected(self, u):
        return np.flatnonzero(self.support(u))

    def n_selected(self, u):
        return int(np.count_nonzero(self.support(u)))

    def scaled_point(self, coef, intercept):
        """Coefficients (C x p) and intercepts (C,) on the original scale as the solver's
        ``(u, 0)``: ``u_{j,c} = sd_j w_{j,c}``, ``b'_c = b_c + center . w_c`` less the
        last class's (only differences of intercepts matter)."""
        W = np.asarray(coef, dtype=np.float64) * self.std.scale
        W[:, self.std.constant] = 0.0
        u = np.zeros(self.n_features)
        p, C = self.n_columns, self.n_classes
        u[:p * C] = W.T.ravel()
        if self.with_intercept:
            b = np.asarray(intercept, dtype=np.float64) + np.asarray(coef) @ self.std.center
            u[p * C:] = b[:-1] - b[-1]
        return u, 0.0


def class_statistics(source, moments, n_classes, holdout=None, n_folds=0, train_groups=None):
    """Per problem, ``(class_means, class_x_means)``: (C,) and (C x p), from one pass
    at every eta 0, where each row's ``l'`` is ``1/C - Y``: the class's share of the
    weight is ``1/C - grad_sum_c / W`` and ``grad_c / W = mean_x / C - class_x_means_c``.
    ``moments``: the problems' (a list); ``holdout``: the fold each holds out (-1:
    none), or ``train_groups``: the folds each trains on (None: one problem over
    every row)."""
    p, C, k = source.n_features, n_classes, len(moments)
    request = PassRequest(loss=Multinomial.name, n_classes=C, coefs=np.zeros((k * C, p)),
                          intercepts=np.zeros(k * C), n_folds=n_folds,
                          holdout=None if holdout is None else np.asarray(holdout),
                          train_groups=train_groups)
    stats = source.run_pass(request)
    weights = stats.get("train_weight_sum", np.full(k, stats["weight_sum"]))
    return [(1.0 / C - stats["grad_sum"][i] / float(weights[i]),
             m.mean_x / C - stats["grad"][i] / float(weights[i]))
            for i, m in enumerate(moments)]


def make_multinomial_problem(moments, sums, n_classes, *, alpha=1.0, l1_ratio=1.0,
                             penalty_factor=None, fit_intercept=True, standardize=True,
                             class_names=None, where="", groups=None):
    """The :class:`MultinomialProblem` of a table with these ``moments`` and its
    classes' ``sums`` (:func:`class_statistics`). A ValueError names a class without
    rows of positive weight (``where``: which rows, for the message).

    ``groups`` (a group number per feature, -1: none): a categorical column's level
    features, penalised as one group over every level and class, its L1 weight
    ``sqrt(levels)`` times a feature's (the categorical columns' rule of
    :mod:`~elasticnet_dist.penalty`, the classes counting as glmnet's grouped
    multinomial counts them); without ``standardize`` their columns keep their scale
    (as :func:`~elasticnet_dist.problem.make_problem` keeps them)."""
    C = int(n_classes)
    p = moments.mean_x.shape[0]
    class_means, class_x_means = sums
    empty = np.flatnonzero(class_means <= 1e-15)
    if empty.size:
        name = empty[0] if class_names is None else class_names[empty[0]]
        raise BadValuesError("class %r has no rows of positive weight%s for "
                             "loss='multinomial'; every class needs some"
                             % (np.asarray(name).tolist(), where))
    factor = np.ones(p) if penalty_factor is None else np.asarray(penalty_factor, np.float64)
    if factor.shape != (p,) or np.any(factor <= 0) or not np.all(np.isfinite(factor)):
        raise ValueError("penalty_factor must hold %d positive finite numbers for "
                         "loss='multinomial' (a feature with factor 0 has no unique "
                         "coefficients across classes)" % p)
    member = None if groups is None else np.asarray(groups) >= 0
    std = Standardization.from_moments(moments, fit_intercept,
                                       unscaled=None if standardize else member)
    sd = np.sqrt(moments.var_x)
    if member is not None and not standardize:
        sd = np.where(member, 1.0, sd)
    ratio = np.ones(p) if standardize else 1.0 / np.where(std.constant, 1.0, sd)
    weight, group = factor.copy(), np.arange(p)
    if member is not None and member.any():  # a categorical column: one group, sqrt(levels)
        levels = np.bincount(groups[member])
        weight[member] *= np.sqrt(levels[groups[member]])
        group[member] = p + groups[member]
    l1 = np.where(std.constant, 0.0, alpha * l1_ratio * weight * ratio)
    l2 = np.where(std.constant, 0.0, alpha * (1.0 - l1_ratio) * factor * ratio * ratio)
    extra = C - 1 if fit_intercept else 0
    penalty = ElasticNetPenalty(
        np.concatenate([np.repeat(l1, C), np.zeros(extra)]),
        np.concatenate([np.repeat(l2, C), np.zeros(extra)]),
        np.concatenate([np.repeat(std.constant, C), np.zeros(extra, dtype=bool)]),
        np.concatenate([np.repeat(group, C), np.full(extra, -1)]).astype(np.intp))
    return MultinomialProblem(Multinomial.name, penalty, std, moments, False, float(alpha),
                              float(l1_ratio), n_classes=C, class_means=class_means,
                              class_x_means=class_x_means, with_intercept=bool(fit_intercept))


def multinomial_problem(source, moments, classes, *, alpha, l1_ratio, penalty_factor=None,
                        fit_intercept=True, standardize=True, groups=None):
    """The :class:`MultinomialProblem` of one fit over every row of ``source`` (one
    pass for the classes' sums); ``classes``: their names (the labels their indices);
    ``groups``: the categorical columns' level features (:func:`make_multinomial_problem`)."""
    C = len(classes)
    return make_multinomial_problem(moments, class_statistics(source, [moments], C)[0], C,
                                    alpha=alpha, l1_ratio=l1_ratio,
                                    penalty_factor=penalty_factor, fit_intercept=fit_intercept,
                                    standardize=standardize, class_names=classes,
                                    groups=groups)


def multinomial_grid(unit_at, n_rows, l1_ratio, *, alphas=None, n_alphas=100, eps=None):
    """The alphas of a path (decreasing): the given ones, or glmnet's grid from the
    ``alpha_max`` of ``unit_at(l1_ratio)`` (the unit problem at that l1_ratio; a ridge
    path's as for l1_ratio RIDGE_GRID_L1_RATIO, as every loss's) down to ``eps`` of it."""
    if alphas is not None:
        return np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
    unit = unit_at(max(l1_ratio, RIDGE_GRID_L1_RATIO))
    eps = default_eps(n_rows, unit.n_columns) if eps is None else eps
    return alpha_grid(unit.alpha_max(), n_alphas, eps)


def multinomial_problems(source, moments, classes, spec, l1_ratios, *, alphas=None,
                         n_alphas=100, eps=None):
    """Cross-validation's problems: ``moments`` of the full table then of the K
    training sets; one pass for every training set's ``classes`` (their names).
    Returns the grid (L x A, from the full table) and the problems (L lists of K + 1)."""
    n_classes = len(classes)
    n_folds = len(moments) - 1
    sums = class_statistics(source, moments, n_classes, holdout=np.arange(-1, n_folds),
                            n_folds=n_folds)

    def unit(k, l1_ratio):
        return make_multinomial_problem(
            moments[k], sums[k], n_classes, l1_ratio=l1_ratio,
            penalty_factor=spec.penalty_factor, fit_intercept=spec.fit_intercept,
            standardize=spec.standardize, class_names=classes, groups=spec.groups,
            where="" if k == 0 else " in the training rows of fold %d" % (k - 1))

    problems = [[unit(k, l1) for k in range(n_folds + 1)] for l1 in l1_ratios]
    grid = np.array([multinomial_grid(partial(unit, 0), moments[0].n_rows, l1, alphas=alphas,
                                      n_alphas=n_alphas, eps=eps) for l1 in l1_ratios])
    return grid, problems


def multinomial_halves(source, moments, classes, spec, l1_ratio, train_groups):
    """Stability selection's problems, one per half-sample (``moments``; its groups
    marked in its row of ``train_groups``); one pass for every half's classes."""
    C = len(classes)
    sums = class_statistics(source, moments, C, n_folds=train_groups.shape[1],
                            train_groups=train_groups)
    return [make_multinomial_problem(m, c, C, l1_ratio=l1_ratio,
                                     penalty_factor=spec.penalty_factor,
                                     fit_intercept=spec.fit_intercept,
                                     standardize=spec.standardize, class_names=classes,
                                     groups=spec.groups, where=" in half-sample %d" % i)
            for i, (m, c) in enumerate(zip(moments, sums, strict=True))]


@dataclass
class MultinomialPath:
    """A solved path: ``alphas`` (A,), ``coefs`` (A, C, p), ``intercepts`` (A, C),
    ``n_selected`` (A,) columns, ``gaps`` and ``converged`` per point, the data
    passes it took."""

    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    n_selected: np.ndarray
    gaps: np.ndarray
    converged: np.ndarray
    n_passes: int


def multinomial_path(source, n_classes, *, l1_ratio=1.0, alphas=None, n_alphas=100, eps=None,
                     penalty_factor=None, fit_intercept=True, standardize=True,
                     options=DEFAULT_OPTIONS, stops=NO_STOPS, moments=None):
    """The grouped multinomial elastic net's path on ``source`` (labels 0 .. C - 1),
    at ``alphas`` or glmnet's grid from ``alpha_max`` (the smallest alpha selecting
    nothing, ``max_j ||g_j||_2 / (l1_ratio v_j)`` at the null model) down to ``eps``
    of it; ``stops``: glmnet's ``dfmax`` (``max_features``: columns selected, each for
    every class), ``devmax`` and ``fdev`` rules."""
    from . import read_moments

    passes0 = source.n_passes
    moments = read_moments(source) if moments is None else moments
    unit_at = partial(make_multinomial_problem, moments,
                      class_statistics(source, [moments], n_classes)[0], n_classes,
                      penalty_factor=penalty_factor, fit_intercept=fit_intercept,
                      standardize=standardize, groups=source.groups)
    unit = unit_at(l1_ratio=l1_ratio)
    alphas = multinomial_grid(lambda r: unit_at(l1_ratio=r), moments.n_rows, l1_ratio,
                              alphas=alphas, n_alphas=n_alphas, eps=eps)
    points = drive(path_steps(unit, alphas, options=options, stops=stops), source.run_pass)
    fits = [unit.original_fit(point.u) for point in points]
    return MultinomialPath(
        alphas=alphas[:len(points)],
        coefs=np.array([f[0] for f in fits]),
        intercepts=np.array([f[1] for f in fits]),
        n_selected=np.array([unit.n_selected(point.u) for point in points]),
        gaps=np.array([point.gap for point in points]),
        converged=np.array([point.converged for point in points]),
        n_passes=source.n_passes - passes0)

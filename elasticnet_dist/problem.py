"""The elastic-net problem in the solvers' coordinates, and its duality gap.

Objective (DESIGN.md section 1), with row weights ``s_i`` and ``W = sum s_i``::

    F(b, w) = (1/W) sum_i s_i l(y_i, b + x_i.w)
              + alpha * sum_j v_j (l1_ratio |k_j w_j| + (1 - l1_ratio)/2 (k_j w_j)^2)

``k_j = sd_j`` (population, weighted, centred standard deviation of column j)
when ``standardize`` else 1. The solvers work on the equivalent problem in
``u_j = sd_j w_j`` with centred columns when there is an intercept::

    z_ij = (x_ij - c_j) / sd_j,    c_j = mean_j if fit_intercept else 0,
    b'   = b + c.w,                 eta_i = b' + z_i.u,

so standardisation is implicit: passes run on raw rows with raw coefficients
``w = u / sd`` and ``b = b' - c.w``, and the driver converts the sums.

Duality gap. Write ``g = grad_u L`` and ``P(u) = sum a_j|u_j| + c_j/2 u_j^2``
(penalty.py). With the dual point ``theta = -kappa grad_eta L`` (kappa in (0, 1]
makes it feasible for pure-L1 coordinates) the Fenchel gap of the penalised
coordinates, unpenalised coordinates held where they are, is::

    gap = slack(L, kappa) + P(u) + kappa u.g + P*(-kappa g)

with ``slack = (1 - kappa)^2 L`` (squared, exact) or, for the logistic and
Poisson losses, the smaller of ``(1 - kappa) L`` and ``(1 - kappa)^2 / (2 kappa) C``
(upper bounds, see losses.py). It is >= 0 and is 0 exactly at the optimum.
Unpenalised coordinates (the intercept, features with penalty factor 0) add
their Newton decrement ``sum g_j^2 / (2 h_j)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .losses import get_loss
from .passes import HessianBlock, PassRequest, hessian_keys
from .penalty import ElasticNetPenalty, build_penalty


@dataclass(frozen=True)
class Moments:
    """Weighted first and second moments of the table (1/W normalisation).

    With an offset column ``o`` (a Poisson exposure) also ``mean_eo = (1/W) sum s e^o``,
    ``mean_yo = (1/W) sum s y o`` and ``mean_x_eo = (1/W) sum s e^o x``: the null
    model's intercept ``log(ybar / mean_eo)``, loss and gradient (``has_offset``
    False: ``o = 0``, so 1, 0 and ``mean_x``).
    """

    n_rows: int
    weight_sum: float
    weight_sq_sum: float
    mean_x: np.ndarray
    var_x: np.ndarray
    mean_y: float
    var_y: float
    cov_xy: np.ndarray
    gram: Optional[np.ndarray] = None  # centred (1/W) sum s (x - m)(x - m)'
    mean_ylogy: float = float("nan")   # (1/W) sum s y log y over y > 0 (Poisson's null loss)
    mean_eo: float = 1.0
    mean_yo: float = 0.0
    mean_x_eo: Optional[np.ndarray] = None

    @property
    def has_offset(self):
        return self.mean_x_eo is not None

    @classmethod
    def from_stats(cls, stats, shift_x, shift_y):
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite sums are checked later
            return cls._from_stats(stats, shift_x, shift_y)

    @classmethod
    def _from_stats(cls, stats, shift_x, shift_y):
        W = float(stats["weight_sum"])
        dx = stats["sx"] / W
        dy = float(stats["sy"]) / W
        var_x = np.maximum(stats["sxx"] / W - dx * dx, 0.0)
        var_y = max(float(stats["syy"]) / W - dy * dy, 0.0)
        gram = None
        if "gram" in stats:
            gram = stats["gram"] / W - np.outer(dx, dx)
        offset = {}
        if "seo" in stats:
            mean_eo = float(stats["seo"]) / W
            offset = dict(mean_eo=mean_eo, mean_yo=float(stats["syo"]) / W,
                          mean_x_eo=shift_x * mean_eo + stats["sxeo"] / W)
        return cls(
            n_rows=int(stats["n_rows"]),
            weight_sum=W,
            weight_sq_sum=float(stats["weight_sq_sum"]),
            mean_x=shift_x + dx,
            var_x=var_x,
            mean_y=shift_y + dy,
            var_y=var_y,
            cov_xy=stats["sxy"] / W - dx * dy,
            gram=gram,
            mean_ylogy=float(stats.get("sylogy", np.nan)) / W,
            **offset,
        )

    def sample_variance_correction(self):
        """c with c^2 = W / (W - sum s^2 / W): sample over population variance
        (n / (n - 1) without weights; the reliability-weights form with them)."""
        dof = self.weight_sum - self.weight_sq_sum / self.weight_sum
        return float(np.sqrt(self.weight_sum / dof)) if dof > 0 else np.inf

    def constant_columns(self):
        """Columns whose variance is zero up to the rounding of the moment sums."""
        eps = np.finfo(np.float64).eps
        floor = (8 * eps * np.maximum(np.abs(self.mean_x), 1e-300)) ** 2
        return self.var_x <= floor


@dataclass(frozen=True)
class Standardization:
    """Affine map between original coefficients (b, w) and scaled ones (b', u)."""

    center: np.ndarray
    scale: np.ndarray
    constant: np.ndarray

    @classmethod
    def from_moments(cls, moments: Moments, fit_intercept: bool, unscaled=None):
        """``unscaled``: a mask of columns kept on their own scale (``u_j = w_j``)."""
        constant = moments.constant_columns()
        sd = np.sqrt(moments.var_x)
        scale = np.where(constant, 1.0, sd)
        if unscaled is not None:
            scale[unscaled] = 1.0
        center = moments.mean_x.copy() if fit_intercept else np.zeros_like(sd)
        return cls(center=center, scale=scale, constant=constant)

    def to_original(self, u, b_scaled):
        w = u / self.scale
        return w, float(b_scaled - self.center @ w)

    def to_scaled(self, w, b):
        return w * self.scale, float(b + self.center @ w)


@dataclass
class PointEval:
    """Loss and gradient at one point, in the scaled coordinates."""

    loss: float
    grad: np.ndarray
    grad_b: float
    dual_curvature: Optional[float] = None


@dataclass(frozen=True)
class Problem:
    """Everything a solver needs, independent of where the rows live."""

    loss_name: str
    penalty: ElasticNetPenalty
    std: Standardization
    moments: Moments
    fit_intercept: bool
    alpha: float
    l1_ratio: float
    #: What depends on the moments, scaling and loss alone, computed once for every
    #: problem made from this one by :func:`dataclasses.replace` (which hands on the
    #: same dict): :meth:`at_alpha`'s points of a path share it.
    derived: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def loss(self):
        return get_loss(self.loss_name)

    @property
    def n_features(self):
        return self.std.scale.shape[0]

    # ---- the intercept-only (null) model -------------------------------------------
    @property
    def null_intercept(self):
        """b' minimising L(b', 0)."""
        if not self.fit_intercept:
            return 0.0
        return self.loss.null_intercept(self.moments)

    @property
    def null_loss(self):
        return self.loss.null_loss(self.moments, self.fit_intercept)

    def support(self, u):
        """Which features the solver's point ``u`` selects (a mask over the features)."""
        return u != 0

    def n_selected(self, u):
        """The features selected at the solver's point ``u``."""
        return int(np.count_nonzero(u))

    def scaled_point(self, coef, intercept):
        """A solution on the original scale in the solver's coordinates ``(u, b')``."""
        return self.std.to_scaled(coef, intercept)

    def null_point(self):
        """``(u, b')`` of the null model: no coefficient, the null intercept."""
        return np.zeros(self.n_features), self.null_intercept

    @property
    def default_curvature(self):
        """The curvature ``l''`` assumed where none was measured
        (:meth:`~elasticnet_dist.losses.Loss.typical_curvature`)."""
        return self.loss.typical_curvature(self.moments.mean_y)

    def gap_tolerance(self, tol):
        """The duality gap a solution must reach for a relative tolerance ``tol`` (a
        solver option): tol x the null deviance per unit weight (scikit-learn's
        ``tol * ||y - ybar||^2 / n``)."""
        floor = 1e-15 * (1.0 + self.moments.mean_y ** 2)
        return tol * max(2.0 * self.null_loss, floor)

    def original_fit(self, u, b):
        """A solution on the original scale: ``(coef, intercept, coef_standardized)``
        with ``coef_standardized = sd * coef`` (0 for constant columns) and the
        intercept 0 without one: the one back-transform of every fit and path."""
        w, intercept = self.std.to_original(u, b)
        sd = np.where(self.std.constant, 0.0, np.sqrt(self.moments.var_x))
        return w, (intercept if self.fit_intercept else 0.0), w * sd

    def null_gradient(self):
        """grad_u L at (b' = null intercept, u = 0), from the moments alone (a copy of
        the one computed first for these moments: every point of a path asks)."""
        g = self.derived.get("null_gradient")
        if g is None:
            g = self.derived["null_gradient"] = self._null_gradient()
        return g.copy()

    def null_gradient_max(self):
        """``max_j |g_j|`` of :meth:`null_gradient` (0 without features)."""
        top = self.derived.get("null_gradient_max")
        if top is None:
            g = self.null_gradient()
            top = self.derived["null_gradient_max"] = float(np.max(np.abs(g), initial=0.0))
        return top

    def _null_gradient(self):
        """grad_u L at (b' = null intercept, u = 0), from the moments alone.

        ``l' = mu - y`` with ``mu = g^-1(b')``, or ``e^(b' + o)`` with an offset::

            (1/W) X' s l' = mu0 mean_x_eo - (cov_xy + ybar mean_x)
        """
        m = self.moments
        mu0 = self.loss.inverse_link(self.null_intercept)
        if m.has_offset:
            raw = mu0 * m.mean_x_eo - m.mean_y * m.mean_x - m.cov_xy  # (1/W) X' s l'
        else:
            raw = (mu0 - m.mean_y) * m.mean_x - m.cov_xy
        raw_sum = mu0 * m.mean_eo - m.mean_y                          # (1/W) sum s l'
        g = (raw - self.std.center * raw_sum) / self.std.scale
        g[self.std.constant] = 0.0
        return g

    def alpha_max(self):
        """Smallest alpha with all coefficients zero (penalised features only).

        ``max_j |g_j(0)| / (l1_ratio v_j k_j / sd_j)`` at the null model; infinite
        for ridge (l1_ratio = 0). Features with penalty factor 0 are assumed to
        be absent from the model here (``solvers.compute_alpha_max`` handles them).
        """
        unit = self.penalty.l1 / self.alpha if self.alpha > 0 else None
        if unit is None or not np.any(unit > 0):
            return np.inf
        g = self.null_gradient()
        ok = unit > 0
        return float(np.max(self.penalty.magnitude(g)[ok] / unit[ok]))

    def at_alpha(self, alpha):
        """The same problem with penalty constant ``alpha`` (the penalty is linear in it)."""
        if self.alpha <= 0:
            raise ValueError("at_alpha needs a problem built with alpha > 0")
        return replace(self, penalty=self.penalty.scaled(alpha / self.alpha), alpha=float(alpha))

    # ---- passes ---------------------------------------------------------------------
    def request(self, points, gradient=True, hessian_cols=None, hessian_rows=None):
        """A PassRequest evaluating the scaled points ``[(u, b'), ...]``."""
        coefs, intercepts = [], []
        for u, b in points:
            w, b0 = self.std.to_original(u, b)
            coefs.append(w)
            intercepts.append(b0)
        hessians = ()
        if hessian_cols is not None:
            hessians = (self.hessian_block(hessian_cols, hessian_rows),)
        return PassRequest(
            loss=self.loss_name,
            coefs=np.array(coefs) if coefs else None,
            intercepts=np.array(intercepts) if coefs else None,
            gradient=gradient,
            hessians=hessians,
        )

    def hessian_block(self, cols, rows=None, point=0):
        """The :class:`HessianBlock` of this problem's centred columns at ``point``."""
        return HessianBlock(cols=cols, rows=rows, point=point,
                            center=self.std.center if self.fit_intercept else None)

    def evaluate(self, stats):
        """PointEval for every point of a pass made from :meth:`request`."""
        W = float(stats["weight_sum"])
        out = []
        for k in range(stats["loss_sum"].shape[0]):
            loss = float(stats["loss_sum"][k]) / W
            curv = float(stats["dual_curv_sum"][k]) / W if "dual_curv_sum" in stats else None
            if "grad" not in stats:
                out.append(PointEval(loss, None, None, curv))
                continue
            gsum = float(stats["grad_sum"][k]) / W
            g = (stats["grad"][k] / W - self.std.center * gsum) / self.std.scale
            g[self.std.constant] = 0.0
            out.append(PointEval(loss, g, gsum if self.fit_intercept else 0.0, curv))
        return out

    def scaled_hessian(self, stats, rows, cols, index=0, out=None):
        """(1/W) Hessian of L in (u_rows, u_cols), with the intercept couplings,
        from the Hessian block ``index`` of a pass (the block written into ``out``
        when given)."""
        W = float(stats["weight_sum"])
        sr, sc = self.std.scale[rows], self.std.scale[cols]
        hess, hess_col_sums, hess_sum = (stats[key] for key in hessian_keys(index))
        # one pass over the h^2 entries; a symmetric block stays symmetric to the bit
        root = 1.0 / np.sqrt(W)
        block = np.multiply(hess, np.outer(root / sr, root / sc), out=out)
        return block, hess_col_sums / (W * sc), float(hess_sum) / W

    # ---- objective and certificate ----------------------------------------------------
    def objective(self, loss_value, u):
        return loss_value + self.penalty.value(u)

    def duality_gap(self, u, grad, loss_value, grad_b=0.0, curvature=None,
                    dual_curvature=None, intercept_curvature=None, penalty_value=None):
        """Certified gap of the penalised coordinates + Newton decrement of the others.

        ``curvature`` (optional, per coordinate) is the diagonal of the Hessian
        used for the unpenalised coordinates' decrement; :attr:`default_curvature`
        (1, 1/4 or the mean count, per standardized column) is used where missing.
        ``intercept_curvature`` likewise for the intercept (``sum s l'' / W``).
        ``dual_curvature`` (logistic, Poisson: from the pass) tightens the slack term.
        ``penalty_value``: ``P(u)``, if the caller has it.
        """
        pen = self.penalty
        penalised = pen.penalised
        kappa = pen.dual_scaling(grad)
        if penalty_value is None:
            penalty_value = pen.value(u)
        gap = (self.loss.conjugate_slack(loss_value, kappa, dual_curvature) + penalty_value
               + kappa * _support_dot(u, grad, penalised)
               + (pen.conjugate(-kappa * grad) if pen.has_ridge else 0.0))
        h_default = self.default_curvature
        unpen = pen.unpenalised
        if np.any(unpen):
            h = np.full(int(unpen.sum()), h_default) if curvature is None else curvature[unpen]
            gap += float(np.sum(grad[unpen] ** 2 / (2.0 * np.maximum(h, 1e-12))))
        if self.fit_intercept:
            h_b = h_default if intercept_curvature is None else intercept_curvature
            gap += grad_b ** 2 / (2.0 * max(h_b, 1e-12))
        return max(gap, 0.0)


def _support_dot(u, grad, mask):
    """``u[mask] @ grad[mask]`` over the support of ``u`` only (solutions are sparse)."""
    idx = np.flatnonzero(u)
    idx = idx[mask[idx]]
    return float(u[idx] @ grad[idx])


def make_problem(moments, loss, alpha, l1_ratio, penalty_factor, fit_intercept,
                 standardize, groups=None):
    """Build a :class:`Problem` from the moments of a table and the user's penalty.

    ``groups``: a group number per feature (-1: none), the one-hot columns of a
    categorical feature penalised as one (penalty.py). Without ``standardize`` a
    group's columns are not scaled at all, so that its norm is that of its
    coefficients."""
    groups = None if groups is None else np.asarray(groups, dtype=np.intp)
    grouped = None if groups is None or standardize else groups >= 0
    std = Standardization.from_moments(moments, fit_intercept, unscaled=grouped)
    sd = np.sqrt(moments.var_x)
    if grouped is not None:
        sd = np.where(grouped, 1.0, sd)
    penalty = build_penalty(alpha, l1_ratio, penalty_factor, sd, standardize, std.constant,
                            groups)
    return Problem(loss, penalty, std, moments, fit_intercept, alpha, l1_ratio)


def moments_request(source, full_gram=False):
    """The first pass of every fit: moments (and optionally the full Gram)."""
    shift_x, shift_y = source.reference_row()
    return PassRequest(moments=True, shift_x=shift_x, shift_y=shift_y,
                       full_gram=full_gram), shift_x, shift_y
